"""The fixed-width engine on valid and broken pharmacy files: same shapes as XML, precise errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from edihub.formats.contract import FormatContract, TableSpec, load_formats
from edihub.formats.errors import FileRefused
from edihub.formats.fixed_width import FixedWidthFile, sniff_fixed_width

ROOT = Path(__file__).resolve().parents[2]
PHARMACY = load_formats(ROOT / "formats" / "pharmacy" / "v1")[0]


def record(spec: TableSpec, values: dict[str, Any], parent_id: str = "") -> str:
    """One record laid out as the contract says: strings padded, numbers zero-filled."""
    line = [" "] * PHARMACY.record_length
    start, end = PHARMACY.type_field
    line[start - 1 : end] = spec.record_type
    placed = [(f, values[f.name]) for f in spec.fields]
    if spec.parent_id is not None:
        placed.append((spec.parent_id, parent_id))
    for f, value in placed:
        width = f.end - f.start + 1
        if isinstance(value, dt.date):
            text = value.strftime("%Y%m%d")
        elif isinstance(value, int):
            text = str(value).zfill(width)
        else:
            text = str(value).ljust(width)
        assert len(text) == width, (f.name, text)
        line[f.start - 1 : f.end] = text
    return "".join(line)


def invoice(n: int, lines: int = 2) -> list[str]:
    number = f"F{n:06d}"
    kids = [
        record(
            PHARMACY.record.children,  # type: ignore[arg-type]
            {
                "product_code": f"34009{n % 10000:04d}{i:04d}",
                "quantity": i,
                "unit_price": 150 * i,
                "amount": 150 * i * i,
                "reimbursement_category": "65",
            },
            parent_id=number,
        )
        for i in range(1, lines + 1)
    ]
    head = record(
        PHARMACY.record,
        {
            "invoice_number": number,
            "registration_number": f"{n:06d}",
            "beneficiary_rank": 1,
            "prescription_ref": f"ORD{n}",
            "prescriber_id": "M123",
            "dispensing_date": dt.date(2016, 12, 31),
            "total": sum(150 * i * i for i in range(1, lines + 1)),
        },
    )
    return [head, *kids]


def header(version: int = 1) -> str:
    fields = {
        "sender": "P10001",
        "batch_number": "000042",
        "file_date": dt.date(2017, 1, 2),
        "format_version": version,
    }
    return record(PHARMACY.header, fields)


def trailer(invoices: int, lines: int, total: int) -> str:
    values = {"invoice_count": invoices, "line_count": lines, "total_amount": total}
    return record(PHARMACY.trailer, values)


def pharmacy_lines(n: int = 5, sizes: list[int] | None = None) -> list[str]:
    sizes = sizes or [(i % 3) for i in range(1, n + 1)]  # 1, 2, 0, 1, 2: some with no lines
    body = [line for i, size in enumerate(sizes, start=1) for line in invoice(i, size)]
    total = sum(150 * j * j for size in sizes for j in range(1, size + 1))
    return [header(), *body, trailer(len(sizes), len(body) - len(sizes), total)]


def write(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    return path


def read_all(path: Path, **options: Any) -> tuple[FixedWidthFile, list]:
    contract = sniff_fixed_width(path, [PHARMACY])
    reader = FixedWidthFile(path, contract, **options)
    return reader, list(reader)


def refusal(path: Path) -> FileRefused:
    with pytest.raises(FileRefused) as info:
        read_all(path)
    return info.value


def tables(chunks: list) -> tuple[pa.Table, pa.Table]:
    return (
        pa.concat_tables(c.records for c in chunks),
        pa.concat_tables(c.children for c in chunks),
    )


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_valid_file_gives_records_children_aggregates(tmp_path: Path, newline: str) -> None:
    path = write(tmp_path / "ok.txt", pharmacy_lines(5), newline)
    reader, chunks = read_all(path)
    records, children = tables(chunks)
    assert records.column_names == [
        "record_no",
        "line_no",
        "lines_total",
        "line_count",
        "invoice_number",
        "registration_number",
        "beneficiary_rank",
        "prescription_ref",
        "prescriber_id",
        "dispensing_date",
        "total",
    ]
    assert records.schema.field("dispensing_date").type == pa.date32()
    rows = records.to_pylist()
    assert [r["record_no"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["line_no"] for r in rows] == [2, 4, 7, 8, 10]
    assert [r["line_count"] for r in rows] == [1, 2, 0, 1, 2]
    assert [r["lines_total"] for r in rows] == [150, 750, 0, 150, 750]
    assert all(r["lines_total"] == r["total"] for r in rows)
    assert rows[0]["invoice_number"] == "F000001" and rows[0]["prescription_ref"] == "ORD1"
    assert rows[0]["dispensing_date"] == dt.date(2016, 12, 31)
    assert children.column_names[:3] == ["record_no", "invoice_number", "child_no"]
    assert children.to_pylist()[2] == {
        "record_no": 2,
        "invoice_number": "F000002",
        "child_no": 2,
        "product_code": "3400900020002",
        "quantity": 2,
        "unit_price": 300,
        "amount": 600,
        "reimbursement_category": "65",
    }
    assert reader.header == {
        "sender": "P10001",
        "batch_number": "000042",
        "file_date": dt.date(2017, 1, 2),
        "format_version": 1,
    }
    assert reader.trailer == {"invoice_count": 5, "line_count": 6, "total_amount": 1800}
    assert reader.records_read == 5


def test_chunks_and_tiny_blocks_match_one_chunk(tmp_path: Path) -> None:
    sizes = [3, 0, 7, 1, 0, 0, 12, 2, 5]  # invoices straddle 200-byte blocks
    path = write(tmp_path / "ok.txt", pharmacy_lines(sizes=sizes), "\r\n")
    _, whole = read_all(path)
    reader, parts = read_all(path, chunk_size=2, block_size=200)
    assert [c.records.num_rows for c in parts] == [2, 2, 2, 2, 1]
    for chunk in parts:  # every chunk holds its records' children, and only them
        assert set(chunk.children.column("record_no").to_pylist()) <= set(
            chunk.records.column("record_no").to_pylist()
        )
    assert tables(parts)[0].equals(tables(whole)[0])
    assert tables(parts)[1].equals(tables(whole)[1])
    assert tables(whole)[0].column("line_count").to_pylist() == sizes
    assert reader.trailer["invoice_count"] == 9


def test_chunk_size_multiple_ends_with_an_empty_chunk_like_xml(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.txt", pharmacy_lines(4))
    _, chunks = read_all(path, chunk_size=2)
    assert [c.records.num_rows for c in chunks] == [2, 2, 0]
    assert chunks[-1].children is not None and chunks[-1].children.num_rows == 0


def test_sniff_picks_the_version_and_refuses_unknown_ones(tmp_path: Path) -> None:
    lines = pharmacy_lines(1)
    assert sniff_fixed_width(write(tmp_path / "a.txt", lines), [PHARMACY]) is PHARMACY
    lines[0] = header(version=2)
    with pytest.raises(FileRefused) as info:
        sniff_fixed_width(write(tmp_path / "b.txt", lines), [PHARMACY])
    assert info.value.code == "UNKNOWN_FORMAT" and "known versions: 1" in info.value.message


def broken(tmp_path: Path, edit: Any, newline: str = "\n") -> FileRefused:
    lines = pharmacy_lines(5)
    edit(lines)
    path = write(tmp_path / "bad.txt", lines, newline)
    with pytest.raises(FileRefused) as info:
        list(FixedWidthFile(path, PHARMACY, block_size=300))
    return info.value


def test_latin1_bytes_are_refused_with_their_line(tmp_path: Path) -> None:
    lines = pharmacy_lines(5)
    lines[6] = lines[6].replace("ORD3", "ORDé")
    path = tmp_path / "latin1.txt"
    path.write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    refused = refusal(path)
    assert (refused.code, refused.line) == ("ENCODING", 7)
    assert "0xe9" in refused.message and "files must be UTF-8" in refused.message


def test_utf8_accents_count_as_one_character(tmp_path: Path) -> None:
    lines = pharmacy_lines(2)
    lines[1] = lines[1].replace("ORD1", "ORDé")
    _, chunks = read_all(write(tmp_path / "ok.txt", lines))
    assert tables(chunks)[0].column("prescription_ref").to_pylist()[0] == "ORDé"


def test_truncated_record(tmp_path: Path) -> None:
    refused = broken(tmp_path, lambda lines: lines.__setitem__(6, lines[6][:64]))
    assert (refused.code, refused.line) == ("RECORD_LENGTH", 7)
    assert refused.message == "line 7 has 64 characters, records are 80"
    assert (refused.record_no, refused.record_id) == (3, "F000003")


def test_truncated_last_record_without_newline(tmp_path: Path) -> None:
    lines = pharmacy_lines(2)
    path = tmp_path / "cut.txt"
    path.write_bytes("\n".join(lines).encode()[:-10])
    refused = refusal(path)
    assert (refused.code, refused.line) == ("RECORD_LENGTH", len(lines))


def test_empty_line_is_a_record_of_the_wrong_length(tmp_path: Path) -> None:
    refused = broken(tmp_path, lambda lines: lines.insert(3, ""), "\r\n")
    assert (refused.code, refused.line) == ("RECORD_LENGTH", 4)


def test_unknown_record_type(tmp_path: Path) -> None:
    refused = broken(tmp_path, lambda lines: lines.__setitem__(5, "120" + lines[5][3:]))
    assert (refused.code, refused.line) == ("UNKNOWN_RECORD_TYPE", 6)
    assert "'120'" in refused.message


def test_missing_trailer(tmp_path: Path) -> None:
    refused = broken(tmp_path, lambda lines: lines.pop())
    assert (refused.code, refused.line) == ("STRUCTURE", 12)
    assert "without a trailer" in refused.message


def test_record_after_trailer(tmp_path: Path) -> None:
    refused = broken(tmp_path, lambda lines: lines.append(invoice(6)[0]))
    assert (refused.code, refused.line) == ("STRUCTURE", 14)
    assert "follows the trailer" in refused.message


def test_first_record_must_be_the_header(tmp_path: Path) -> None:
    refused = broken(tmp_path, lambda lines: lines.pop(0))
    assert (refused.code, refused.line) == ("STRUCTURE", 1)


def test_second_header(tmp_path: Path) -> None:
    refused = broken(tmp_path, lambda lines: lines.insert(4, header()))
    assert (refused.code, refused.line) == ("STRUCTURE", 5)


def test_orphan_line_before_any_invoice(tmp_path: Path) -> None:
    refused = broken(tmp_path, lambda lines: lines.insert(1, invoice(9)[1]))
    assert (refused.code, refused.line) == ("STRUCTURE", 2)
    assert "before any invoice" in refused.message


def test_line_under_the_wrong_invoice(tmp_path: Path) -> None:
    # Line 6 belongs to invoice 2 (line 4); move a line of invoice 5 there.
    refused = broken(tmp_path, lambda lines: lines.__setitem__(5, invoice(5)[1]))
    assert (refused.code, refused.line) == ("STRUCTURE", 6)
    assert "'F000005'" in refused.message and "'F000002'" in refused.message
    assert (refused.record_no, refused.record_id) == (2, "F000002")


def test_non_digit_amount(tmp_path: Path) -> None:
    def edit(lines: list[str]) -> None:
        lines[8] = lines[8][:41] + "00000001A0" + lines[8][51:]

    refused = broken(tmp_path, edit)
    assert (refused.code, refused.line) == ("LAYOUT_VIOLATION", 9)
    assert refused.message == "field amount: '00000001A0' is not a number (digits only)"
    assert (refused.record_no, refused.record_id) == (4, "F000004")


@pytest.mark.parametrize("date", ["20161332", "20160230", "20160015", "2016 1 1", "2016-1-1"])
def test_bad_date(tmp_path: Path, date: str) -> None:
    def edit(lines: list[str]) -> None:
        lines[9] = lines[9][:43] + date + lines[9][51:]

    refused = broken(tmp_path, edit)
    assert (refused.code, refused.line) == ("LAYOUT_VIOLATION", 10)
    assert refused.message == f"field dispensing_date: {date!r} is not a date (YYYYMMDD)"
    assert (refused.record_no, refused.record_id) == (5, "F000005")


def test_delimiter_and_control_characters_are_refused(tmp_path: Path) -> None:
    refused = broken(tmp_path, lambda lines: lines.__setitem__(3, lines[3][:70] + "\x1f" * 10))
    assert (refused.code, refused.line) == ("LAYOUT_VIOLATION", 4)
    refused = broken(tmp_path, lambda lines: lines.__setitem__(3, lines[3][:70] + "\t" * 10))
    assert (refused.code, refused.line) == ("LAYOUT_VIOLATION", 4)


@pytest.mark.parametrize("accent", [False, True])  # the ASCII and the UTF-8 code paths
def test_first_error_in_file_order_wins(tmp_path: Path, accent: bool) -> None:
    def edit(lines: list[str]) -> None:
        if accent:
            lines[1] = lines[1].replace("ORD1", "ORDé")
        lines[9] = lines[9][:43] + "20161332" + lines[9][51:]  # layout, line 10
        lines[2] = lines[2][:60]  # length, line 3: first

    assert broken(tmp_path, edit).line == 3

    def layout(lines: list[str]) -> None:
        lines[1] = lines[1].replace("ORD1", "ORDé")
        lines[9] = lines[9][:43] + "20161332" + lines[9][51:]

    assert (broken(tmp_path, layout).line, broken(tmp_path, layout).code) == (
        10,
        "LAYOUT_VIOLATION",
    )


def test_overlong_line(tmp_path: Path) -> None:
    refused = broken(tmp_path, lambda lines: lines.__setitem__(4, lines[4] * 10))
    assert (refused.code, refused.line) == ("RECORD_LENGTH", 5)


def test_contract_must_fit_the_engine() -> None:
    assert isinstance(PHARMACY, FormatContract) and PHARMACY.family == "fixed_width"
