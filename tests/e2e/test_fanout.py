"""A day end to end on the real servers: the demo's registry, care sheets and pharmacy invoices
sent over SFTP and collected, statements issued, e-mailed to the catcher, printed for the mail
room, and the 52 insurers' files published; then the day run again, changing no byte."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from edihub.demo import CORE_SYSTEMS, write_demo
from edihub.exports import exportable_insurers, publish
from edihub.notify import build_print_batch, send_due
from edihub.notify.catcher import MailCatcher
from edihub.sftp.client import put_atomic
from edihub.sftp.layout import insurer_folders
from edihub.statements import MONACO, build_statements, monaco_today
from tests.fixtures.exports import pull_statements, read_export
from tests.fixtures.funds import Funds
from tests.fixtures.hub import make_hub


def _pull_all(server: Any, accounts: dict[str, Any]) -> dict[str, dict[str, bytes]]:
    """Every insurer's folder, as each insurer's own account reads it."""
    pulled: dict[str, dict[str, bytes]] = {}
    for insurer_id, endpoint in accounts.items():
        with server.connect(endpoint) as sftp:
            pulled[insurer_id] = pull_statements(sftp)
    return pulled


def test_a_day_of_care_reaches_the_insured_and_the_52_insurers(
    dsn: str, sftp_server: Any, tmp_path: Path
) -> None:
    today = monaco_today()
    demo = write_demo(tmp_path / "demo", today)
    funds = Funds(dsn, tmp_path)
    registry = [f.path for f in demo.files[CORE_SYSTEMS]]
    for path in registry:
        funds.ingest("registry", path, CORE_SYSTEMS)
    # The practitioners and pharmacies put their files; the hub collects them.
    for partner, files in demo.files.items():
        feeds = {f.feed for f in files} & {"fse", "pharmacy"}
        for feed in feeds:
            hub = make_hub(sftp_server, partner, dsn, tmp_path / "state", feed)
            for f in files:
                if f.feed == feed:
                    with sftp_server.connect(hub.partner) as sftp:
                        put_atomic(sftp, f.path, f"/inbound/{feed}/{f.path.name}")
            hub.collect()
    assert funds.query("SELECT count(*) FROM edi.fse_care_sheet")[0][0] > 50

    build = build_statements(dsn, now=dt.datetime.combine(today, dt.time(18), MONACO),
                             close_today=True)  # fmt: skip
    assert build.issue and build.issue.statements > 20 and not build.adjudication.unpriced

    # Totals reconcile per statement and for the day, against the priced lines themselves.
    assert funds.query(
        "SELECT count(*) FROM edi.statement s WHERE total_reimbursed + total_patient_share"
        " <> total_billed OR total_billed <> (SELECT sum(billed) FROM edi.statement_line l"
        " WHERE l.statement_id = s.statement_id)"
    ) == [(0,)]
    assert funds.query(
        "SELECT (SELECT sum(total_billed) FROM edi.statement),"
        " (SELECT sum(billed) FROM edi.claim_line WHERE superseded_by IS NULL)"
    ) == [(funds.query("SELECT sum(billed) FROM edi.claim_line")[0][0],) * 2]

    # E-mails for the dematerialised, a print batch for the others.
    catcher = MailCatcher(tmp_path / "mail").start()
    try:
        report = send_due(dsn, catcher.smtp_settings(), dt.datetime.now(dt.UTC))
        received = catcher.wait_for(build.issue.by_email)
    finally:
        catcher.stop()
    emailed = funds.query("SELECT email FROM edi.statement WHERE channel = 'email' ORDER BY email")
    assert len(report.sent) == build.issue.by_email == len(emailed) > 0
    assert sorted(str(m["To"]) for m in received) == [e for (e,) in emailed]
    mailroom = make_hub(sftp_server, "CSMSAISIE", dsn, tmp_path / "state", "payroll")
    with sftp_server.connect(sftp_server.hub) as sftp:
        batch = build_print_batch(dsn, sftp, today, "CSMSAISIE")
    assert batch is not None and batch.statement_count == build.issue.by_paper > 0
    with sftp_server.connect(mailroom.partner) as sftp:
        index = sftp.open(f"/outbound/print/{today}/{Path(batch.index_path).name}").read()
    assert len(list(csv.DictReader(io.StringIO(index.decode())))) == build.issue.by_paper

    # The 52 insurers' files, each pulled through the insurer's own account.
    insurers = exportable_insurers(dsn, today)
    assert len(insurers) == 52
    accounts = {i: sftp_server.add_partner(i.lower(), insurer_folders()) for i in insurers}
    formats = dict(funds.query("SELECT insurer_id, export_format FROM edi.registry_insurer"))
    with sftp_server.connect(sftp_server.hub) as sftp:
        for insurer_id in insurers:
            publish(dsn, sftp, insurer_id, today)
    pulled = _pull_all(sftp_server, accounts)

    # Who should be in each file, from the registry snapshot itself: the insured who named
    # the insurer and consented, and have a statement today.
    [insured_csv] = [p for p in registry if p.name.startswith("insured_")]
    members: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(insured_csv.open(encoding="utf-8-sig")):
        if (
            row["beneficiary_rank"] == "0"
            and row["insurer_id"]
            and row["insurer_consent"] == "true"
        ):
            members.setdefault(row["insurer_id"], {})[row["registration_number"]] = row[
                "insurer_member_number"
            ]
    stated = {n for (n,) in funds.query("SELECT registration_number FROM edi.statement")}
    lines_of = dict(funds.query(
        "SELECT registration_number, line_count FROM edi.statement"
    ))  # fmt: skip
    copied = 0
    for insurer_id in insurers:
        files = pulled[insurer_id]
        [data_name] = [n for n in files if not n.endswith(".manifest.json")]
        assert data_name == f"CSM_{insurer_id}_{today:%Y%m%d}_000001.{formats[insurer_id]}"
        manifest = json.loads(files[f"{data_name}.manifest.json"])
        assert manifest["sha256"] == hashlib.sha256(files[data_name]).hexdigest()
        rows = read_export(formats[insurer_id], files[data_name])
        expected = {n: m for n, m in members.get(insurer_id, {}).items() if n in stated}
        assert {str(r["member_number"]) for r in rows} == set(expected.values())
        assert len(rows) == manifest["row_count"] == sum(lines_of[n] for n in expected)
        totals = manifest["totals_cents"]
        assert totals["reimbursed"] + totals["patient_share"] == totals["billed"]
        assert totals["billed"] == sum(int(r["billed_cents"]) for r in rows)
        copied += len(rows)
    assert copied > 0
    assert (
        copied
        == funds.query(
            "SELECT coalesce(sum(line_count), 0)::int FROM edi.statement"
            " WHERE insurer_id IS NOT NULL"
        )[0][0]
    )

    # The day again, from the start: nothing new, no byte changed anywhere.
    again = build_statements(dsn, now=dt.datetime.combine(today, dt.time(19), MONACO),
                             close_today=True)  # fmt: skip
    assert again.issue and not again.issue.newly_issued and again.adjudication.priced == 0
    with sftp_server.connect(sftp_server.hub) as sftp:
        for insurer_id in insurers:
            assert publish(dsn, sftp, insurer_id, today).uploaded is False
        assert build_print_batch(dsn, sftp, today, "CSMSAISIE").uploaded is False  # type: ignore[union-attr]
    assert _pull_all(sftp_server, accounts) == pulled
