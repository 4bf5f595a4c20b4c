"""The XML format engine: streaming, precise errors (the hostile inputs, bombs, entities and
encodings, are cases of tests/corpus/hostile/, run through the hub by test_hostile_corpus)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from edihub.config import Settings
from edihub.formats import xml_engine
from edihub.formats.contract import feed_formats
from edihub.formats.errors import FileRefused
from edihub.formats.xml_engine import CONVERTERS, PARSER_OPTIONS, XmlFile, sniff
from tests.fixtures.fse import fse_file, message, sheet, v2_file
from tests.fixtures.payroll import line, payroll_file

FORMATS = Settings.from_env().formats_dir
NS = "urn:mc:caisses-sociales:edi:fse:v1"


def read_all(path: Path, chunk_size: int = 50_000) -> tuple[XmlFile, list]:
    contract = sniff(path, feed_formats(FORMATS, "fse"))
    reader = XmlFile(path, contract, chunk_size=chunk_size)
    return reader, list(reader)


def refusal(path: Path) -> FileRefused:
    with pytest.raises(FileRefused) as info:
        read_all(path)
    return info.value


def test_valid_file_streams_in_chunks_with_header_trailer_and_children(tmp_path: Path) -> None:
    path = fse_file(tmp_path / "ok.xml", [sheet(i) for i in range(1, 8)])
    reader, chunks = read_all(path, chunk_size=3)
    assert [c.records.num_rows for c in chunks if c.records.num_rows] == [3, 3, 1]
    records = [r for c in chunks for r in c.records.to_pylist()]
    acts = [a for c in chunks for a in c.children.to_pylist()]
    assert [r["record_no"] for r in records] == list(range(1, 8))
    assert records[0]["sheet_id"] == "S-000001"
    assert records[0]["total"] == 5500 and records[0]["acts_total"] == 5500
    assert records[0]["act_count"] == 2
    assert len(acts) == 14 and acts[1] == {
        "record_no": 1,
        "sheet_id": "S-000001",
        "child_no": 2,
        "act_code": "K",
        "quantity": 2,
        "unit_fee": 1250,
        "amount": 2500,
    }
    assert reader.header["sender"] == "P10001" and reader.header["batch_number"] == "000001"
    assert reader.trailer == {"sheet_count": 7, "total_amount": 7 * 5500}


def test_malformed_xml_names_the_record(tmp_path: Path) -> None:
    path = fse_file(tmp_path / "ok.xml")
    text = path.read_text().replace(
        "<software>edihub demo</software>", "<software>A & B</software>"
    )
    path.write_text(text)
    err = refusal(path)
    assert err.code == "NOT_WELL_FORMED"
    assert err.line and err.line > 1


def test_schema_violation_names_record_and_rule(tmp_path: Path) -> None:
    path = fse_file(tmp_path / "bad.xml")
    text = path.read_text().replace("<fseCode>AB12CD34</fseCode>", "<fseCode>bad code</fseCode>", 3)
    text = text.replace("<fseCode>bad code</fseCode>", "<fseCode>AB12CD34</fseCode>", 2)
    path.write_text(text)
    err = refusal(path)
    assert err.code == "SCHEMA_VIOLATION"
    assert err.record_no == 3
    assert "fseCode" in err.message


def test_unknown_namespace_lists_the_known_versions(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text('<?xml version="1.0"?><fseFile xmlns="urn:other" formatVersion="1"/>')
    err = refusal(path)
    assert err.code == "UNKNOWN_FORMAT"
    assert NS in err.message


def test_memory_stays_bounded_by_chunk(tmp_path: Path) -> None:
    """Records are handed out chunk_size at a time (and freed SWEEP at a time as read)."""
    path = fse_file(tmp_path / "big.xml", [sheet(i) for i in range(1, 2001)])
    contract = sniff(path, feed_formats(FORMATS, "fse"))
    reader = XmlFile(path, contract, chunk_size=500)
    sizes = [c.records.num_rows for c in reader]
    assert max(sizes) == 500 and sum(sizes) == 2000


def findtext_rows(path: Path, feed: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records and children of a valid file read the plain way, record by record with
    findtext: the oracle of the engine's vectorised reading."""
    contract = sniff(path, feed_formats(FORMATS, feed))
    record, kids = contract.record, contract.record.children
    ns = f"{{{contract.namespace}}}"

    def read(el: etree._Element, spec: Any) -> dict[str, Any]:
        texts = {f.name: el.findtext(ns + f.path.replace("/", "/" + ns)) for f in spec.fields}
        return {
            f.name: None if texts[f.name] is None else CONVERTERS[f.type](texts[f.name].strip())
            for f in spec.fields
        }

    records, children = [], []
    events = etree.iterparse(str(path), tag=ns + record.element, **PARSER_OPTIONS)
    for no, (_, el) in enumerate(events, start=1):
        row = read(el, record)
        acts = [read(a, kids) for a in el.iterchildren(ns + kids.element)] if kids else []
        for i, act in enumerate(acts, start=1):
            children.append({"record_no": no, record.id: row[record.id], "child_no": i} | act)
        aggregates = {
            name: len(acts) if agg.get("count") else sum(a[agg["sum"]] or 0 for a in acts)
            for name, agg in record.aggregates.items()
        }
        records.append({"record_no": no, "line_no": el.sourceline} | aggregates | row)
    return records, children


def engine_rows(path: Path, feed: str, chunk_size: int) -> tuple[list, list]:
    reader = XmlFile(path, sniff(path, feed_formats(FORMATS, feed)), chunk_size=chunk_size)
    chunks = list(reader)
    records = [r for c in chunks for r in c.records.to_pylist()]
    children = [k for c in chunks if c.children is not None for k in c.children.to_pylist()]
    return records, children


def spoiled(path: Path, *edits: tuple[str, str]) -> Path:
    text = path.read_text(encoding="utf-8")
    for pattern, replacement in edits:
        text, found = re.subn(pattern, replacement, text, count=1)
        assert found, pattern
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shape_and_lexical_form_reads_as_findtext_does(tmp_path: Path) -> None:
    """Records of many shapes (1 to 3 acts, optional elements present or not, text split
    by a comment, a prefixed element, CDATA) and every lexical form the XSD accepts (signs, leading
    zeros, blanks around numbers, dates with a zone), across chunk boundaries and with fewer
    plans kept than shapes: the values findtext reads, converted."""
    acts = [("C", 1, "30.00"), ("K", 2, "12.50"), ("ZZ9", 3, "0.05")]
    sheets = [sheet(i, acts=[xml_engine_act(*a) for a in acts[: 1 + i % 3]]) for i in range(1, 13)]
    v1 = spoiled(
        fse_file(tmp_path / "v1.xml", sheets),
        ("<unitFee>30.00</unitFee>", "<unitFee> +30.0 </unitFee>"),
        ("<quantity>2</quantity>", "<quantity>\n +002 </quantity>"),
        ("<amount>25.00</amount>", "<amount>25.</amount>"),
        (r"<total>([0-9.]+)</total>", r"<total>-0\1</total>"),
        (r"<careDate>([0-9-]+)</careDate>", r"<careDate>\1Z</careDate>"),
        (r"<careDate>([0-9-]+)</careDate>", r"<careDate>\1+02:00</careDate>"),
        ("<fseCode>AB12CD34</fseCode>", "<fseCode>AB12<!-- x -->CD34</fseCode>"),
        ("<sheetId>S-000004</sheetId>", "<sheetId><![CDATA[S-000004]]></sheetId>"),
        ("<sheetId>S-000005</sheetId>", f'<f:sheetId xmlns:f="{NS}">S-000005</f:sheetId>'),
    )
    v2 = v2_file(
        tmp_path / "v2.xml",
        "exemption_request",
        [
            message("exemption_request", 1, condition_code=None),
            message("exemption_request", 2, exempt_until=dt.date(2027, 1, 1)),
            message("exemption_request", 3),
        ],
    )
    payroll = spoiled(
        payroll_file(
            tmp_path / "pay.xml",
            [
                line(1, gross_salary=None, net_salary=Decimal("2000.00"), teleworking=None),
                line(2, base_ccss=None, base_car=None),
                line(3, hours_worked=Decimal("0.5")),
            ],
            employer_kind="household",
            version=2,
        ),
        ("<hoursWorked>151.67</hoursWorked>", "<hoursWorked>\t151.670 </hoursWorked>"),
    )
    xml_engine.PLANS_KEPT, kept = 2, xml_engine.PLANS_KEPT
    try:
        for path, feed in [(v1, "fse"), (v2, "fse"), (payroll, "payroll")]:
            expected = findtext_rows(path, feed)
            assert expected[0] and engine_rows(path, feed, 50_000) == expected
            assert engine_rows(path, feed, 5) == expected
    finally:
        xml_engine.PLANS_KEPT = kept


def xml_engine_act(code: str, quantity: int, fee: str) -> Any:
    from edihub.fse_writer import Act

    return Act(code, quantity, Decimal(fee))


def test_the_first_value_that_does_not_convert_names_its_record(tmp_path: Path) -> None:
    """Values the XSD refuses still reach the engine (libxml2 reads on): the first in
    document order that does not convert refuses the file, even when a later one is in an
    earlier column."""
    path = spoiled(
        fse_file(tmp_path / "bad.xml", [sheet(i) for i in range(1, 8)]),
        (r"(<sheetId>S-000003</sheetId>.*?)<quantity>2</quantity>", r"\1<quantity>x</quantity>"),
        (r"(<sheetId>S-000005</sheetId>.*?)<total>55.00</total>", r"\1<total>y</total>"),
    )
    for chunk_size in (1, 50_000):
        with pytest.raises(FileRefused) as info:
            list(XmlFile(path, sniff(path, feed_formats(FORMATS, "fse")), chunk_size))
        assert (info.value.code, info.value.record_no) == ("SCHEMA_VIOLATION", 3)
        assert info.value.message == (
            "field quantity (quantity): invalid literal for int() with base 10: 'x'"
        )


def test_a_number_arrow_cannot_hold_is_a_schema_violation(tmp_path: Path) -> None:
    """A quantity beyond 64 bits converts in Python but not in Arrow: the file ends (and
    the XSD's refusal is raised) before the chunk is built, so no crash."""
    path = spoiled(
        fse_file(tmp_path / "big.xml"),
        ("<quantity>2</quantity>", "<quantity>99999999999999999999</quantity>"),
    )
    err = refusal(path)
    assert err.code == "SCHEMA_VIOLATION" and "maxInclusive" in err.message
