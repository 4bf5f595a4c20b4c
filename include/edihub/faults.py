"""Crash points, for the fault-injection tests (tests/integration/test_faults.py).

``EDIHUB_CRASH_AT=<point>`` makes the process kill itself with SIGKILL when it reaches that
point: no exception, no ``finally``, no rollback sent; what a worker killed by the kernel or
a lost machine leaves behind. The tests then run the step again and check the guarantees of
docs/architecture.md (each file and statement exactly once, nothing orphaned). Unset, as in
production, a point costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "EDIHUB_CRASH_AT"
POINTS = frozenset({
    "collect.after_download",   # landing copy written, the file's row not committed
    "collect.mid_validation",   # the verdict's errors written, the verdict itself not
    "collect.mid_copy",         # records COPYed, the children and the commit not
    "collect.after_commit",     # loaded and committed, not archived
    "collect.after_move",       # moved to the archive on the server, not recorded
    "collect.after_archive",    # archived and recorded, not acknowledged
    "collect.after_ack_upload", # the ack on the server, not recorded
    "sftp.mid_upload",          # part of a .part file written
    "sftp.before_rename",       # the .part complete, not renamed
    "exports.after_rename",     # the insurer's file published, not recorded
})  # fmt: skip


def crash_point(point: str) -> None:
    if point not in POINTS:
        raise ValueError(f"no crash point {point!r}")
    if os.environ.get(VARIABLE) == point:
        os.kill(os.getpid(), signal.SIGKILL)
