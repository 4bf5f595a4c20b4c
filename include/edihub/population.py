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

And the partner files of December 2016, which the hub collects, validates and loads on its
processing day 2016-12-31 (``DEMO_DAY``; ``edihub run`` sets the hub's clock to it):

- FSE: each practitioner's month of care sheets, about 9,000 in all;
- pharmacy: each pharmacy's month of invoices;
- payroll: every company's December declaration, 85 % sent electronically by the company,
  the other 15 % (4 employees on average, 3 % of the salary lines) keyed in from paper forms
  by the funds' staff and sent from their account (``demo.PAPER_KEYING``);
- the claims come from ``HOLDERS`` families, 40 % of whose account holders chose
  dematerialised statements, so that about 40 % of the statements go by e-mail.

Household employers declare through their own teleservice: the brochure's payroll figures are
the companies' monthly declarations, and the demo sends none for households.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from edihub.demo import (
    ACTS,
    CORE_SYSTEMS,
    INSURERS,
    PAPER_KEYING,
    PRODUCTS,
    DemoFile,
    DemoSet,
    insurer_account,
)
from edihub.fse_writer import Act, CareSheet, write_fse_file
from edihub.payroll_writer import SalaryLine, write_payroll_file
from edihub.pharmacy_writer import Invoice, Line, write_pharmacy_file
from edihub.registry_writer import write_snapshot

SNAPSHOT_DAY = dt.date(2016, 12, 31)
DEMO_DAY = SNAPSHOT_DAY  # the hub's processing day of the demo's partner files
MONTH_FIRST, MONTH_LAST = dt.date(2016, 12, 1), dt.date(2016, 12, 30)  # the month's care days

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
# Companies, all declaring each month: 15 % on paper, 4 employees each on average, whose lines
# are 3 % of all salary lines (so the electronic ones average about 23 employees).
COMPANIES = 200
PAPER_COMPANIES = 30
PAPER_EMPLOYEES = 4 * PAPER_COMPANIES
ELECTRONIC_EMPLOYEES = PAPER_EMPLOYEES * 97 // 3

GENERAL_PRACTITIONERS = 92
SPECIALISTS = 88
DENTISTS = 30
SPECIALTIES = ["cardiology", "dermatology", "gynaecology", "ophthalmology", "paediatrics",
               "psychiatry", "rheumatology", "ENT", "gastroenterology", "radiology"]  # fmt: skip
PHARMACIES = 15
# Care sheets a practitioner sends in a month, by kind: about 9,000 in all.
SHEETS_PER_MONTH = {"general_practitioner": (40, 58), "specialist": (34, 50), "dentist": (20, 30)}
INVOICES_PER_MONTH = (150, 250)  # a pharmacy's teletransmitted invoices
# The families whose claims of the month make the statements, 40 % of whose account holders
# chose dematerialised statements (the brochure's "40 % environ ... par mail").
HOLDERS = 2_500
HOLDERS_BY_EMAIL = 1_000
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


def _sizes(rng: random.Random, count: int, total: int, low: int, high: int) -> list[int]:
    """``count`` sizes between ``low`` and ``high`` adding up to exactly ``total``."""
    sizes = [rng.randint(low, high) for _ in range(count)]
    while (gap := total - sum(sizes)) != 0:
        i = rng.randrange(count)
        step = 1 if gap > 0 else -1
        if low <= sizes[i] + step <= high:
            sizes[i] += step
    return sizes


def employer_rows(rng: random.Random) -> list[dict[str, Any]]:
    """Companies (most declaring electronically, the paper ones small) and household employers
    (electronic when subscribed to their teleservice, else paper forms)."""
    paper = set(rng.sample(range(COMPANIES), PAPER_COMPANIES))
    paper_sizes = iter(_sizes(rng, PAPER_COMPANIES, PAPER_EMPLOYEES, 1, 8))
    electronic_sizes = iter(_sizes(rng, COMPANIES - PAPER_COMPANIES, ELECTRONIC_EMPLOYEES, 3, 120))
    rows: list[dict[str, Any]] = []
    for n in range(1, COMPANIES + 1):
        electronic = n - 1 not in paper
        rows.append({
            "employer_id": f"EMP{n:05d}",
            "name": f"SAM Entreprise {n:04d}",
            "kind": "company",
            "size": next(electronic_sizes) if electronic else next(paper_sizes),
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


@dataclass(frozen=True)
class Registry:
    """The registry's rows, from which the partner files are drawn."""

    insured: list[dict[str, Any]]
    cards: list[dict[str, Any]]
    insurers: list[dict[str, Any]]
    employers: list[dict[str, Any]]
    practitioners: list[dict[str, Any]]
    pharmacies: list[dict[str, Any]]

    @classmethod
    def of(cls, seed: int) -> Registry:
        rng = random.Random(seed)
        insured = insured_rows(rng)
        return cls(insured, card_rows(rng, insured), insurer_rows(rng), employer_rows(rng),
                   practitioner_rows(rng), pharmacy_rows(rng))  # fmt: skip

    def write(self, out_dir: Path) -> list[Path]:
        documents = [("insured", self.insured), ("card", self.cards), ("insurer", self.insurers),
                     ("employer", self.employers), ("practitioner", self.practitioners),
                     ("pharmacy", self.pharmacies)]  # fmt: skip
        return [write_snapshot(out_dir, name, SNAPSHOT_DAY, rows) for name, rows in documents]


def write_registry(out_dir: Path, seed: int = 2016) -> list[Path]:
    """The six registry snapshots of 2016-12-31 in ``out_dir``: insured, card, insurer,
    employer, practitioner, pharmacy. The same seed gives the same bytes."""
    return Registry.of(seed).write(out_dir)


# ---------------------------------------------------------------- the partners' files


class _Claimants:
    """Who the month's claims are for: each of the HOLDERS families at least once (so that
    each gets its statement), the other claims spread at random over them; a claim is for the
    holder or one of its beneficiaries."""

    def __init__(self, rng: random.Random, registry: Registry, claims: int) -> None:
        families: dict[str, list[dict[str, Any]]] = {}
        for person in registry.insured:
            families.setdefault(person["registration_number"], []).append(person)
        holders = [p for p in registry.insured if p["beneficiary_rank"] == 0]
        by_email = [p for p in holders if p["dematerialisation"]]
        on_paper = [p for p in holders if not p["dematerialisation"]]
        chosen = [
            p["registration_number"]
            for p in rng.sample(by_email, HOLDERS_BY_EMAIL)
            + rng.sample(on_paper, HOLDERS - HOLDERS_BY_EMAIL)
        ]
        slots = chosen + rng.choices(chosen, k=claims - len(chosen))
        rng.shuffle(slots)
        self._slots = iter(slots)
        self._families, self._rng = families, rng
        self._cards = {(c["registration_number"], c["beneficiary_rank"]): c["fse_code"]
                       for c in registry.cards}  # fmt: skip

    def next(self) -> tuple[str, int, str]:
        """(registration number, beneficiary rank, F.S.E. code of the card) of the next claim."""
        person = self._rng.choice(self._families[next(self._slots)])
        key = (person["registration_number"], person["beneficiary_rank"])
        return key[0], key[1], self._cards[key]


_KIND_ACTS = {
    "general_practitioner": [a for a in ACTS if a[0] in ("C", "K")],
    "specialist": [a for a in ACTS if a[0] in ("CS", "K")],
    "dentist": [a for a in ACTS if a[0] in ("SC", "HBQK002")],
}


def write_demo(out_dir: Path, seed: int = 2016) -> DemoSet:
    """The registry snapshots and the partner files of December 2016 in ``out_dir``, by
    sender; the same seed gives the same bytes."""
    registry = Registry.of(seed)
    rng = random.Random(f"partner-files-{seed}")
    files: dict[str, list[DemoFile]] = {
        CORE_SYSTEMS: [DemoFile("registry", p) for p in registry.write(out_dir / "registry")]
    }
    created = dt.datetime.combine(DEMO_DAY, dt.time(8, 30))
    sheets = {p["practitioner_id"]: rng.randint(*SHEETS_PER_MONTH[p["kind"]])
              for p in registry.practitioners}  # fmt: skip
    invoices = {p["pharmacy_id"]: rng.randint(*INVOICES_PER_MONTH) for p in registry.pharmacies}
    claimants = _Claimants(rng, registry, sum(sheets.values()) + sum(invoices.values()))

    def care_day() -> dt.date:
        return _day_between(rng, MONTH_FIRST, MONTH_LAST)

    (out_dir / "fse").mkdir(parents=True, exist_ok=True)
    for practitioner in registry.practitioners:
        pid, acts = practitioner["practitioner_id"], _KIND_ACTS[practitioner["kind"]]
        month = []
        for i in range(1, sheets[pid] + 1):
            number, rank, card = claimants.next()
            month.append(CareSheet(
                id=f"{pid}-1612-{i:05d}", practitioner_id=pid, registration_number=number,
                beneficiary_rank=rank, fse_code=card, care_date=care_day(),
                acts=[Act(code, rng.choice([1, 1, 1, 2]), fee)
                      for code, fee in rng.sample(acts, rng.randint(1, len(acts)))],
            ))  # fmt: skip
        path = write_fse_file(out_dir / "fse" / f"FSE_{pid}_000001.xml", pid, "000001", month,
                              created)  # fmt: skip
        files[pid] = [DemoFile("fse", path)]

    (out_dir / "pharmacy").mkdir(parents=True, exist_ok=True)
    prescribers = [p["practitioner_id"] for p in registry.practitioners]
    for pharmacy in registry.pharmacies:
        ph = pharmacy["pharmacy_id"]
        month_invoices = []
        for i in range(1, invoices[ph] + 1):
            number, rank, _ = claimants.next()
            month_invoices.append(Invoice(
                invoice_number=f"{ph[2:]}{i:06d}", registration_number=number,
                beneficiary_rank=rank, prescriber_id=rng.choice(prescribers),
                dispensing_date=care_day(),
                lines=[Line(code, rng.choice([1, 1, 1, 2, 3]), price, category)
                       for code, _, price, category in rng.sample(PRODUCTS, rng.randint(1, 4))],
                prescription_ref=f"ORD{rng.randint(0, 999_999_999):09d}",
            ))  # fmt: skip
        path = write_pharmacy_file(out_dir / "pharmacy" / f"PHA_{ph}_00000001.txt", ph,
                                   "00000001", month_invoices, DEMO_DAY)  # fmt: skip
        files[ph] = [DemoFile("pharmacy", path)]

    # December's salary declarations: each company's employees are insured account holders.
    (out_dir / "payroll").mkdir(parents=True, exist_ok=True)
    workers = iter(rng.sample(
        [p for p in registry.insured if p["beneficiary_rank"] == 0],
        sum(e["size"] for e in registry.employers if e["kind"] == "company"),
    ))  # fmt: skip
    for employer in (e for e in registry.employers if e["kind"] == "company"):
        eid, paper = employer["employer_id"], employer["declaration_channel"] == "paper"
        lines = [
            SalaryLine(w["registration_number"], w["last_name"], w["first_name"],
                       Decimal("151.67"), gross_salary=Decimal(rng.randint(1800_00, 7500_00)) / 100)
            for w in (next(workers) for _ in range(employer["size"]))
        ]  # fmt: skip
        sender = PAPER_KEYING if paper else eid
        files.setdefault(sender, [])
        batch = f"{len(files[sender]) + 1:06d}"  # the paper account numbers its batches
        path = write_payroll_file(
            out_dir / "payroll" / f"DSM_{eid}_2016-12.xml", sender, batch, "2016-12", lines,
            created, "company", channel="paper" if paper else "electronic", version=2,
            employer=eid,
        )  # fmt: skip
        files[sender].append(DemoFile("payroll", path))
    return DemoSet(files=files)
