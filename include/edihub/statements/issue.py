"""Issue the statements of a processing day: one per insured, with every line priced up to that
day and not yet on a statement, the reversals of lines priced again, and its route.

Route, decided at issue and kept on the statement (brochure; domain.md §2):
- e-mail when the insured validated an e-mail address and chose dematerialisation, else paper;
- a copy to the complementary insurer the insured named, only when that insurer has signed the
  funds' convention by the issue day and the insured consented. No consent, no copy.

A day is issued once (``edi.statement_day``). Days are Monaco's: a line priced at 00:30 on the
1st in Monaco belongs to the 1st, whatever the server's clock zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg2.extensions

from edihub.clock import MONACO, monaco_today

__all__ = ["MONACO", "Issue", "issue_day", "monaco_today"]


@dataclass(frozen=True)
class Issue:
    day: dt.date
    statements: int
    lines: int
    by_email: int
    by_paper: int
    insurer_copies: int
    newly_issued: bool  # False: the day had been issued before, nothing was added


# Lines going on the day's statements: new and re-priced lines, and the reversals of the lines
# they replace (negated amounts of the line as it was stated).
_ISSUE_LINES = """
    CREATE TEMP TABLE issue_line ON COMMIT DROP AS
    SELECT c.registration_number, c.claim_line_id,
           CASE WHEN prev.statement_id IS NULL THEN 'original' ELSE 'replacement' END AS kind,
           prev.statement_id AS reversed_statement_id, prev.line_no AS reversed_line_no,
           c.billed, c.reimbursed, c.patient_share,
           c.care_date, c.source_record_id, c.source_line_no, 1 AS sort_kind
      FROM edi.claim_line c
      LEFT JOIN LATERAL (
        SELECT sl.statement_id, sl.line_no
          FROM edi.claim_line o
          JOIN edi.statement_line sl ON sl.claim_line_id = o.claim_line_id AND sl.kind <> 'reversal'
         WHERE o.superseded_by = c.claim_line_id
         ORDER BY sl.statement_id DESC LIMIT 1) prev ON true
     WHERE c.superseded_by IS NULL AND c.processed_on <= %(day)s
       AND NOT EXISTS (SELECT 1 FROM edi.statement_line sl WHERE sl.claim_line_id = c.claim_line_id)
    UNION ALL
    SELECT o.registration_number, o.claim_line_id, 'reversal', sl.statement_id, sl.line_no,
           -sl.billed, -sl.reimbursed, -sl.patient_share,
           o.care_date, o.source_record_id, o.source_line_no, 0
      FROM edi.claim_line o
      JOIN edi.claim_line n ON n.claim_line_id = o.superseded_by AND n.processed_on <= %(day)s
      JOIN edi.statement_line sl ON sl.claim_line_id = o.claim_line_id AND sl.kind <> 'reversal'
     WHERE NOT EXISTS (SELECT 1 FROM edi.statement_line r
                        WHERE r.claim_line_id = o.claim_line_id AND r.kind = 'reversal')
"""

_STATEMENTS = """
    INSERT INTO edi.statement (
        statement_number, registration_number, issued_on, payment_date, last_name, first_name,
        postal_address, email, channel, insurer_id, insurer_member_number, line_count,
        total_billed, total_reimbursed, total_patient_share)
    -- the day and a number: not the registration number, which exports must not carry
    SELECT to_char(%(day)s::date, 'YYYYMMDD') || '-'
           || lpad((row_number() OVER (ORDER BY t.registration_number))::text, 6, '0'),
           t.registration_number, %(day)s, %(payment_date)s,
           p.last_name, p.first_name, p.postal_address,
           CASE WHEN route.by_email THEN p.email END,
           CASE WHEN route.by_email THEN 'email' ELSE 'paper' END,
           CASE WHEN route.insurer_copy THEN p.insurer_id END,
           CASE WHEN route.insurer_copy THEN p.insurer_member_number END,
           t.lines, t.billed, t.reimbursed, t.patient_share
      FROM (SELECT registration_number, count(*) AS lines, sum(billed) AS billed,
                   sum(reimbursed) AS reimbursed, sum(patient_share) AS patient_share
              FROM issue_line GROUP BY registration_number) t
      -- the insured (rank 0) is the addressee; a beneficiary's row only when theirs is missing
      LEFT JOIN LATERAL (
        SELECT * FROM edi.registry_insured i
         WHERE i.registration_number = t.registration_number
         ORDER BY i.beneficiary_rank LIMIT 1) p ON true
      LEFT JOIN edi.registry_insurer ins ON ins.insurer_id = p.insurer_id
     CROSS JOIN LATERAL (
        SELECT coalesce(p.email_validated AND p.dematerialisation AND p.email IS NOT NULL,
                        false) AS by_email,
               coalesce(p.insurer_consent AND p.insurer_member_number IS NOT NULL
                        AND ins.convention_signed_on <= %(day)s, false) AS insurer_copy) route
     ORDER BY t.registration_number
"""

_STATEMENT_LINES = """
    INSERT INTO edi.statement_line (
        statement_id, line_no, claim_line_id, kind, reversed_statement_id, reversed_line_no,
        billed, reimbursed, patient_share)
    SELECT s.statement_id,
           row_number() OVER (PARTITION BY s.statement_id
                              ORDER BY l.care_date, l.source_record_id, l.source_line_no,
                                       l.sort_kind),
           l.claim_line_id, l.kind, l.reversed_statement_id, l.reversed_line_no,
           l.billed, l.reimbursed, l.patient_share
      FROM issue_line l
      JOIN edi.statement s ON s.registration_number = l.registration_number
                          AND s.issued_on = %(day)s
"""

_DELIVERIES = """
    INSERT INTO edi.statement_delivery (statement_id, channel)
    SELECT statement_id, channel FROM edi.statement WHERE issued_on = %(day)s
"""

_COUNTS = """
    SELECT count(*), coalesce(sum(line_count), 0)::int,
           count(*) FILTER (WHERE channel = 'email'), count(*) FILTER (WHERE channel = 'paper'),
           count(insurer_id)
      FROM edi.statement WHERE issued_on = %(day)s
"""


def issue_day(cur: psycopg2.extensions.cursor, day: dt.date, payment_delay_days: int = 1) -> Issue:
    """Issue ``day``'s statements (inside the caller's transaction, which must hold the
    statements lock: see ``build.build_statements``)."""
    params = {"day": day, "payment_date": day + dt.timedelta(days=payment_delay_days)}
    cur.execute("SELECT 1 FROM edi.statement_day WHERE issued_on = %(day)s", params)
    newly_issued = cur.fetchone() is None
    if newly_issued:
        cur.execute(_ISSUE_LINES, params)
        cur.execute(_STATEMENTS, params)
        cur.execute(_STATEMENT_LINES, params)
        cur.execute(_DELIVERIES, params)
        cur.execute("DROP TABLE issue_line")
    cur.execute(_COUNTS, params)
    statements, lines, by_email, by_paper, copies = cur.fetchone()
    if newly_issued:
        cur.execute(
            "INSERT INTO edi.statement_day (issued_on, statements, lines) VALUES (%s, %s, %s)",
            (day, statements, lines),
        )
    return Issue(day, statements, lines, by_email, by_paper, copies, newly_issued)
