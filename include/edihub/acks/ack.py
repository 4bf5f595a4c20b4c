"""Build the acknowledgment XML of a file from its registry row and recorded errors."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

NAMESPACE = "urn:mc:caisses-sociales:edi:ack:v1"
MAX_LISTED_ERRORS = 1000
STATUS_CODES = {
    "loaded": ("accepted", "A"),
    "loaded_with_errors": ("accepted_with_errors", "E"),
    "rejected": ("rejected", "R"),
    "duplicate": ("duplicate", "R"),
    "quarantined": ("quarantined", "R"),
}
_XML_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class AckError:
    level: str
    rule: str
    message: str
    record_no: int | None = None
    record_id: str | None = None
    field: str | None = None
    value: str | None = None


def _text(value: Any) -> str:
    """Partner-supplied text (file names, values) may hold what XML cannot carry."""
    return _XML_UNSAFE.sub("\ufffd", str(value))


def ack_file_name(file_id: int, remote_name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", remote_name)[:120].lstrip(".") or "file"
    return f"{safe}.{file_id}.ack.xml"


def build_ack(
    file: dict[str, Any], errors: list[AckError], total_errors: int, issued_at: dt.datetime
) -> bytes:
    status, code = STATUS_CODES[file["state"]]
    root = etree.Element(f"{{{NAMESPACE}}}acknowledgment", nsmap={None: NAMESPACE}, version="1")
    attrs = {
        "name": file["remote_name"],
        "feed": file["feed"],
        "sender": file["sender"],
        "size": file["size_bytes"],
        "sha256": file.get("sha256"),
        "batchNumber": file.get("batch_number"),
        "formatVersion": file.get("format_version"),
        "receivedAt": file["received_at"].isoformat(),
        "hubReference": f"{file['feed']}-{file['id']}",
    }
    etree.SubElement(
        root, f"{{{NAMESPACE}}}file", {k: _text(v) for k, v in attrs.items() if v is not None}
    )
    result = {
        "status": status,
        "code": code,
        "reasonCode": file.get("reason_code"),
        "reason": file.get("reason"),
        "recordsReceived": file.get("records_total"),
        "recordsAccepted": file.get("records_loaded"),
        "recordsRejected": file.get("records_rejected"),
    }
    etree.SubElement(
        root, f"{{{NAMESPACE}}}result", {k: _text(v) for k, v in result.items() if v is not None}
    )
    if errors:
        listing = etree.SubElement(
            root, f"{{{NAMESPACE}}}errors", total=str(total_errors), listed=str(len(errors))
        )
        for err in errors:
            el_attrs = {
                "level": err.level,
                "rule": err.rule,
                "record": err.record_no,
                "recordId": err.record_id,
                "field": err.field,
                "value": err.value,
            }
            el = etree.SubElement(
                listing,
                f"{{{NAMESPACE}}}error",
                {k: _text(v) for k, v in el_attrs.items() if v is not None},
            )
            el.text = _text(err.message)
    etree.SubElement(root, f"{{{NAMESPACE}}}issuedAt").text = issued_at.isoformat()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
