"""The first bytes of an inbound file, checked before any engine parses it: the refusals every
format shares (an empty file, UTF-16, a binary or compressed file)."""

from __future__ import annotations

from pathlib import Path

from edihub.formats.errors import FileRefused

# gzip, zip, bzip2, xz, zstd: the hub never inflates a file (libxml2 would inflate some of
# these itself, bombs included), it refuses it.
BINARY_MAGIC = (b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")
UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _utf16_without_bom(head: bytes) -> bool:
    """ASCII text written as UTF-16: every other byte of the first four is NUL."""
    if len(head) < 4:
        return False
    odd, even = head[1:4:2], head[0:4:2]
    return any(
        zeros == b"\x00\x00" and all(0 < b < 0x80 for b in text)
        for zeros, text in ((odd, even), (even, odd))
    )


def read_head(path: Path, size: int, kind: str) -> bytes:
    """The first ``size`` bytes of ``path``, as they are (a UTF-8 byte order mark included).

    Refuses an empty file, UTF-16 (with or without its byte order mark) and a binary or
    compressed file; ``kind`` names what the sender should send instead ("CSV file").
    """
    with path.open("rb") as fh:
        head = fh.read(size)
    if not head.strip():
        raise FileRefused("EMPTY_FILE", "the file is empty")
    if head.startswith(_UTF16_BOMS) or _utf16_without_bom(head):
        raise FileRefused("ENCODING", "the file is UTF-16; files must be UTF-8")
    if head.startswith(BINARY_MAGIC) or b"\x00" in head:
        raise FileRefused(
            "NOT_TEXT", f"the file is binary or compressed; send the {kind} itself, uncompressed"
        )
    return head
