"""A small, deterministic demo: a registry and the FSE files three practitioners send.

The files are made to show every outcome a sender can get: accepted, accepted with errors
(two sheets refused by the data contract) and rejected (a trailer that does not add up).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from edihub.fse_writer import Act, CareSheet, write_fse_file

PRACTITIONERS = [
    ("P10001", "general_practitioner", "Dr Grimaldi"),
    ("P10002", "specialist", "Dr Rainier"),
    ("D20001", "dentist", "Dr Fontvieille"),
]
ACTS = [
    ("C", Decimal("30.00")),
    ("CS", Decimal("50.00")),
    ("K", Decimal("12.50")),
    ("SC", Decimal("28.92")),
    ("HBQK002", Decimal("46.20")),
]


@dataclass(frozen=True)
class DemoSet:
    registry_dir: Path
    files: dict[str, list[Path]]  # partner id -> FSE files it sends


def _beneficiaries(rng: random.Random, count: int) -> list[tuple[str, int]]:
    numbers = rng.sample(range(10_000, 999_999), count)
    return [(str(n), rng.choice([0, 0, 0, 1, 2])) for n in numbers]


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
                sheet_id=f"{practitioner}-{today:%y%m%d}-{i:05d}",
                practitioner_id=practitioner,
                registration_number=reg,
                beneficiary_rank=rank,
                fse_code="".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=8)),
                care_date=today - dt.timedelta(days=rng.randint(0, 20)),
                acts=acts,
            )
        )
    return sheets


def write_demo(out_dir: Path, today: dt.date, seed: int = 2016) -> DemoSet:
    rng = random.Random(seed)
    registry = out_dir / "registry"
    outbox = out_dir / "fse"
    registry.mkdir(parents=True, exist_ok=True)
    outbox.mkdir(parents=True, exist_ok=True)
    insured = _beneficiaries(rng, 300)
    with (registry / "practitioners.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["practitioner_id", "kind", "name"])
        w.writerows(PRACTITIONERS)
    with (registry / "beneficiaries.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["registration_number", "beneficiary_rank"])
        w.writerows(insured)

    created = dt.datetime.combine(today, dt.time(8, 30))
    files: dict[str, list[Path]] = {}

    def send(partner: str, batch: str, sheets: list[CareSheet]) -> None:
        path = write_fse_file(
            outbox / f"FSE_{partner}_{batch}.xml", partner, batch, sheets, created
        )
        files.setdefault(partner, []).append(path)

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
    files["D20001"].append(bad_trailer)
    return DemoSet(registry_dir=registry, files=files)
