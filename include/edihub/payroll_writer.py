"""Writes payroll files, v1 or v2: an employer's monthly salary declaration (DSM 2.0 style), as
the employer's payroll software, or the funds' staff keying a paper declaration, sends it.
Used by the demo, the partner docs and tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

# version -> the namespace that names it (formats/payroll/v<N>/format.yaml)
NAMESPACES = {v: f"urn:mc:caisses-sociales:edi:payroll:v{v}" for v in (1, 2)}


@dataclass
class SalaryLine:
    """One employee's month. Version 1: exactly one of ``gross_salary`` and ``net_salary``;
    version 2: the gross, with the net or not, or the net alone (net alone: household
    employers only). The writer writes what it is given, wrong or not."""

    employee_id: str
    last_name: str
    first_name: str
    hours_worked: Decimal
    gross_salary: Decimal | None = None
    net_salary: Decimal | None = None
    base_ccss: Decimal | None = None
    base_car: Decimal | None = None
    teleworking: bool | None = None


def _amount(tag: str, value: Decimal | None) -> str:
    return "" if value is None else f"<{tag}>{value:.2f}</{tag}>"


def _line_xml(s: SalaryLine) -> str:
    telework = (
        "" if s.teleworking is None else f"<teleworking>{str(s.teleworking).lower()}</teleworking>"
    )
    return (
        f"  <employee><employeeId>{escape(s.employee_id)}</employeeId>"
        f"<lastName>{escape(s.last_name)}</lastName><firstName>{escape(s.first_name)}</firstName>"
        f"<hoursWorked>{s.hours_worked:.2f}</hoursWorked>"
        f"{_amount('grossSalary', s.gross_salary)}{_amount('netSalary', s.net_salary)}"
        f"{_amount('baseCCSS', s.base_ccss)}{_amount('baseCAR', s.base_car)}"
        f"{telework}</employee>\n"
    )


def write_payroll_file(
    path: Path,
    sender: str,
    batch_number: str,
    period: str,
    lines: Iterable[SalaryLine],
    created_at: dt.datetime,
    employer_kind: str = "company",
    channel: str = "electronic",
    version: int = 1,
    employer: str | None = None,
) -> Path:
    """Stream the declaration out line by line (generators of any size stay flat in memory).

    The trailer counts the lines and sums their gross salaries (net lines count for 0).
    ``version`` 2 names the ``employer`` apart from the sender (by default the sender itself:
    an employer sending its own declaration); version 1 has no such field.
    """
    if version not in NAMESPACES:
        raise ValueError(f"payroll version {version} does not exist (known: {list(NAMESPACES)})")
    if version == 1 and employer is not None:
        # v1's sender is the employer: writing the file anyway would drop the employer silently
        raise ValueError("payroll v1 has no employer field: the sender is the employer")
    employer_xml = "" if version == 1 else f"<employer>{escape(employer or sender)}</employer>"
    count, total = 0, Decimal("0")
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<declaration xmlns="{NAMESPACES[version]}" '
            f'formatVersion="{version}">\n  <header><sender>{escape(sender)}</sender>'
            f"{employer_xml}<batchNumber>{escape(batch_number)}</batchNumber>"
            f"<period>{escape(period)}</period><channel>{escape(channel)}</channel>"
            f"<employerKind>{escape(employer_kind)}</employerKind>"
            f"<createdAt>{created_at.replace(microsecond=0).isoformat()}</createdAt></header>\n"
        )
        for line in lines:
            out.write(_line_xml(line))
            count += 1
            total += line.gross_salary or Decimal("0")
        out.write(
            f"  <trailer><employeeCount>{count}</employeeCount>"
            f"<totalGross>{total:.2f}</totalGross></trailer>\n</declaration>\n"
        )
    return path
