"""Dues of a loaded salary declaration: gross from net where the employer declared net, then
the contributions per fund, line by line, inside the transaction that loads the file.

Lines and dues belong to the declaration's employer: the header's ``employer`` (payroll v2,
where the funds' staff may send a paper declaration on an employer's behalf), else the sender
(v1, where the sender is the employer)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg2.extras

from edihub.payroll.gross_net import contributions, gross_from_net
from edihub.payroll.rates import parameters_for

HUNDRED = Decimal(100)


def reduced_household_base(kind: str, lines: list[dict[str, Any]], max_hours: Decimal) -> bool:
    """CCSS on 33 % of the gross: a household with at most two employees working under the
    hour limit in total (domain.md §1.3)."""
    hours = sum(Decimal(line["hours_worked"]) / HUNDRED for line in lines)
    return kind == "household" and len(lines) <= 2 and hours < max_hours


def compute_file(cur: Any, file_id: int, header: dict[str, str]) -> int:
    """Write ``edi.payroll_contribution`` for every loaded line of the file (its employer is
    the line's, which the load took from the header); return the count."""
    cur.execute(
        "SELECT employee_id, sender, employer_id, hours_worked, gross_salary, net_salary,"
        " received_month FROM edi.payroll_salary_line WHERE file_id = %s ORDER BY record_no",
        (file_id,),
    )
    columns = [c.name for c in cur.description]
    lines = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    if not lines:
        return 0
    period = header["period"]
    p = parameters_for(period)
    reduced = reduced_household_base(
        header.get("employer_kind", ""), lines, p["household_ccss_max_hours"]
    )
    rows = []
    for line in lines:
        declared_gross = line["gross_salary"]
        if declared_gross is not None:
            gross = Decimal(declared_gross) / HUNDRED
        else:
            gross = gross_from_net(Decimal(line["net_salary"]) / HUNDRED, p)
        c = contributions(gross, p, household_reduced_base=reduced)
        rows.append(
            (
                file_id, line["received_month"], line["employee_id"], line["sender"],
                line["employer_id"], period,
                *(int(v * HUNDRED) for v in (
                    c.gross, c.net,
                )),
                declared_gross is None,
                *(int(v * HUNDRED) for v in (
                    c.ccss_base, c.ccss_employer, c.car_employer, c.car_employee,
                    c.ac_employer, c.ac_employee, c.supplementary_employer,
                    c.supplementary_employee,
                )),
                sorted(p.assumed),
            )
        )  # fmt: skip
    psycopg2.extras.execute_values(
        cur,
        "INSERT INTO edi.payroll_contribution (file_id, received_month, employee_id, sender,"
        " employer_id,"
        " period, gross, net,"
        " gross_computed, ccss_base, ccss_employer, car_employer, car_employee, ac_employer,"
        " ac_employee, supplementary_employer, supplementary_employee, rates_assumed)"
        " VALUES %s",
        rows,
    )
    return len(rows)
