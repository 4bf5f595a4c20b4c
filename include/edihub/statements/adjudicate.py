"""Price every loaded act of a care sheet and line of a pharmacy invoice (``edi.claim_line``).

Reimbursement base = the amount billed (the hub holds no tariff catalogue: the practitioners'
software bills at the tariff); rate = the rate in force on the date of care for the line's
kind and category, the exemption rate when a ticket-modérateur exemption covers the
beneficiary on that date; amount reimbursed = base x rate, rounded to the cent; patient share
= billed - reimbursed, what is left for the complementary insurer.

Set-based SQL, one statement per step, so a day of a whole country prices in seconds. A line
priced before an exemption reached the hub is priced again: a new version supersedes the old,
and the next statements carry a reversal of the old line and the new one.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import psycopg2.extensions

from edihub.statements import rates

log = logging.getLogger(__name__)

# Every priceable source line, in claim_line's terms.
_SOURCE_LINES = """
    SELECT 'fse_act'::text AS source_kind, a.file_id AS source_file_id, s.sender AS source_sender,
           s.record_no AS source_record_no, s.sheet_id AS source_record_id,
           a.child_no AS source_line_no, s.registration_number, s.beneficiary_rank,
           s.care_date, s.practitioner_id, NULL::text AS prescriber_id,
           NULL::text AS prescription_ref, a.act_code AS service_code, '*'::text AS category,
           a.quantity, a.amount AS billed
      FROM edi.fse_act a JOIN edi.fse_care_sheet s ON s.sheet_id = a.sheet_id
    UNION ALL
    SELECT 'pharmacy_line', l.file_id, i.sender, i.record_no, i.invoice_number, l.child_no,
           i.registration_number, i.beneficiary_rank, i.dispensing_date, i.sender,
           i.prescriber_id, i.prescription_ref, l.product_code, l.reimbursement_category,
           l.quantity, l.amount
      FROM edi.pharmacy_invoice_line l
      JOIN edi.pharmacy_invoice i
        ON i.sender = l.sender AND i.invoice_number = l.invoice_number
"""

# The exemption request covering a beneficiary on a date (the first by id when several do).
_EXEMPTION = """
    LEFT JOIN LATERAL (
        SELECT e.request_id FROM edi.fse_exemption_request e
         WHERE e.registration_number = src.registration_number
           AND e.beneficiary_rank = src.beneficiary_rank
           AND src.care_date >= e.exempt_from
           AND (e.exempt_until IS NULL OR src.care_date <= e.exempt_until)
         ORDER BY e.request_id LIMIT 1) ex ON true
    JOIN edi.reimbursement_rate r
      ON r.claim_kind = src.source_kind AND r.category = src.category
     AND r.exemption = (ex.request_id IS NOT NULL)
     AND src.care_date >= r.valid_from AND (r.valid_to IS NULL OR src.care_date < r.valid_to)
"""

_PRICED_COLUMNS = """
    source_kind, source_file_id, source_sender, source_record_no, source_record_id,
    source_line_no, registration_number, beneficiary_rank, care_date, practitioner_id,
    prescriber_id, prescription_ref, service_code, category, quantity, billed, base,
    rate_percent, reimbursed, patient_share, exemption_id, rate_valid_from, processed_on
"""

_PRICED_VALUES = """
    src.source_kind, src.source_file_id, src.source_sender, src.source_record_no,
    src.source_record_id, src.source_line_no, src.registration_number, src.beneficiary_rank,
    src.care_date, src.practitioner_id, src.prescriber_id, src.prescription_ref,
    src.service_code, src.category, src.quantity, src.billed, src.billed,
    r.rate_percent, round(src.billed * r.rate_percent / 100)::bigint,
    src.billed - round(src.billed * r.rate_percent / 100)::bigint,
    ex.request_id, r.valid_from, %(day)s
"""

_PRICE_NEW = f"""
    INSERT INTO edi.claim_line ({_PRICED_COLUMNS})
    SELECT {_PRICED_VALUES}
      FROM ({_SOURCE_LINES}) src
      {_EXEMPTION}
     WHERE NOT EXISTS (
        SELECT 1 FROM edi.claim_line c
         WHERE c.source_kind = src.source_kind AND c.source_sender = src.source_sender
           AND c.source_record_id = src.source_record_id
           AND c.source_line_no = src.source_line_no)
"""

# Lines priced without an exemption that one now covers, when the exemption changes their
# rate (a non-reimbursable product stays at 0 %: no correction to send). The old version is
# first marked superseded by itself (the unique index allows one current version per source
# line), the new version inserted, then the old one pointed at it.
_REPRICE_CANDIDATES = """
    CREATE TEMP TABLE reprice ON COMMIT DROP AS
    SELECT c.claim_line_id
      FROM edi.claim_line c
     WHERE c.superseded_by IS NULL AND c.exemption_id IS NULL
       AND EXISTS (
        SELECT 1 FROM edi.fse_exemption_request e
         WHERE e.registration_number = c.registration_number
           AND e.beneficiary_rank = c.beneficiary_rank
           AND c.care_date >= e.exempt_from
           AND (e.exempt_until IS NULL OR c.care_date <= e.exempt_until))
       AND EXISTS (
        SELECT 1 FROM edi.reimbursement_rate r
         WHERE r.claim_kind = c.source_kind AND r.category = c.category AND r.exemption
           AND c.care_date >= r.valid_from AND (r.valid_to IS NULL OR c.care_date < r.valid_to)
           AND r.rate_percent <> c.rate_percent)
"""

_REPRICE = f"""
    WITH old AS (
        UPDATE edi.claim_line c SET superseded_by = c.claim_line_id
          FROM reprice WHERE c.claim_line_id = reprice.claim_line_id
        RETURNING c.*)
    INSERT INTO edi.claim_line ({_PRICED_COLUMNS})
    SELECT {_PRICED_VALUES}
      FROM old src
      {_EXEMPTION}
"""

_LINK_SUPERSEDED = """
    UPDATE edi.claim_line old SET superseded_by = new.claim_line_id
      FROM edi.claim_line new
     WHERE old.claim_line_id IN (SELECT claim_line_id FROM reprice)
       AND new.superseded_by IS NULL
       AND new.source_kind = old.source_kind AND new.source_sender = old.source_sender
       AND new.source_record_id = old.source_record_id
       AND new.source_line_no = old.source_line_no
"""

# Source lines no rate row covers (a gap in the reference data): reported, priced once the
# reference is fixed, never dropped.
_UNPRICED = f"""
    SELECT src.source_kind, src.source_file_id, src.source_record_id, src.source_line_no,
           src.category, src.care_date
      FROM ({_SOURCE_LINES}) src
     WHERE NOT EXISTS (
        SELECT 1 FROM edi.claim_line c
         WHERE c.source_kind = src.source_kind AND c.source_sender = src.source_sender
           AND c.source_record_id = src.source_record_id
           AND c.source_line_no = src.source_line_no)
     ORDER BY 2, 3, 4
"""


@dataclass(frozen=True)
class Unpriced:
    source_kind: str
    file_id: int
    record_id: str
    line_no: int
    category: str
    care_date: dt.date

    def __str__(self) -> str:
        return (
            f"file {self.file_id} record {self.record_id} line {self.line_no}: no"
            f" {self.source_kind} rate for category {self.category!r} on {self.care_date}"
        )


@dataclass(frozen=True)
class Adjudication:
    priced: int
    repriced: int
    unpriced: list[Unpriced] = field(default_factory=list)


def adjudicate(cur: psycopg2.extensions.cursor, day: dt.date) -> Adjudication:
    """Price what is not priced yet, and price again what an exemption now covers, as of the
    processing ``day`` (inside the caller's transaction)."""
    rates.refresh(cur)
    cur.execute(_PRICE_NEW, {"day": day})
    priced = cur.rowcount
    cur.execute(_REPRICE_CANDIDATES)
    cur.execute(_REPRICE, {"day": day})
    repriced = cur.rowcount
    cur.execute(_LINK_SUPERSEDED)
    cur.execute("DROP TABLE reprice")
    cur.execute(_UNPRICED)
    unpriced = [Unpriced(*row) for row in cur.fetchall()]
    for line in unpriced:
        log.error("unpriced line, rule RATE-01: %s", line)
    return Adjudication(priced=priced, repriced=repriced, unpriced=unpriced)
