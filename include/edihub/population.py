"""The registry part of the brochure's demo population: seeded, deterministic snapshots of the
funds' registry at the end of 2016 (the brochure's "à fin 2016"), whose load by the hub gives
the brochure's registry figures in the ``kpi`` views.

- insured: 60,000 insured (rank 0) and their beneficiaries; 47,596 teleservice subscribers, of
  whom 43,910 validated an e-mail and 32,481 chose dematerialisation; a complementary insurer
  among the 52 for most, with consent for most of those;
- insurer: the 52 insurers under convention (``demo.INSURERS``);
- employer: 2,272 household employers, whose teleservice opened in October 2015: 390
  subscribed in that month, 1,136 by the end of October 2016 (half of them), a few more since;
  and companies, most declaring electronically;
- practitioner: 92 general practitioners, 88 specialists and 30 dentists sending FSE;
- pharmacy: the 15 pharmacies teletransmitting since March 2016;
- card: one F.S.E. card per insured person.

The FSE, pharmacy and payroll files of the demo are not made here.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

from edihub.demo import INSURERS, insurer_account
from edihub.registry_writer import write_snapshot

SNAPSHOT_DAY = dt.date(2016, 12, 31)

INSURED = 60_000  # rank-0 insured (the account holders)
BENEFICIARIES = 20_000  # their spouses and children (rank 1 and up)
FAMILIES = 12_000  # insured with beneficiaries (one or two)
SUBSCRIBERS = 47_596
VALIDATED_EMAIL = 43_910
DEMATERIALISATION = 32_481
TELESERVICE_OPENED = dt.date(2012, 1, 2)  # the insured's teleservice (before the brochure)

HOUSEHOLD_EMPLOYERS = 2_272
HOUSEHOLD_FIRST_MONTH = 390  # subscribed in October 2015, the month the service opened
HOUSEHOLD_AFTER_A_YEAR = 1_136  # subscribed by the end of October 2016
HOUSEHOLD_SINCE = 64  # subscribed in November and December 2016
HOUSEHOLD_OPENED = dt.date(2015, 10, 1)
COMPANIES = 3_000

GENERAL_PRACTITIONERS = 92
SPECIALISTS = 88
DENTISTS = 30
SPECIALTIES = ["cardiology", "dermatology", "gynaecology", "ophthalmology", "paediatrics",
               "psychiatry", "rheumatology", "ENT", "gastroenterology", "radiology"]  # fmt: skip
PHARMACIES = 15
STREETS = ["boulevard des Moulins", "boulevard d'Italie", "avenue de la Costa", "rue Grimaldi",
           "boulevard Princesse Charlotte", "avenue Princesse Grace", "rue Caroline",
           "boulevard Rainier III", "rue de Millo", "avenue Hector Otto"]  # fmt: skip


def _day_between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def _card_code(rng: random.Random) -> str:
    return "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=8))


def insured_rows(rng: random.Random) -> list[dict[str, Any]]:
    """The insured snapshot's rows: rank 0 first by registration number, each followed by its
    beneficiaries. Exactly SUBSCRIBERS rank-0 subscribers, VALIDATED_EMAIL of them with a
    validated e-mail, DEMATERIALISATION of those with the option (the contract wants a
    validated e-mail for it)."""
    numbers = sorted(rng.sample(range(10_000, 1_000_000), INSURED))
    subscribed = set(rng.sample(range(INSURED), SUBSCRIBERS))
    validated = set(rng.sample(sorted(subscribed), VALIDATED_EMAIL))
    demat = set(rng.sample(sorted(validated), DEMATERIALISATION))
    # FAMILIES insured cover beneficiaries: the first ones two, the others one.
    families = rng.sample(range(INSURED), FAMILIES)
    twos = BENEFICIARIES - FAMILIES
    children = {i: 2 if k < twos else 1 for k, i in enumerate(families)}
    insurer_ids = [i[0] for i in INSURERS]
    rows: list[dict[str, Any]] = []
    for i, n in enumerate(numbers):
        number = str(n)
        has_account = i in subscribed
        # most insured have a complementary insurer; account holders said so in their account
        insurer = rng.choice(insurer_ids) if rng.random() < 0.75 else None
        rows.append({
            "registration_number": number,
            "beneficiary_rank": 0,
            "last_name": f"NOM{number}",
            "first_name": "Prenom0",
            "postal_address": f"{rng.randint(1, 60)} {rng.choice(STREETS)}, 98000 MONACO",
            "email": f"assure.{number}@example.mc" if has_account else None,
            "teleservice_subscribed_on": _day_between(rng, TELESERVICE_OPENED, SNAPSHOT_DAY)
            if has_account else None,
            "email_validated": i in validated,
            "dematerialisation": i in demat,
            "insurer_id": insurer,
            "insurer_member_number": f"A{rng.randint(0, 99_999_999):08d}" if insurer else None,
            "insurer_consent": insurer is not None and rng.random() < 0.85,
        })  # fmt: skip
        for rank in range(1, children.get(i, 0) + 1):
            rows.append({
                "registration_number": number,
                "beneficiary_rank": rank,
                "last_name": f"NOM{number}",
                "first_name": f"Prenom{rank}",
                "postal_address": rows[-rank]["postal_address"],
                "email_validated": False,
                "dematerialisation": False,
                "insurer_consent": False,
            })  # fmt: skip
    return rows


def card_rows(rng: random.Random, insured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One F.S.E. card per insured person, valid since it was issued."""
    return [
        {"registration_number": p["registration_number"], "beneficiary_rank": p["beneficiary_rank"],
         "fse_code": _card_code(rng),
         "valid_from": _day_between(rng, dt.date(2014, 1, 1), dt.date(2016, 6, 30))}
        for p in insured
    ]  # fmt: skip


def insurer_rows(rng: random.Random) -> list[dict[str, Any]]:
    """The 52 insurers of ``demo.INSURERS``, each under convention since 2014 or 2015."""
    return [
        {"insurer_id": iid, "name": name,
         "convention_signed_on": _day_between(rng, dt.date(2014, 1, 1), dt.date(2015, 12, 31)),
         "status": "active", "sftp_account": insurer_account(iid), "export_format": fmt,
         "export_time": at}
        for iid, name, fmt, at in INSURERS
    ]  # fmt: skip


def _household_dates(rng: random.Random) -> list[dt.date | None]:
    first = [
        _day_between(rng, HOUSEHOLD_OPENED, dt.date(2015, 10, 31))
        for _ in range(HOUSEHOLD_FIRST_MONTH)
    ]
    year = [
        _day_between(rng, dt.date(2015, 11, 1), dt.date(2016, 10, 31))
        for _ in range(HOUSEHOLD_AFTER_A_YEAR - HOUSEHOLD_FIRST_MONTH)
    ]
    since = [_day_between(rng, dt.date(2016, 11, 1), SNAPSHOT_DAY) for _ in range(HOUSEHOLD_SINCE)]
    never = [None] * (HOUSEHOLD_EMPLOYERS - HOUSEHOLD_AFTER_A_YEAR - HOUSEHOLD_SINCE)
    dates: list[dt.date | None] = [*first, *year, *since, *never]
    rng.shuffle(dates)
    return dates


def employer_rows(rng: random.Random) -> list[dict[str, Any]]:
    """Companies (most declaring electronically, the paper ones small) and household employers
    (electronic when subscribed to their teleservice, else paper forms)."""
    rows: list[dict[str, Any]] = []
    for n in range(1, COMPANIES + 1):
        electronic = rng.random() < 0.85
        rows.append({
            "employer_id": f"EMP{n:05d}",
            "name": f"SAM Entreprise {n:04d}",
            "kind": "company",
            "size": rng.randint(5, 400) if electronic else rng.randint(1, 7),
            "declaration_channel": "electronic" if electronic else "paper",
            "teleservice_subscribed_on": _day_between(rng, dt.date(2008, 1, 1), SNAPSHOT_DAY)
            if electronic else None,
        })  # fmt: skip
    for n, subscribed_on in enumerate(_household_dates(rng), start=COMPANIES + 1):
        rows.append({
            "employer_id": f"EMP{n:05d}",
            "name": f"Particulier employeur {n:05d}",
            "kind": "household",
            "size": rng.choice([1, 1, 1, 2, 2, 3]),
            "declaration_channel": "electronic" if subscribed_on else "paper",
            "teleservice_subscribed_on": subscribed_on,
        })  # fmt: skip
    return rows


def practitioner_rows(rng: random.Random) -> list[dict[str, Any]]:
    """The doctors (city practice) and dentists sending FSE."""
    rows: list[dict[str, Any]] = []
    kinds = [("P1", "general_practitioner", GENERAL_PRACTITIONERS),
             ("P2", "specialist", SPECIALISTS), ("D2", "dentist", DENTISTS)]  # fmt: skip
    for prefix, kind, count in kinds:
        for n in range(1, count + 1):
            start = dt.date(2015, 6, 1) if kind == "dentist" else dt.date(2013, 1, 1)
            rows.append({
                "practitioner_id": f"{prefix}{n:04d}",
                "kind": kind,
                "specialty": rng.choice(SPECIALTIES) if kind == "specialist" else None,
                "name": f"Dr {kind.split('_')[0].capitalize()} {n:03d}",
                "fse_start_date": _day_between(rng, start, dt.date(2016, 11, 30)),
            })  # fmt: skip
    return rows


def pharmacy_rows(rng: random.Random) -> list[dict[str, Any]]:
    """The 15 pharmacies teletransmitting since March 2016 (pharmacy id = SFTP account)."""
    return [
        {"pharmacy_id": f"PH{n:06d}", "name": f"Pharmacie de Monaco {n:02d}",
         "teletransmission_start_date": _day_between(rng, dt.date(2016, 3, 1),
                                                     dt.date(2016, 3, 31))}
        for n in range(1, PHARMACIES + 1)
    ]  # fmt: skip


def write_registry(out_dir: Path, seed: int = 2016) -> list[Path]:
    """The six registry snapshots of 2016-12-31 in ``out_dir``: insured, card, insurer,
    employer, practitioner, pharmacy. The same seed gives the same bytes."""
    rng = random.Random(seed)
    insured = insured_rows(rng)
    return [
        write_snapshot(out_dir, "insured", SNAPSHOT_DAY, insured),
        write_snapshot(out_dir, "card", SNAPSHOT_DAY, card_rows(rng, insured)),
        write_snapshot(out_dir, "insurer", SNAPSHOT_DAY, insurer_rows(rng)),
        write_snapshot(out_dir, "employer", SNAPSHOT_DAY, employer_rows(rng)),
        write_snapshot(out_dir, "practitioner", SNAPSHOT_DAY, practitioner_rows(rng)),
        write_snapshot(out_dir, "pharmacy", SNAPSHOT_DAY, pharmacy_rows(rng)),
    ]
