"""What goes into an insurer's file, decided once (``edi.export_file``, ``edi.export_line``).

A file for insurer I and day D carries every statement line routed to I, issued up to D and
not in an earlier file of I: the lines of statements copied to I, and the reversals of lines
that went to I (a reversal goes where the line it cancels went, even if the insured has since
withdrawn consent or changed insurer; the replacement goes only where the new statement is
copied). The first planning of (I, D) records the lines, the next sequence number, the format
and I's export options (contracts/overrides) of the moment; every later publication renders
that record, whatever the overrides say since.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import psycopg2.extensions
import psycopg2.extras
import pyarrow as pa
import pyarrow.csv as pacsv

from edihub.exports.files import export_contract
from edihub.overrides import ExportOptions, export_options


@dataclass(frozen=True)
class PlannedFile:
    export_id: int
    insurer_id: str
    export_day: dt.date
    sequence: int
    fmt: str
    sftp_account: str
    file_name: str
    row_count: int
    state: str
    sha256: str | None
    options: ExportOptions


_PLANNED = """
    SELECT export_id, insurer_id, export_day, sequence, format, sftp_account, file_name,
           row_count, state, sha256, export_options
      FROM edi.export_file WHERE insurer_id = %(insurer)s AND export_day = %(day)s
"""

_LINES_DUE = """
    SELECT sl.statement_id, sl.line_no
      FROM edi.statement s JOIN edi.statement_line sl USING (statement_id)
     WHERE s.insurer_id = %(insurer)s AND s.issued_on <= %(day)s AND sl.kind <> 'reversal'
    UNION ALL
    SELECT sl.statement_id, sl.line_no
      FROM edi.statement o
      JOIN edi.statement_line sl ON sl.reversed_statement_id = o.statement_id
      JOIN edi.statement s ON s.statement_id = sl.statement_id
     WHERE o.insurer_id = %(insurer)s AND s.issued_on <= %(day)s AND sl.kind = 'reversal'
"""

_PLAN_LINES = f"""
    INSERT INTO edi.export_line (export_id, line_no, insurer_id, statement_id, statement_line_no)
    SELECT %(export_id)s, row_number() OVER (ORDER BY s.statement_number, due.line_no),
           %(insurer)s, due.statement_id, due.line_no
      FROM ({_LINES_DUE}) due
      JOIN edi.statement s USING (statement_id)
     WHERE NOT EXISTS (
        SELECT 1 FROM edi.export_line e
         WHERE e.insurer_id = %(insurer)s AND e.statement_id = due.statement_id
           AND e.statement_line_no = due.line_no)
"""

# The file's rows, in the columns of formats/exports/v1/format.yaml. Reversals are negated in
# full (base too) and carry the member number of the statement they correct.
_ROWS = """
    SELECT s.statement_number, sl.line_no, sl.kind AS status,
           r.statement_number AS corrects_statement, sl.reversed_line_no AS corrects_line,
           s.issued_on, s.payment_date,
           CASE WHEN sl.kind = 'reversal' THEN r.insurer_member_number
                ELSE s.insurer_member_number END AS member_number,
           c.beneficiary_rank, c.care_date, c.source_kind AS claim_kind, c.service_code,
           c.category, c.quantity, c.practitioner_id,
           sl.billed AS billed_cents,
           CASE WHEN sl.kind = 'reversal' THEN -c.base ELSE c.base END AS base_cents,
           c.rate_percent, sl.reimbursed AS reimbursed_cents,
           sl.patient_share AS patient_share_cents
      FROM edi.export_line e
      JOIN edi.statement_line sl
        ON sl.statement_id = e.statement_id AND sl.line_no = e.statement_line_no
      JOIN edi.statement s ON s.statement_id = sl.statement_id
      JOIN edi.claim_line c ON c.claim_line_id = sl.claim_line_id
      LEFT JOIN edi.statement r ON r.statement_id = sl.reversed_statement_id
     WHERE e.export_id = %(export_id)s
     ORDER BY e.line_no
"""


def plan_of(cur: psycopg2.extensions.cursor, insurer_id: str, day: dt.date) -> PlannedFile | None:
    """The file of (insurer, day) if it was planned."""
    cur.execute(_PLANNED, {"insurer": insurer_id, "day": day})
    row = cur.fetchone()
    return PlannedFile(*row[:-1], export_options(row[-1])) if row else None


def plan(
    cur: psycopg2.extensions.cursor,
    insurer: dict[str, Any],
    day: dt.date,
    options: ExportOptions,
) -> PlannedFile:
    """The file of (insurer, day): planned now with ``options`` (its name prefixed by theirs)
    if it is not yet, else as it was planned (inside the caller's transaction, which this locks
    per insurer so that sequence numbers never collide)."""
    insurer_id = insurer["insurer_id"]
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('edihub-export'), hashtext(%s))",
                (insurer_id,))  # fmt: skip
    found = plan_of(cur, insurer_id, day)
    if found:
        return found
    cur.execute(
        "SELECT coalesce(max(sequence), 0) + 1 FROM edi.export_file WHERE insurer_id = %s",
        (insurer_id,),
    )
    (sequence,) = cur.fetchone()
    fmt = insurer["export_format"]
    name = options.file_prefix + export_contract().name(insurer_id, day, sequence, fmt)
    cur.execute(
        "INSERT INTO edi.export_file (insurer_id, export_day, sequence, format, sftp_account,"
        " file_name, export_options, row_count, total_billed, total_reimbursed,"
        " total_patient_share) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, 0, 0, 0)"
        " RETURNING export_id",
        (insurer_id, day, sequence, fmt, insurer["sftp_account"], name,
         psycopg2.extras.Json(dataclasses.asdict(options))),
    )  # fmt: skip
    (export_id,) = cur.fetchone()
    cur.execute(_PLAN_LINES, {"export_id": export_id, "insurer": insurer_id, "day": day})
    cur.execute(
        "UPDATE edi.export_file f SET row_count = t.n, total_billed = t.billed,"
        " total_reimbursed = t.reimbursed, total_patient_share = t.patient_share"
        " FROM (SELECT count(*) AS n, coalesce(sum(sl.billed), 0) AS billed,"
        "              coalesce(sum(sl.reimbursed), 0) AS reimbursed,"
        "              coalesce(sum(sl.patient_share), 0) AS patient_share"
        "         FROM edi.export_line e JOIN edi.statement_line sl"
        "           ON sl.statement_id = e.statement_id AND sl.line_no = e.statement_line_no"
        "        WHERE e.export_id = %(export_id)s) t"
        " WHERE f.export_id = %(export_id)s",
        {"export_id": export_id},
    )
    planned = plan_of(cur, insurer_id, day)
    assert planned is not None
    return planned


def rows(cur: psycopg2.extensions.cursor, export_id: int) -> pa.Table:
    """The file's rows as an Arrow table of the export's columns. They come as PostgreSQL's own
    CSV (COPY), read by pyarrow: turning a day's millions of values into Python objects and
    back was a third of an export's time (bench/exports.py)."""
    contract = export_contract()
    text = io.BytesIO()
    cur.copy_expert(
        cur.mogrify(
            f"COPY ({_ROWS}) TO STDOUT WITH (FORMAT csv)", {"export_id": export_id}
        ).decode(),
        text,
    )
    if not text.tell():  # a file with no line: pyarrow reads no CSV without a row
        return contract.schema.empty_table()
    text.seek(0)
    table = pacsv.read_csv(
        text,
        read_options=pacsv.ReadOptions(column_names=list(contract.columns)),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        # COPY writes NULL unquoted and an empty text quoted: the two stay apart.
        convert_options=pacsv.ConvertOptions(
            column_types=contract.schema,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    return table.cast(contract.schema)
