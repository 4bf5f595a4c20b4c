"""Why a whole file is refused, in words a sender can act on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FileRefused(Exception):
    """The file as a whole cannot be accepted.

    ``code`` is stable and searchable (it goes into acknowledgments and logs);
    ``hostile`` files are quarantined rather than merely rejected.
    """

    code: str
    message: str
    record_no: int | None = None
    record_id: str | None = None
    line: int | None = None
    hostile: bool = False

    def __str__(self) -> str:
        where = []
        if self.record_no is not None:
            where.append(f"record {self.record_no}")
        if self.record_id:
            where.append(f"id {self.record_id}")
        if self.line:
            where.append(f"line {self.line}")
        suffix = f" ({', '.join(where)})" if where else ""
        return f"{self.code}: {self.message}{suffix}"
