"""A claim statement (décompte / relevé de prestations) as the insured reads it: a PDF.

The statement is read from PostgreSQL as issued (``edi.statement`` and its lines, joined with
``edi.claim_line`` for the care itself) and drawn with fpdf2's core fonts, whose WinAnsi
encoding (cp1252) has é, œ and €. The same statement always gives the same bytes: the PDF's
creation date is the issue date (fpdf2's file id hashes the content and that date), nothing
random or clock-based goes in. Fields: domain.md §5 (header, lines, totals); a reversal
(negative amounts) or a replacement says which line of which earlier statement it corrects.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF, XPos, YPos

from edihub.load import db

MONACO = ZoneInfo("Europe/Monaco")
# The schema names no fund per statement (C.C.S.S. or C.A.M.T.I.): the header names the
# Caisses Sociales, which issue every statement the hub builds.
ISSUER = "Caisses Sociales de Monaco"
# The hub's feeds carry no third-party payment (pharmacies and practitioners are paid by the
# insured, who is reimbursed): every line is paid to the insured.
PAYEE = "assuré(e)"
NBSP = "\u00a0"
_ENCODING = "cp1252"  # what fpdf2 core fonts are declared with (WinAnsiEncoding)
# Letters that Unicode does not decompose into a base letter and an accent.
_BASE_LETTERS = str.maketrans(
    {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i", "Ŧ": "T", "ŧ": "t"}
)

_SOURCE_LABELS = {"fse_act": "Acte", "pharmacy_line": "CIP"}  # a medicine by its CIP13 code
_CHANNEL_LABELS = {"email": "courriel", "paper": "courrier"}

# Page geometry, in mm (A4 portrait). The addressee block sits where a DL window envelope
# shows it, so the mail room folds and posts the page as it is.
_LEFT, _WIDTH = 15.0, 180.0
_ADDRESS_X, _ADDRESS_Y, _ADDRESS_W = 110.0, 45.0, 85.0
_ROW_H, _NOTE_H = 5.0, 4.2
_LAST_ROW_Y = 272.0  # rows stop here; the footer sits below
_FOOTER_Y = 285.0
# Table columns: (title, width, alignment).
_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("Ligne", 8, "C"),
    ("Soins le", 15, "C"),
    ("Prestation", 29, "L"),
    ("Praticien", 15, "L"),
    ("Prescription", 21, "L"),
    ("Dépensé", 16, "R"),
    ("Base", 16, "R"),
    ("Taux", 10, "R"),
    ("Remboursé", 17, "R"),
    ("Part assuré", 17, "R"),
    ("Payé à", 16, "C"),
)


class StatementNotFound(LookupError):
    """No statement with that id."""


class StatementInconsistent(ValueError):
    """A statement whose lines contradict its header: never printed nor sent as it is."""


@dataclass(frozen=True)
class StatementLine:
    line_no: int
    kind: str  # 'original', 'reversal' (cancels an earlier line) or 'replacement'
    corrects_statement: str | None  # the earlier statement's number a correction refers to
    corrects_line: int | None
    care_date: date
    source_kind: str  # 'fse_act' or 'pharmacy_line'
    service_code: str
    quantity: int
    practitioner_id: str
    prescription_ref: str | None
    billed: int  # cents, negative on a reversal
    base: int
    rate_percent: Decimal
    reimbursed: int
    patient_share: int


@dataclass(frozen=True)
class Statement:
    statement_id: int
    statement_number: str
    registration_number: str
    issued_on: date
    payment_date: date
    last_name: str | None
    first_name: str | None
    postal_address: str | None
    email: str | None
    channel: str  # as decided at issue
    insurer_id: str | None
    insurer_member_number: str | None
    total_billed: int
    total_reimbursed: int
    total_patient_share: int
    fell_back_to_paper: bool  # an e-mail that could not be delivered, now printed
    lines: tuple[StatementLine, ...]

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


# ---------------------------------------------------------------- reading
# Both queries select their columns in the order of the dataclasses' fields above.

_HEADER_SQL = """
SELECT s.statement_id, s.statement_number, s.registration_number, s.issued_on, s.payment_date,
       s.last_name, s.first_name, s.postal_address, s.email, s.channel, s.insurer_id,
       s.insurer_member_number, s.total_billed, s.total_reimbursed, s.total_patient_share,
       d.fell_back_at IS NOT NULL AS fell_back_to_paper, s.line_count
  FROM edi.statement s
  LEFT JOIN edi.statement_delivery d USING (statement_id)
 WHERE s.statement_id = ANY(%s)
"""

# A reversal negates the line it cancels: its base is shown negated too, as its amounts are.
_LINES_SQL = """
SELECT sl.statement_id, sl.line_no, sl.kind, rs.statement_number, sl.reversed_line_no,
       cl.care_date, cl.source_kind, cl.service_code, cl.quantity, cl.practitioner_id,
       cl.prescription_ref, sl.billed,
       CASE WHEN sl.kind = 'reversal' THEN -cl.base ELSE cl.base END,
       cl.rate_percent, sl.reimbursed, sl.patient_share
  FROM edi.statement_line sl
  JOIN edi.claim_line cl USING (claim_line_id)
  LEFT JOIN edi.statement rs ON rs.statement_id = sl.reversed_statement_id
 WHERE sl.statement_id = ANY(%s)
 ORDER BY sl.statement_id, sl.line_no
"""


def load_statements(conn: Any, statement_ids: Sequence[int]) -> list[Statement]:
    """The statements, in the order asked, with their lines: one query for the headers, one
    for all their lines. Raises ``StatementNotFound`` or ``StatementInconsistent`` (naming the
    statement and the rule broken)."""
    ids = list(statement_ids)
    with conn.cursor() as cur:
        cur.execute(_HEADER_SQL, (ids,))
        headers = {row[0]: row for row in cur.fetchall()}
        cur.execute(_LINES_SQL, (ids,))
        lines: dict[int, list[StatementLine]] = {}
        for row in cur.fetchall():
            lines.setdefault(row[0], []).append(StatementLine(*row[1:]))
    missing = [i for i in ids if i not in headers]
    if missing:
        raise StatementNotFound(f"no statement with id {', '.join(map(str, missing))}")
    return [_checked(headers[i], lines.get(i, [])) for i in ids]


def _checked(header: tuple[Any, ...], lines: list[StatementLine]) -> Statement:
    *fields, line_count = header
    statement = Statement(*fields, lines=tuple(lines))
    number = statement.statement_number
    if len(lines) != line_count:
        raise StatementInconsistent(
            f"statement {number}: line_count says {line_count} lines, {len(lines)} found"
        )
    for total, column in (
        (statement.total_billed, "billed"),
        (statement.total_reimbursed, "reimbursed"),
        (statement.total_patient_share, "patient_share"),
    ):
        found = sum(getattr(line, column) for line in lines)
        if found != total:
            raise StatementInconsistent(
                f"statement {number}: total_{column} is {total} cents, its lines add up to {found}"
            )
    return statement


def load_statement(conn: Any, statement_id: int) -> Statement:
    return load_statements(conn, [statement_id])[0]


def statement_pdf(dsn: str, statement_id: int) -> bytes:
    """The PDF of one statement, read from the hub database."""
    with db.connect(dsn) as conn:
        statement = load_statement(conn, statement_id)
        conn.rollback()
    return render_statement(statement)


# ---------------------------------------------------------------- formatting


def euros(cents: int) -> str:
    """``123456`` → ``1 234,56 €`` (non-breaking spaces), negative with a minus sign."""
    whole, rest = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    return f"{sign}{whole:,}".replace(",", NBSP) + f",{rest:02d}{NBSP}€"


def percent(rate: Decimal) -> str:
    """``Decimal('80.00')`` → ``80 %``, ``Decimal('65.50')`` → ``65,5 %``."""
    text = f"{rate:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") + f"{NBSP}%"


def french_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def printable(text: str | None) -> str:
    """Text the core fonts can draw: characters outside cp1252 lose their accents (ł → l) or
    become '?', control characters (a newline in a name) become spaces."""
    out = []
    for char in text or "":
        if unicodedata.category(char) == "Cc":
            out.append(" ")
            continue
        try:
            char.encode(_ENCODING)
            out.append(char)
        except UnicodeEncodeError:
            base = "".join(
                c
                for c in unicodedata.normalize("NFKD", char.translate(_BASE_LETTERS))
                if not unicodedata.combining(c)
            )
            try:
                base.encode(_ENCODING)
                out.append(base or "?")
            except UnicodeEncodeError:
                out.append("?")
    return "".join(out)


def address_lines(address: str | None) -> list[str]:
    """The registry keeps an address on one line, its parts separated by commas."""
    return [part.strip() for part in (address or "").split(",") if part.strip()]


def _correction_note(line: StatementLine) -> str | None:
    if line.kind == "original":
        return None
    where = f"Correction du relevé n° {line.corrects_statement}, ligne {line.corrects_line}"
    if line.kind == "reversal":
        return f"{where} : annulation de la ligne remboursée alors (montants en négatif)"
    return f"{where} : nouveau calcul, qui remplace la ligne annulée"


# ---------------------------------------------------------------- drawing


def _new_document(created: date, title: str) -> FPDF:
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.core_fonts_encoding = _ENCODING
    pdf.set_auto_page_break(False)  # pages are broken by hand, to repeat the table header
    pdf.set_margins(_LEFT, 15, _LEFT)
    # The issue (or print) day, never the clock: the bytes depend on the statement only.
    pdf.set_creation_date(datetime.combine(created, time(0, 0), tzinfo=MONACO))
    pdf.set_title(printable(title))
    pdf.set_author(ISSUER)
    pdf.set_creator("edihub")
    pdf.set_lang("fr-MC")
    return pdf


def _text(pdf: FPDF, x: float, y: float, w: float, text: str, **style: Any) -> None:
    size = style.get("size", 9)
    pdf.set_font("Helvetica", style.get("style", ""), size)
    pdf.set_xy(x, y)
    pdf.cell(w, size * 0.45, _fit(pdf, printable(text), w), align=style.get("align", "L"))


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """Cut a text that would overflow its cell, ending it with '…'."""
    room = width - 2 * pdf.c_margin
    if pdf.get_string_width(text) <= room:
        return text
    while text and pdf.get_string_width(text + "…") > room:
        text = text[:-1]
    return text + "…"


def _first_page_header(pdf: FPDF, st: Statement) -> float:
    _text(pdf, _LEFT, 15, 90, ISSUER.upper(), style="B", size=12)
    _text(pdf, _LEFT, 21, 90, "Assurance maladie : prestations", size=9)
    _text(pdf, _LEFT, 32, 90, "Relevé de prestations", style="B", size=15)

    _text(pdf, _ADDRESS_X, _ADDRESS_Y, _ADDRESS_W, st.name or "(nom inconnu)", style="B", size=10)
    for i, part in enumerate(address_lines(st.postal_address)[:5]):
        _text(pdf, _ADDRESS_X, _ADDRESS_Y + 5 * (i + 1), _ADDRESS_W, part, size=10)

    channel = _CHANNEL_LABELS.get(st.channel, st.channel)
    if st.fell_back_to_paper:
        channel = "courrier (courriel non remis)"
    facts = [
        ("Relevé n°", st.statement_number),
        ("Émis le", french_date(st.issued_on)),
        ("Date de paiement", french_date(st.payment_date)),
        ("N° d'immatriculation", st.registration_number),
        ("Assuré(e)", st.name),
        ("Envoi", channel),
    ]
    if st.insurer_id:
        facts.append(("Copie à la complémentaire", st.insurer_id))
        facts.append(("N° d'adhérent", st.insurer_member_number or ""))
    y = 45.0
    for label, value in facts:
        _text(pdf, _LEFT, y, 40, label, size=8.5)
        _text(pdf, _LEFT + 40, y, 50, value, style="B", size=8.5)
        y += 5
    y = max(y, 85.0) + 3
    if st.fell_back_to_paper:
        pdf.set_font("Helvetica", "I", 8.5)
        pdf.set_xy(_LEFT, y)
        pdf.multi_cell(
            _WIDTH,
            4.2,
            "Ce relevé n'a pas pu vous être remis par courriel : il vous est adressé par "
            "courrier. Vérifiez votre adresse électronique dans votre espace personnel.",
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        y = pdf.get_y() + 2
    return y


def _next_page_header(pdf: FPDF, st: Statement) -> float:
    _text(
        pdf,
        _LEFT,
        15,
        _WIDTH,
        f"Relevé de prestations n° {st.statement_number} (suite)",
        style="B",
        size=10,
    )
    _text(pdf, _LEFT, 20, _WIDTH, st.name, size=8.5)
    return 28.0


def _table_header(pdf: FPDF, y: float) -> float:
    pdf.set_font("Helvetica", "B", 7)
    pdf.set_fill_color(225, 225, 225)
    pdf.set_xy(_LEFT, y)
    for title, width, _ in _COLUMNS:
        pdf.cell(width, _ROW_H + 1, title, border=1, align="C", fill=True)
    return y + _ROW_H + 1


def _row_cells(line: StatementLine) -> list[str]:
    service = f"{_SOURCE_LABELS.get(line.source_kind, '')} {line.service_code}".strip()
    if line.quantity > 1:
        service += f" ×{line.quantity}"
    return [
        str(line.line_no),
        french_date(line.care_date),
        service,
        line.practitioner_id,
        line.prescription_ref or "",
        euros(line.billed),
        euros(line.base),
        percent(line.rate_percent),
        euros(line.reimbursed),
        euros(line.patient_share),
        PAYEE,
    ]


def _row(pdf: FPDF, y: float, line: StatementLine) -> float:
    pdf.set_font("Helvetica", "", 7)
    pdf.set_xy(_LEFT, y)
    for (_, width, align), value in zip(_COLUMNS, _row_cells(line), strict=True):
        pdf.cell(width, _ROW_H, _fit(pdf, printable(value), width), border="LR", align=align)
    y += _ROW_H
    note = _correction_note(line)
    if note:
        pdf.set_font("Helvetica", "I", 7)
        pdf.set_xy(_LEFT, y)
        first = _COLUMNS[0][1]
        pdf.cell(first, _NOTE_H, "", border="LR")
        pdf.cell(_WIDTH - first, _NOTE_H, _fit(pdf, printable(note), _WIDTH - first), border="R")
        y += _NOTE_H
    pdf.line(_LEFT, y, _LEFT + _WIDTH, y)
    return y


def _totals(pdf: FPDF, y: float, st: Statement) -> float:
    rows = [
        ("Total dépensé", euros(st.total_billed), ""),
        ("Remboursé par la caisse", euros(st.total_reimbursed), ""),
        ("Reste à votre charge", euros(st.total_patient_share), ""),
        (f"Net versé le {french_date(st.payment_date)}", euros(st.total_reimbursed), "B"),
    ]
    y += 4
    for label, value, style in rows:
        _text(pdf, _ADDRESS_X - 10, y, 60, label, style=style, size=9)
        _text(pdf, _ADDRESS_X + 50, y, 35, value, style=style, size=9, align="R")
        y += 5.5
    notes = [
        "Base : base de remboursement. Taux : taux appliqué par la caisse. Part assuré : "
        "ticket modérateur et dépassement, qui restent à votre charge ou à celle de votre "
        "complémentaire.",
    ]
    if any(line.kind != "original" for line in st.lines):
        notes.append(
            "Les lignes « Correction » rectifient un relevé antérieur : l'annulation reprend en "
            "négatif la ligne remboursée alors, le nouveau calcul la remplace. Le montant net "
            "versé tient compte des deux."
        )
    pdf.set_font("Helvetica", "", 7.5)
    pdf.set_xy(_LEFT, y + 3)
    for note in notes:
        pdf.multi_cell(_WIDTH, 3.8, printable(note), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return pdf.get_y()


_TOTALS_HEIGHT = 48.0  # the totals block and its notes, kept on one page


def _draw(pdf: FPDF, st: Statement) -> int:
    """Draw ``st`` on new pages of ``pdf``; return how many pages it took."""
    first_page = pdf.page + 1
    pdf.add_page()
    y = _table_header(pdf, _first_page_header(pdf, st))
    for line in st.lines:
        height = _ROW_H + (_NOTE_H if line.kind != "original" else 0)
        if y + height > _LAST_ROW_Y:
            pdf.add_page()
            y = _table_header(pdf, _next_page_header(pdf, st))
        y = _row(pdf, y, line)
    if y + _TOTALS_HEIGHT > _LAST_ROW_Y:
        pdf.add_page()
        y = _next_page_header(pdf, st)
    _totals(pdf, y, st)
    last_page = pdf.page
    # Footers last, once the statement's page count is known ("page 2/3"): fpdf2 lets us go
    # back to a page and draw on it.
    pages = last_page - first_page + 1
    for page in range(first_page, last_page + 1):
        pdf.page = page
        _text(
            pdf,
            _LEFT,
            _FOOTER_Y,
            _WIDTH,
            f"{ISSUER} : relevé de prestations n° {st.statement_number}, "
            f"page {page - first_page + 1}/{pages}",
            size=7,
            align="C",
        )
    pdf.page = last_page
    return pages


def render_statement(statement: Statement) -> bytes:
    """One statement as a PDF; the same statement gives the same bytes."""
    pdf = _new_document(
        statement.issued_on, f"Relevé de prestations n° {statement.statement_number}"
    )
    _draw(pdf, statement)
    return bytes(pdf.output())


def render_batch(statements: Iterable[Statement], day: date, title: str) -> tuple[bytes, list[int]]:
    """Several statements in one PDF, each starting on a new page, dated ``day``; returns the
    bytes and each statement's page count, in order."""
    pdf = _new_document(day, title)
    pages = [_draw(pdf, statement) for statement in statements]
    return bytes(pdf.output()), pages
