"""Per-insurer exports on the real PostgreSQL and both SFTP servers: numbered files with
manifests, only the insurer's consenting members, the same bytes on every rerun, corrections
in the next file, one insurer's failure leaving the others alone."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from edihub.exports import ExportRefused, due_at, due_exports, export_status
from edihub.exports.files import export_contract
from edihub.sftp.layout import statements_dir
from edihub.statements import MONACO, build_statements, monaco_today
from tests.fixtures.exports import LATER, Exports, day_of_care, insurers, read_export
from tests.fixtures.fse import PRACTITIONER, fse_file, message, sheet, v2_file


@pytest.mark.parametrize("fmt", ["csv", "xml", "parquet"])
def test_each_insurer_gets_its_numbered_file_with_a_manifest_that_verifies(
    exports: Exports, fmt: str
) -> None:
    if fmt != "csv":  # the fixture's registry has INS01 in CSV
        exports.register(insurers(fmt), LATER + dt.timedelta(days=1))
    today = monaco_today()
    day_of_care(exports, today)
    published = exports.publish("INS01", today)
    name = f"CSM_INS01_{today:%Y%m%d}_000001.{fmt}"
    assert (published.sequence, published.path) == (1, f"{statements_dir('ins01')}/{name}")
    files = exports.pulled("INS01")
    assert sorted(files) == [name, f"{name}.manifest.json"]
    manifest = json.loads(files[f"{name}.manifest.json"])
    assert manifest["sha256"] == hashlib.sha256(files[name]).hexdigest()
    rows = read_export(fmt, files[name])
    # 123456's statement: their own sheet and their beneficiary's two (rank 1), two acts
    # each; not 654321's, who is INS02's member.
    assert manifest["row_count"] == len(rows) == 6
    assert {str(r["member_number"]) for r in rows} == {"M-123"}
    totals = manifest["totals_cents"]
    assert totals == {"billed": 3 * 5500, "reimbursed": 3 * 4400, "patient_share": 3 * 1100}
    assert totals["reimbursed"] + totals["patient_share"] == totals["billed"]
    assert set(rows[0]) <= set(export_contract().columns)  # nothing else: no name, no address
    assert not {"last_name", "postal_address", "email", "registration_number"} & set(rows[0])


def test_a_rerun_gives_the_same_bytes_even_after_the_registry_changed(exports: Exports) -> None:
    today = monaco_today()
    day_of_care(exports, today)
    first = exports.publish("INS02", today)
    before = exports.pulled("INS02")
    assert exports.publish("INS02", today).uploaded is False
    changed = [dict(r, export_format="csv") if r["insurer_id"] == "INS02" else r
               for r in insurers()]  # fmt: skip
    exports.register(changed, LATER + dt.timedelta(days=2))
    with exports.server.connect(exports.server.hub) as sftp:  # the insurer's file lost
        sftp.remove(first.path)
        sftp.remove(first.path + ".manifest.json")
    again = exports.publish("INS02", today)
    assert (again.uploaded, again.sha256, again.sequence) == (True, first.sha256, 1)
    assert exports.pulled("INS02") == before


def test_a_correction_goes_out_in_the_next_file_as_reversal_and_replacement(
    exports: Exports,
) -> None:
    today = monaco_today()
    care = today - dt.timedelta(days=3)
    exports.ingest("fse", fse_file(exports.folder / "F1.xml", [sheet(3, care_date=care)]),
                   PRACTITIONER)  # fmt: skip
    build_statements(exports.dsn, now=dt.datetime.combine(today, dt.time(9), MONACO),
                     close_today=True)  # fmt: skip
    exports.publish("INS01", today)
    first = exports.pulled("INS01")
    exemption = message("exemption_request", 3, exempt_from=care - dt.timedelta(days=30))
    late = v2_file(exports.folder / "E.xml", "exemption_request", [exemption], batch="000002")
    exports.ingest("fse", late, PRACTITIONER)
    tomorrow = today + dt.timedelta(days=1)
    build_statements(exports.dsn, now=dt.datetime.combine(tomorrow, dt.time(9), MONACO),
                     close_today=True)  # fmt: skip
    second = exports.publish("INS01", tomorrow)
    assert second.sequence == 2
    files = exports.pulled("INS01")
    assert {k: v for k, v in files.items() if k in first} == first  # never rewritten
    rows = read_export("csv", files[Path(second.path).name])
    assert [(r["status"], r["corrects_line"], r["reimbursed_cents"], r["patient_share_cents"])
            for r in rows] == [
        ("reversal", 1, -2400, -600), ("replacement", 1, 3000, 0),
        ("reversal", 2, -2000, -500), ("replacement", 2, 2500, 0),
    ]  # fmt: skip
    assert {r["corrects_statement"] for r in rows} == {f"{today:%Y%m%d}-000001"}


def test_one_insurers_failure_leaves_the_others_alone(exports: Exports) -> None:
    today = monaco_today()
    day_of_care(exports, today)
    # INS01's folder is broken on the server (a file where its folder should be).
    broken = exports.server.local(statements_dir("ins01"))
    for child in broken.iterdir():
        child.unlink()
    broken.rmdir()
    broken.write_bytes(b"")
    with pytest.raises(OSError):
        exports.publish("INS01", today)
    assert exports.publish("INS02", today).rows == 4
    assert exports.publish("INS03", today).rows == 0  # no member: an empty, numbered file
    [(state, attempts, error)] = exports.query(
        "SELECT state, attempts, last_error FROM edi.export_file WHERE insurer_id = 'INS01'"
    )
    assert (state, attempts) == ("planned", 1) and "NotADirectoryError" in error
    statuses = {s.insurer_id: s.status for s in export_status(exports.dsn, dt.datetime.now(dt.UTC))
                if s.day == today}  # fmt: skip
    assert statuses == {"INS01": "failed", "INS02": "published", "INS03": "published",
                        "INS04": "paused"}  # fmt: skip


def test_paused_insurers_and_unissued_days_are_refused(exports: Exports) -> None:
    today = monaco_today()
    day_of_care(exports, today)
    with pytest.raises(ExportRefused, match="INS04 is paused"):
        exports.publish("INS04", today)
    with pytest.raises(ExportRefused, match="not issued yet"):
        exports.publish("INS01", today + dt.timedelta(days=1))


def test_files_are_due_at_the_insurers_local_time_across_daylight_saving(
    exports: Exports,
) -> None:
    # 06:00 in Monaco: 04:00 UTC in summer, 05:00 UTC in winter, the nights of both changes.
    assert due_at("06:00", dt.date(2026, 3, 28)) == dt.datetime(2026, 3, 29, 4, tzinfo=dt.UTC)
    assert due_at("06:00", dt.date(2026, 10, 24)) == dt.datetime(2026, 10, 25, 5, tzinfo=dt.UTC)
    today = monaco_today()
    day_of_care(exports, today)
    next_morning = due_at("06:00", today)
    assert due_exports(exports.dsn, next_morning - dt.timedelta(minutes=1)) == []
    assert due_exports(exports.dsn, next_morning) == [
        {"insurer_id": iid, "days": [today.isoformat()]} for iid in ("INS01", "INS02", "INS03")
    ]
    exports.publish("INS02", today)
    assert [d["insurer_id"] for d in due_exports(exports.dsn, next_morning)] == ["INS01", "INS03"]
