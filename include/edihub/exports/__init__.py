"""Per-insurer statement exports: what each file carries (ledger.py), its bytes and manifest
(files.py), publishing it into the insurer's SFTP folder (deliver.py), and when each is due
and where each stands (schedule.py)."""

from edihub.exports.deliver import ExportRefused, Published, PublishedFileDiffers, publish
from edihub.exports.schedule import (
    DayStatus,
    due_at,
    due_exports,
    export_status,
    exportable_insurers,
)

__all__ = [
    "DayStatus",
    "ExportRefused",
    "Published",
    "PublishedFileDiffers",
    "due_at",
    "due_exports",
    "export_status",
    "exportable_insurers",
    "publish",
]
