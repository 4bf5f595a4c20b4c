"""What the hub returns to a household employer for each loaded declaration: one payslip per
employee (the brochure's "bulletin de paye") and a summary of the contributions due, as HTML in
the sender's ``/outbound/payroll/<period>/`` folder. A declaration the funds' staff keyed in
from paper for an employer (payroll v2, channel paper) was sent from their own account: its
documents go to that account's ``/outbound/payroll/<period>/<employer>/``, where the mail room
prints and posts them (such an employer has no SFTP account)."""

from __future__ import annotations

import posixpath
from decimal import Decimal
from importlib import resources
from typing import Any

import paramiko
import psycopg2.extras
from jinja2 import Environment, select_autoescape

from edihub.sftp import client as sftp_client
from edihub.sftp import layout

_ENV = Environment(autoescape=select_autoescape(default=True))
_ENV.globals["euros"] = lambda cents: f"{Decimal(cents) / 100:,.2f} €".replace(",", "\u202f")


def _template(name: str) -> Any:
    text = (resources.files("edihub.payroll") / "templates" / name).read_text("utf-8")
    return _ENV.from_string(text)


def _rows(conn: Any, file_id: int) -> list[dict[str, Any]]:
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "SELECT l.employee_id, l.last_name, l.first_name, l.hours_worked, c.*"
            " FROM edi.payroll_salary_line l JOIN edi.payroll_contribution c"
            " USING (file_id, employee_id) WHERE l.file_id = %s ORDER BY l.record_no",
            (file_id,),
        )
        return [dict(r) for r in cur.fetchall()]


def publish(sftp: paramiko.SFTPClient, conn: Any, file: dict[str, Any]) -> list[str]:
    """Write the payslips and the summary of a household declaration; return their paths.

    Rewriting them gives the same bytes, so a rerun after a crash is harmless.
    """
    header = file.get("header") or {}
    if header.get("employer_kind") != "household":
        return []
    rows = _rows(conn, file["id"])
    if not rows:
        return []
    # v2 names the employer in the header; in v1 the sender is the employer.
    sender, period = file["sender"], header["period"]
    employer = header.get("employer") or sender
    # A sender declaring for others gets one folder per employer, so none is mixed up.
    folder = layout.payslips_dir(sender, period, employer if employer != sender else None)
    reduced = any(r["ccss_base"] < r["gross"] for r in rows)
    written = []
    payslip = _template("payslip.html")
    for r in rows:
        html = payslip.render(
            period=period,
            employer=employer,
            line=r,
            c=r,
            reduced=reduced,
            hours=f"{Decimal(r['hours_worked']) / 100:.2f} h",
            employee_total=r["car_employee"] + r["ac_employee"] + r["supplementary_employee"],
            employer_total=r["ccss_employer"]
            + r["car_employer"]
            + r["ac_employer"]
            + r["supplementary_employer"],
        )
        path = posixpath.join(folder, f"bulletin_{r['employee_id']}.html")
        sftp_client.put_atomic(sftp, html.encode("utf-8"), path)
        written.append(path)
    totals = {
        "gross": sum(r["gross"] for r in rows),
        "net": sum(r["net"] for r in rows),
        "ccss": sum(r["ccss_employer"] for r in rows),
        "car": sum(r["car_employer"] + r["car_employee"] for r in rows),
        "ac": sum(r["ac_employer"] + r["ac_employee"] for r in rows),
        "supp": sum(r["supplementary_employer"] + r["supplementary_employee"] for r in rows),
    }
    summary = _template("summary.html").render(
        period=period, employer=employer, rows=rows, totals=totals
    )
    path = posixpath.join(folder, "recapitulatif_cotisations.html")
    sftp_client.put_atomic(sftp, summary.encode("utf-8"), path)
    return [*written, path]
