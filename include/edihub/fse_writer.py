"""Writes FSE v1 files: what a doctor's or dentist's software sends. Used by the demo and tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

NAMESPACE = "urn:mc:caisses-sociales:edi:fse:v1"


@dataclass
class Act:
    code: str
    quantity: int
    unit_fee: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_fee * self.quantity


@dataclass
class CareSheet:
    sheet_id: str
    practitioner_id: str
    registration_number: str
    beneficiary_rank: int
    fse_code: str
    care_date: dt.date
    acts: list[Act] = field(default_factory=list)
    total: Decimal | None = None  # None: the sum of the acts, as honest software writes it

    @property
    def declared_total(self) -> Decimal:
        return (
            self.total
            if self.total is not None
            else sum((a.amount for a in self.acts), Decimal("0"))
        )


def _sheet_xml(s: CareSheet) -> str:
    acts = "".join(
        f"<act><code>{escape(a.code)}</code><quantity>{a.quantity}</quantity>"
        f"<unitFee>{a.unit_fee:.2f}</unitFee><amount>{a.amount:.2f}</amount></act>"
        for a in s.acts
    )
    return (
        f"  <careSheet><sheetId>{escape(s.sheet_id)}</sheetId>"
        f"<practitionerId>{escape(s.practitioner_id)}</practitionerId>"
        f"<insured><registrationNumber>{escape(s.registration_number)}</registrationNumber>"
        f"<beneficiaryRank>{s.beneficiary_rank}</beneficiaryRank></insured>"
        f"<fseCode>{escape(s.fse_code)}</fseCode><careDate>{s.care_date.isoformat()}</careDate>"
        f"{acts}<total>{s.declared_total:.2f}</total></careSheet>\n"
    )


def write_fse_file(
    path: Path,
    sender: str,
    batch_number: str,
    sheets: Iterable[CareSheet],
    created_at: dt.datetime,
) -> Path:
    """Stream the file out sheet by sheet (so generators of millions of sheets stay flat)."""
    count, total = 0, Decimal("0")
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<fseFile xmlns="{NAMESPACE}" '
            f'formatVersion="1">\n  <header><sender>{escape(sender)}</sender>'
            f"<batchNumber>{escape(batch_number)}</batchNumber>"
            f"<createdAt>{created_at.replace(microsecond=0).isoformat()}</createdAt>"
            f"<software>edihub demo</software></header>\n"
        )
        for sheet in sheets:
            out.write(_sheet_xml(sheet))
            count += 1
            total += sheet.declared_total
        out.write(
            f"  <trailer><sheetCount>{count}</sheetCount>"
            f"<totalAmount>{total:.2f}</totalAmount></trailer>\n</fseFile>\n"
        )
    return path
