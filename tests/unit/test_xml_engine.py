"""The XML format engine on valid and hostile input: hardened, streaming, precise errors."""

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


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.xml"
    path.write_bytes(b"")
    assert refusal(path).code == "EMPTY_FILE"


def test_malformed_xml_names_the_record(tmp_path: Path) -> None:
    path = fse_file(tmp_path / "ok.xml")
    text = path.read_text().replace(
        "<software>edihub demo</software>", "<software>A & B</software>"
    )
    path.write_text(text)
    err = refusal(path)
    assert err.code == "NOT_WELL_FORMED"
    assert err.line and err.line > 1


def test_truncated_file(tmp_path: Path) -> None:
    path = fse_file(tmp_path / "ok.xml")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert refusal(path).code == "NOT_WELL_FORMED"


def test_schema_violation_names_record_and_rule(tmp_path: Path) -> None:
    path = fse_file(tmp_path / "bad.xml")
    text = path.read_text().replace("<fseCode>AB12CD34</fseCode>", "<fseCode>bad code</fseCode>", 3)
    text = text.replace("<fseCode>bad code</fseCode>", "<fseCode>AB12CD34</fseCode>", 2)
    path.write_text(text)
    err = refusal(path)
    assert err.code == "SCHEMA_VIOLATION"
    assert err.record_no == 3
    assert "fseCode" in err.message


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<fseFile xmlns="urn:mc:caisses-sociales:edi:fse:v1" formatVersion="1">
<header><sender>&lol9;</sender></header></fseFile>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE fseFile [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<fseFile xmlns="urn:mc:caisses-sociales:edi:fse:v1" formatVersion="1">
<header><sender>&xxe;</sender></header></fseFile>
"""

NETWORK_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE fseFile SYSTEM "http://127.0.0.1:9/evil.dtd">
<fseFile xmlns="urn:mc:caisses-sociales:edi:fse:v1" formatVersion="1"/>
"""


@pytest.mark.parametrize(
    "payload", [BILLION_LAUGHS, EXTERNAL_ENTITY, NETWORK_ENTITY], ids=["bomb", "xxe", "ext-dtd"]
)
def test_dtds_and_entities_are_quarantined(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "hostile.xml"
    path.write_bytes(payload)
    err = refusal(path)
    assert err.code == "DTD_FORBIDDEN"
    assert err.hostile


def test_latin1_bytes_declared_utf8(tmp_path: Path) -> None:
    path = fse_file(tmp_path / "ok.xml")
    text = path.read_text().replace("edihub demo", "logiciel médical")
    path.write_bytes(text.encode("latin-1"))
    err = refusal(path)
    assert err.code == "ENCODING"
    assert "UTF-8" in err.message


def test_declared_latin1_is_refused(tmp_path: Path) -> None:
    path = fse_file(tmp_path / "ok.xml")
    text = path.read_text().replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    path.write_bytes(text.encode("latin-1"))
    assert refusal(path).code == "ENCODING"


@pytest.mark.parametrize("bom", [True, False])
def test_utf16_is_refused(tmp_path: Path, bom: bool) -> None:
    path = fse_file(tmp_path / "ok.xml")
    text = path.read_text().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    path.write_bytes(text.encode("utf-16" if bom else "utf-16-le"))
    assert refusal(path).code == "ENCODING"


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


def test_compressed_input_is_refused_not_inflated(tmp_path: Path) -> None:
    """libxml2 inflates gzip by itself when given a path: a gzip bomb must never reach it."""
    import gzip

    path = tmp_path / "bomb.xml"
    path.write_bytes(gzip.compress(b"<a>" + b"x" * 10_000_000 + b"</a>"))
    assert refusal(path).code == "NOT_TEXT"


def test_nul_bytes_are_refused(tmp_path: Path) -> None:
    path = fse_file(tmp_path / "ok.xml")
    path.write_bytes(path.read_bytes().replace(b"edihub demo", b"edihub\x00demo"))
    assert refusal(path).code == "NOT_TEXT"
