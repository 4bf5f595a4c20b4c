"""The XML export text, built column by column, against lxml's own serialisation of the tree."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from lxml import etree

from edihub.exports import files

HEADER = files.Header(insurer_id='INS&<"01', sequence=7, export_day=dt.date(2026, 12, 1), fmt="xml")
AWKWARD = ["a&b", "<x>", "q\"uote'", "é ü €", "tab\there", "cr\rlf\n", "]]>", "plain"]


def _row(i: int) -> dict[str, Any]:
    corrected = i % 3 == 0
    return {
        "statement_number": f"2026-12-01/{i:06d}",
        "line_no": i,
        "status": "replacement" if corrected else "original",
        "corrects_statement": f"2026-11-30/{i:06d}" if corrected else None,
        "corrects_line": i if corrected else None,
        "issued_on": dt.date(2026, 12, 1),
        "payment_date": dt.date(2026, 12, 2),
        "member_number": AWKWARD[i % len(AWKWARD)],
        "beneficiary_rank": i % 3,
        "care_date": dt.date(2026, 11, i % 28 + 1),
        "claim_kind": "fse_act",
        "service_code": "C",
        "category": "*",
        "quantity": 1,
        "practitioner_id": "P1",
        "billed_cents": -7 * i,
        "base_cents": 2500,
        "rate_percent": Decimal("80.00") if i % 2 else Decimal("100.00"),
        "reimbursed_cents": 2000,
        "patient_share_cents": 500,
    }


def _lxml_reference(contract: files.ExportContract, rows: list[dict[str, Any]]) -> bytes:
    """The same file as an lxml tree, serialised by lxml: what the export text must equal."""
    ns = contract.namespace
    root = etree.Element(
        f"{{{ns}}}statementExport",
        nsmap={None: ns},
        insurerId=HEADER.insurer_id,
        sequence=str(HEADER.sequence),
        exportDay=HEADER.export_day.isoformat(),
        rowCount=str(len(rows)),
    )
    for row in rows:
        line = etree.SubElement(root, f"{{{ns}}}line")
        for name in contract.columns:
            value = row[name]
            if value is not None:
                text = value.isoformat() if isinstance(value, dt.date) else str(value)
                etree.SubElement(line, f"{{{ns}}}{name}").text = text
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


@pytest.mark.parametrize("count", [0, 1, 50])
def test_xml_is_byte_for_byte_what_lxml_writes(count: int) -> None:
    contract = files.export_contract()
    rows = [_row(i) for i in range(count)]
    data = files.render(contract, HEADER, pa.Table.from_pylist(rows, schema=contract.schema))
    assert data == _lxml_reference(contract, rows)
    parsed = etree.fromstring(data)
    found = [line.findtext(f"{{{contract.namespace}}}member_number") for line in parsed]
    assert found == [r["member_number"] for r in rows]  # the CR survives as &#13;


def test_a_line_the_xsd_refuses_never_leaves() -> None:
    contract = files.export_contract()
    rows = [_row(1), _row(2) | {"member_number": ""}]
    with pytest.raises(etree.DocumentInvalid, match=r"member_number.*minLength"):
        files.render(contract, HEADER, pa.Table.from_pylist(rows, schema=contract.schema))
