"""A small, deterministic demo: the registry snapshots the funds' core systems send, the FSE
files three practitioners send, the pharmacy files two pharmacies send, two employers'
salary declarations and one the funds' staff keyed in from a household employer's paper form.

The files are made to show every outcome a sender can get: accepted, accepted with errors
(two sheets refused by the data contract; one pharmacy invoice whose line amount is not
quantity x unit price) and rejected (a trailer that does not add up).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from edihub.fse_writer import (
    Act,
    CareSheet,
    ExemptionRequest,
    InvalidityRequest,
    Message,
    PriorApproval,
    WorkStoppage,
    write_fse_file,
)
from edihub.payroll_writer import SalaryLine, write_payroll_file
from edihub.pharmacy_writer import Invoice, Line, write_pharmacy_file
from edihub.registry_writer import write_snapshot

PRACTITIONERS = [
    ("P10001", "general_practitioner", "Dr Grimaldi"),
    ("P10002", "specialist", "Dr Rainier"),
    ("D20001", "dentist", "Dr Fontvieille"),
]
SPECIALTIES = {"P10002": "cardiology"}
CORE_SYSTEMS = "csm-core"  # the account the funds' core systems send registry snapshots from
# id, name, kind, size, how it declares (paper: the funds' staff key its forms in)
EMPLOYERS = [
    ("EMP0001", "SAM Demo", "company", 12, "electronic"),
    ("EMP0002", "M. et Mme Demo", "household", 2, "electronic"),
    ("EMP0003", "Mme Papier Demo", "household", 1, "paper"),
]
PAPER_KEYING = "CSMSAISIE"  # the funds' account for keyed-in paper declarations (paper_senders)
# The 52 complementary insurers under convention (brochure), each with its own export format
# and time (Monaco), between 05:00 and 08:45.
INSURERS = [
    (f"MUT{n:03d}", f"Mutuelle Demo {n:02d}", ("csv", "xml", "parquet")[n % 3],
     f"{5 + n % 4:02d}:{15 * (n % 4):02d}")
    for n in range(1, 53)
]  # fmt: skip
ACTS = [
    ("C", Decimal("30.00")),
    ("CS", Decimal("50.00")),
    ("K", Decimal("12.50")),
    ("SC", Decimal("28.92")),
    ("HBQK002", Decimal("46.20")),
]

PHARMACIES = ["PH000001", "PH000002"]  # pharmacy id = SFTP account, 8 characters


def _cip13(body: str) -> str:
    """A CIP13 code: 12 digits (3400 9 for medicines, then the product) and the EAN-13 check."""
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str(-weighted % 10)


# The pharmacies' shelf: CIP13, what it is (for people reading the demo), public price in
# cents, reimbursement category (rate in %, or NR: not reimbursed).
PRODUCTS = [
    (_cip13("340093000101"), "paracetamol 1 g, 8 tablets", 218, "65"),
    (_cip13("340093000205"), "amoxicillin 1 g, 6 tablets", 364, "65"),
    (_cip13("340093000309"), "levothyroxine 75 µg, 30 tablets", 245, "65"),
    (_cip13("340093000408"), "aspirin 75 mg, 30 sachets", 345, "65"),
    (_cip13("340093000512"), "phloroglucinol 80 mg, 30 tablets", 279, "30"),
    (_cip13("340093000616"), "ibuprofen 400 mg, 20 tablets", 226, "65"),
    (_cip13("340093000720"), "atorvastatin 20 mg, 90 tablets", 1839, "65"),
    (_cip13("340093000824"), "metformin 1000 mg, 180 tablets", 1062, "65"),
    (_cip13("340093000928"), "insulin glargine 100 U/ml, 5 pens", 4869, "65"),
    (_cip13("340093001017"), "adalimumab 40 mg, 2 pens", 67254, "100"),
    (_cip13("340093001121"), "cholecalciferol 100 000 IU, 1 ampoule", 166, "65"),
    (_cip13("340093001225"), "sodium alginate oral suspension, 250 ml", 331, "15"),
    (_cip13("340093001329"), "diosmectite 3 g, 30 sachets", 425, "NR"),
    (_cip13("340093001433"), "saline nasal spray, 100 ml", 590, "NR"),
]


def insurer_account(insurer_id: str) -> str:
    """The SFTP account an insurer of the demo pulls its exports with."""
    return insurer_id.lower()


class DemoFile(NamedTuple):
    feed: str  # a key of edihub.feeds.FEEDS: the inbound folder it goes to
    path: Path


@dataclass(frozen=True)
class DemoSet:
    files: dict[str, list[DemoFile]]  # partner id -> the files it sends, with their feed
    insurer_accounts: tuple[str, ...] = tuple(insurer_account(iid) for iid, *_ in INSURERS)

    def feed_of(self, path: Path) -> str:
        for demo_files in self.files.values():
            for f in demo_files:
                if f.path == path:
                    return f.feed
        raise KeyError(path)


def _beneficiaries(rng: random.Random, count: int) -> list[tuple[str, int]]:
    numbers = rng.sample(range(10_000, 999_999), count)
    return [(str(n), rng.choice([0, 0, 0, 1, 2])) for n in numbers]


def insured_row(rng: random.Random, number: str, rank: int, day: dt.date) -> dict[str, Any]:
    """An insured person's registry row as of ``day``: most have a teleservice account, most
    of those a validated e-mail, some chose dematerialised statements and a complementary
    insurer (the benchmark draws its million rows from here too)."""
    subscribed = rng.random() < 0.6
    validated = subscribed and rng.random() < 0.9
    insurer = rng.choice([None, *(i[0] for i in INSURERS)]) if rank == 0 else None
    return {
        "registration_number": number,
        "beneficiary_rank": rank,
        "last_name": f"NOM{number}",
        "first_name": f"Prenom{rank}",
        "postal_address": f"{rng.randint(1, 40)} boulevard des Moulins, 98000 MONACO",
        "email": f"assure.{number}.{rank}@example.mc" if subscribed else None,
        "teleservice_subscribed_on": day - dt.timedelta(days=rng.randint(30, 900))
        if subscribed
        else None,
        "email_validated": validated,
        "dematerialisation": validated and rng.random() < 0.7,
        "insurer_id": insurer,
        "insurer_member_number": f"A{rng.randint(0, 99_999_999):08d}" if insurer else None,
        "insurer_consent": insurer is not None and rng.random() < 0.8,
    }


def practitioner_rows() -> list[dict[str, Any]]:
    """The demo practitioners' registry rows (the benchmark seeds its registry with them too)."""
    return [
        {
            "practitioner_id": pid,
            "kind": kind,
            "specialty": SPECIALTIES.get(pid),
            "name": name,
            "fse_start_date": dt.date(2015, 6, 1),
        }
        for pid, kind, name in PRACTITIONERS
    ]


def _registry(
    rng: random.Random, out_dir: Path, insured: list[tuple[str, int]], today: dt.date
) -> list[Path]:
    """Yesterday's snapshot of each registry document."""
    folder, day = out_dir / "registry", today - dt.timedelta(days=1)
    people = [insured_row(rng, number, rank, day) for number, rank in insured]
    cards = [
        {
            "registration_number": number,
            "beneficiary_rank": rank,
            "fse_code": _card_code(number, rank),
            "valid_from": dt.date(2015, 1, 1),
        }
        for number, rank in insured
    ]
    pharmacies = [
        {
            "pharmacy_id": p,
            "name": f"Pharmacie {p}",
            "teletransmission_start_date": dt.date(2016, 3, 1),
        }
        for p in PHARMACIES
    ]
    employers = [
        {
            "employer_id": eid,
            "name": name,
            "kind": kind,
            "size": size,
            "declaration_channel": channel,
            # a paper employer has not subscribed to the teleservice
            "teleservice_subscribed_on": dt.date(2015, 10, 12) if channel == "electronic" else None,
        }
        for eid, name, kind, size, channel in EMPLOYERS
    ]
    insurers = [
        {
            "insurer_id": iid,
            "name": name,
            "convention_signed_on": dt.date(2014, 1, 1),
            "status": "active",
            "sftp_account": insurer_account(iid),
            "export_format": fmt,
            "export_time": at,
        }
        for iid, name, fmt, at in INSURERS
    ]
    return [
        write_snapshot(folder, "insured", day, people),
        write_snapshot(folder, "card", day, cards),
        write_snapshot(folder, "practitioner", day, practitioner_rows()),
        write_snapshot(folder, "pharmacy", day, pharmacies),
        write_snapshot(folder, "employer", day, employers),
        write_snapshot(folder, "insurer", day, insurers),
    ]


def _card_code(number: str, rank: int) -> str:
    """The F.S.E. code of an insured's card in the demo: derived, so files can carry it."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    seed = random.Random(f"card-{number}-{rank}")
    return "".join(seed.choices(alphabet, k=8))


def _sheets(
    rng: random.Random,
    practitioner: str,
    insured: list[tuple[str, int]],
    n: int,
    today: dt.date,
    first: int = 1,
) -> list[CareSheet]:
    sheets = []
    for i in range(first, first + n):
        reg, rank = rng.choice(insured)
        acts = [
            Act(code, rng.randint(1, 2), fee) for code, fee in rng.sample(ACTS, rng.randint(1, 3))
        ]
        sheets.append(
            CareSheet(
                id=f"{practitioner}-{today:%y%m%d}-{i:05d}",
                practitioner_id=practitioner,
                registration_number=reg,
                beneficiary_rank=rank,
                fse_code=_card_code(reg, rank),
                care_date=today - dt.timedelta(days=rng.randint(0, 20)),
                acts=acts,
            )
        )
    return sheets


def _v2_messages(
    rng: random.Random, insured: list[tuple[str, int]], today: dt.date
) -> list[tuple[str, str, list[Message]]]:
    """(sender, batch, messages) of the FSE v2 demo files: work stoppages and an invalidity
    request from the general practitioner, exemption requests from the specialist, prior
    approvals from the dentist."""
    workers = [(reg, rank) for reg, rank in insured if rank == 0]

    def start(prefix: str, i: int, practitioner: str, reg: str, rank: int) -> dict[str, Any]:
        return {"id": f"{prefix}-{today:%y%m%d}-{i:03d}", "practitioner_id": practitioner,
                "registration_number": reg, "beneficiary_rank": rank,
                "fse_code": _card_code(reg, rank)}  # fmt: skip

    def ago(days: int) -> dt.date:
        return today - dt.timedelta(days=days)

    stoppages: list[Message] = []
    for i, (reg, rank) in enumerate(rng.sample(workers, 6), start=1):
        prescribed = ago(rng.randint(0, 10))
        stoppages.append(
            WorkStoppage(
                **start("AT", i, "P10001", reg, rank),
                prescribed_on=prescribed,
                start_date=prescribed,
                end_date=prescribed + dt.timedelta(days=rng.randint(2, 15)),
                reason_category=rng.choice(["illness", "illness", "work_accident"]),
                outings_allowed=rng.random() < 0.7,
            )
        )
    reg, rank = rng.choice(workers)
    invalidity: list[Message] = [
        InvalidityRequest(
            **start("INV", 1, "P10001", reg, rank),
            requested_on=ago(3),
            stopped_work_since=ago(380),
            incapacity_rate=70,
            condition_code="M54.5",
        )
    ]
    exemptions: list[Message] = [
        ExemptionRequest(
            **start("ETM", i, "P10002", reg, rank),
            requested_on=ago(i),
            ground="long_term_condition",
            condition_code=code,
            exempt_from=ago(i),
        )
        for i, ((reg, rank), code) in enumerate(
            zip(rng.sample(insured, 3), ["I25.1", "E11.9", "C50.9"], strict=True), start=1
        )
    ]
    crown = [Act("HBLD036", 1, Decimal("107.50")), Act("HBMD049", 2, Decimal("35.00"))]
    approvals: list[Message] = [
        PriorApproval(**start("DAP", i, "D20001", reg, rank), requested_on=ago(i),
                      planned_start=today + dt.timedelta(days=14), acts=crown[: 1 + i % 2])
        for i, (reg, rank) in enumerate(rng.sample(insured, 3), start=1)
    ]  # fmt: skip
    return [
        ("P10001", "000002", stoppages),
        ("P10001", "000003", invalidity),
        ("P10002", "000002", exemptions),
        ("D20001", "000003", approvals),
    ]


def _invoices(
    rng: random.Random,
    pharmacy: str,
    insured: list[tuple[str, int]],
    n: int,
    today: dt.date,
    first: int = 1,
) -> list[Invoice]:
    invoices = []
    prescribers = [p for p, kind, _ in PRACTITIONERS if kind != "dentist"] * 3 + ["D20001"]
    for i in range(first, first + n):
        reg, rank = rng.choice(insured)
        lines = [
            Line(code, rng.choice([1, 1, 1, 2, 3]), price, category)
            for code, _, price, category in rng.sample(PRODUCTS, rng.randint(1, 4))
        ]
        invoices.append(
            Invoice(
                invoice_number=f"{pharmacy[2:]}{i:06d}",  # unique per pharmacy, 12 characters
                registration_number=reg,
                beneficiary_rank=rank,
                prescriber_id=rng.choice(prescribers),
                dispensing_date=today - dt.timedelta(days=rng.randint(0, 20)),
                lines=lines,
                prescription_ref=f"ORD{rng.randint(0, 999_999_999):09d}",
            )
        )
    return invoices


def write_demo(out_dir: Path, today: dt.date, seed: int = 2016) -> DemoSet:
    rng = random.Random(seed)
    outbox = out_dir / "fse"
    outbox.mkdir(parents=True, exist_ok=True)
    insured = _beneficiaries(rng, 300)
    files: dict[str, list[DemoFile]] = {
        CORE_SYSTEMS: [
            DemoFile("registry", path)
            for path in _registry(random.Random(f"registry-{seed}"), out_dir, insured, today)
        ]
    }

    created = dt.datetime.combine(today, dt.time(8, 30))

    def send(partner: str, batch: str, sheets: list[CareSheet]) -> None:
        path = write_fse_file(
            outbox / f"FSE_{partner}_{batch}.xml", partner, batch, sheets, created
        )
        files.setdefault(partner, []).append(DemoFile("fse", path))

    send("P10001", "000001", _sheets(rng, "P10001", insured, 40, today))

    with_errors = _sheets(rng, "P10002", insured, 25, today)
    with_errors[4].total = with_errors[4].declared_total + Decimal("10.00")  # FSE-R04
    with_errors[11].registration_number = "4242"  # not in the registry: FSE-R07
    send("P10002", "000001", with_errors)

    send("D20001", "000001", _sheets(rng, "D20001", insured, 15, today))
    # A second batch whose trailer lies about its sheet count: the whole file is rejected.
    bad_trailer = outbox / "FSE_D20001_000002.xml"
    write_fse_file(
        bad_trailer, "D20001", "000002", _sheets(rng, "D20001", insured, 5, today, 100), created
    )
    bad_trailer.write_text(
        bad_trailer.read_text(encoding="utf-8").replace(
            "<sheetCount>5</sheetCount>", "<sheetCount>6</sheetCount>"
        ),
        encoding="utf-8",
    )
    files["D20001"].append(DemoFile("fse", bad_trailer))

    # FSE v2: the other messages doctors send, and a dentist's prior-approval requests. They
    # draw from their own generator, so that the files above stay as they were.
    for partner, batch, messages in _v2_messages(random.Random(f"fse-v2-{seed}"), insured, today):
        path = write_fse_file(
            outbox / f"FSE_{partner}_{batch}.xml",
            partner,
            batch,
            messages,
            created,
            version=2,
            root=messages[0].ROOT,
        )
        files[partner].append(DemoFile("fse", path))

    # The pharmacies draw from their own generator: the FSE files above stay as they were.
    prng = random.Random(f"pharmacy-{seed}")
    pharmacy_outbox = out_dir / "pharmacy"
    pharmacy_outbox.mkdir(parents=True, exist_ok=True)

    def send_pharmacy(pharmacy: str, batch: str, invoices: list[Invoice]) -> None:
        path = write_pharmacy_file(
            pharmacy_outbox / f"PHA_{pharmacy}_{batch}.txt", pharmacy, batch, invoices, today
        )
        files.setdefault(pharmacy, []).append(DemoFile("pharmacy", path))

    send_pharmacy("PH000001", "00000001", _invoices(prng, "PH000001", insured, 20, today))
    send_pharmacy("PH000002", "00000001", _invoices(prng, "PH000002", insured, 18, today))
    # A second batch where one line's amount is not quantity x unit price (PHA-R08): that
    # invoice is refused, the other five are loaded.
    with_errors = _invoices(prng, "PH000002", insured, 6, today, first=101)
    wrong = with_errors[3].lines[0]
    wrong.amount = wrong.quantity * wrong.unit_price + 100
    send_pharmacy("PH000002", "00000002", with_errors)

    # Last month's salary declarations: a company declaring gross salaries, a household
    # employer declaring its domestic staff's net salaries (the hub computes the gross), and a
    # household employer's paper form keyed in and sent by the funds' staff (payroll v2).
    payroll_outbox = out_dir / "payroll"
    payroll_outbox.mkdir(parents=True, exist_ok=True)
    period = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    employees = [number for number, rank in insured if rank == 0]
    erng = random.Random(f"payroll-{seed}")

    def declare(
        employer: str, kind: str, lines: list[SalaryLine], sender: str | None = None
    ) -> None:
        """The employer's own v1 file, or (``sender``: the paper account) a paper v2 one."""
        paper = sender is not None
        path = write_payroll_file(
            payroll_outbox / f"DSM_{employer}_{period}.xml",
            sender or employer,
            "000001",
            period,
            lines,
            created,
            kind,
            channel="paper" if paper else "electronic",
            version=2 if paper else 1,
            employer=employer if paper else None,
        )
        files.setdefault(sender or employer, []).append(DemoFile("payroll", path))

    staff = erng.sample(employees, 14)
    declare("EMP0001", "company", [
        SalaryLine(number, f"NOM{i:02d}", "Prenom", Decimal("151.67"),
                   gross_salary=Decimal(erng.randint(2200_00, 6500_00)) / 100)
        for i, number in enumerate(staff[:12])
    ])  # fmt: skip
    declare("EMP0002", "household", [
        SalaryLine(number, f"NOM{i:02d}", "Prenom", Decimal("86.67"),
                   net_salary=Decimal(erng.randint(900_00, 1800_00)) / 100)
        for i, number in enumerate(staff[12:])
    ])  # fmt: skip
    # Drawn after the others, so that their files stay as they were.
    [keyed] = erng.sample([n for n in employees if n not in staff], 1)
    declare("EMP0003", "household", [
        SalaryLine(keyed, "NOM14", "Prenom", Decimal("43.33"), net_salary=Decimal("640.00")),
    ], sender=PAPER_KEYING)  # fmt: skip
    return DemoSet(files=files)
