"""Pharmacy v1 files as a pharmacy's software writes them (demo and tests)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from edihub.config import Settings
from edihub.formats.contract import feed_formats
from edihub.formats.fixed_width_writer import write_fixed_width


@dataclass
class Line:
    product_code: str
    quantity: int
    unit_price: int  # cents
    reimbursement_category: str = "65"
    amount: int | None = None  # None: quantity x unit price, as honest software writes it

    @property
    def declared_amount(self) -> int:
        return self.amount if self.amount is not None else self.quantity * self.unit_price


@dataclass
class Invoice:
    invoice_number: str
    registration_number: str
    beneficiary_rank: int
    prescriber_id: str
    dispensing_date: dt.date
    lines: list[Line] = field(default_factory=list)
    prescription_ref: str = "ORD000000001"
    total: int | None = None  # None: the sum of the lines

    @property
    def declared_total(self) -> int:
        return (
            self.total
            if self.total is not None
            else sum(line.declared_amount for line in self.lines)
        )


def write_pharmacy_file(
    path: Path,
    pharmacy: str,
    batch_number: str,
    invoices: list[Invoice],
    file_date: dt.date,
    newline: str = "\n",
) -> Path:
    contract = feed_formats(Settings.from_env().formats_dir, "pharmacy")[0]
    records = [
        (
            {
                "invoice_number": inv.invoice_number,
                "registration_number": inv.registration_number,
                "beneficiary_rank": inv.beneficiary_rank,
                "prescription_ref": inv.prescription_ref,
                "prescriber_id": inv.prescriber_id,
                "dispensing_date": inv.dispensing_date,
                "total": inv.declared_total,
            },
            [
                {
                    "product_code": line.product_code,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "amount": line.declared_amount,
                    "reimbursement_category": line.reimbursement_category,
                }
                for line in inv.lines
            ],
        )
        for inv in invoices
    ]
    header = {
        "sender": pharmacy,
        "batch_number": batch_number,
        "file_date": file_date,
        "format_version": contract.version,
    }
    trailer = {
        "invoice_count": len(invoices),
        "line_count": sum(len(inv.lines) for inv in invoices),
        "total_amount": sum(inv.declared_total for inv in invoices),
    }
    return write_fixed_width(path, contract, header, records, trailer, newline)
