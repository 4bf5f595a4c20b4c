"""The XML format engine: streaming, precise errors (the hostile inputs, bombs, entities and
encodings, are cases of tests/corpus/hostile/, run through the hub by test_hostile_corpus)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edihub.config import Settings
from edihub.formats.contract import feed_formats
from edihub.formats.errors import FileRefused
from edihub.formats.xml_engine import XmlFile, sniff
from tests.fixtures.fse import fse_file, sheet

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
    """Records are freed as they are read: the tree never holds more than one record."""
    path = fse_file(tmp_path / "big.xml", [sheet(i) for i in range(1, 2001)])
    contract = sniff(path, feed_formats(FORMATS, "fse"))
    reader = XmlFile(path, contract, chunk_size=500)
    sizes = [c.records.num_rows for c in reader]
    assert max(sizes) == 500 and sum(sizes) == 2000
