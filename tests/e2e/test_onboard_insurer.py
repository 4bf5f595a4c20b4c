"""The runbook's onboarding of a 53rd insurer, on a hub whose registry holds the 52 insurers
under convention: the commands an integration engineer types (``edihub partners add``, then
``rotate-key`` with the key the insurer sent), the core systems' next snapshot naming the
insurer's first member, a day of care, the day's export, and the file pulled over SFTP by
the new insurer with its own key. No code is changed: the registry, the contracts, the SFTP
configuration and the embedded server's accounts follow from the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edihub.demo import CORE_SYSTEMS, write_demo
from edihub.exports import exportable_insurers, publish
from edihub.registry_writer import write_snapshot
from edihub.sftp import client
from edihub.sftp.client import SftpEndpoint
from edihub.sftp.server import SftpAccount
from edihub.statements import monaco_today
from tests.fixtures.exports import day_of_care, insured, pull_statements, read_export
from tests.fixtures.funds import Funds
from tests.fixtures.registry import CORE
from tests.fixtures.sftp import new_key_pair
from tests.integration.test_partners import following_server


def test_a_53rd_insurer_is_onboarded_and_pulls_its_first_file(
    funds: Funds, tmp_path: Path, embedded_host_key_path: Path
) -> None:
    today = monaco_today()
    [fifty_two] = [
        f.path
        for f in write_demo(tmp_path / "demo", today).files[CORE_SYSTEMS]
        if f.path.name.startswith("insurer_")
    ]
    funds.ingest("registry", fifty_two, CORE)
    assert len(exportable_insurers(funds.dsn, today)) == 52

    # The hub's SFTP server follows the configuration `edihub partners` writes.
    config, tree, keys = tmp_path / "sshd", tmp_path / "sftp", tmp_path / "keys"
    hub_key, hub_public = new_key_pair(keys, "hub")
    env = os.environ | {
        "EDIHUB_DATABASE_URL": funds.dsn,
        "EDIHUB_STATE_DIR": str(funds.settings.state_dir),
        "EDIHUB_SSHD_CONFIG_DIR": str(config),
        "EDIHUB_SFTP_TREE": str(tree),
        "EDIHUB_ACTOR": "j.dupont",
    }

    def edihub(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "edihub.cli", *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    with following_server(tree, embedded_host_key_path, config,
                          SftpAccount("edihub", tree, [hub_public])) as server:  # fmt: skip
        # The runbook: the insurer's record, then the public key it sent (ins53.pub).
        edihub("partners", "add", "insurer", "INS53", "name=Mutuelle 53",
               f"convention_signed_on={today}", "status=active", "sftp_account=ins53",
               "export_format=parquet", "export_time=06:00")  # fmt: skip
        insurer_key, insurer_public = new_key_pair(keys, "ins53")
        (keys / "ins53.pub").write_text(insurer_public + "\n")
        out = edihub("partners", "rotate-key", "ins53", "--key", str(keys / "ins53.pub"))
        assert "partner.rotate_key INS53" in out
        assert "1 partner accounts (insurers, read-only: 1; senders: 0)" in out  # the 52: no key
        assert "insurer\tINS53\tins53\t1\tactive\tparquet\t06:00" in edihub("partners", "list")

        # The core systems' next insured snapshot: 123456 has joined INS53.
        members = [
            row | {"insurer_id": "INS53", "insurer_member_number": "M-53"}
            if row["insurer_id"] == "INS01"
            else row
            for row in insured()
        ]
        funds.ingest("registry", write_snapshot(tmp_path / "core", "insured", today, members),
                     CORE)  # fmt: skip
        day_of_care(funds, today)  # type: ignore[arg-type]

        # The day's export, as export_insurers runs it for each insurer due.
        assert "INS53" in exportable_insurers(funds.dsn, today)
        hub = SftpEndpoint(server.host, server.port, "edihub", hub_key, server.host_key_line)
        with client.connect(hub) as sftp:
            published = publish(funds.dsn, sftp, "INS53", today)
        assert published.sequence == 1

        # INS53 pulls it with its own key, from its own read-only folder.
        ins53 = SftpEndpoint(server.host, server.port, "ins53", insurer_key,
                             server.host_key_line)  # fmt: skip
        with client.connect(ins53) as sftp:
            files = pull_statements(sftp)
    name = f"CSM_INS53_{today:%Y%m%d}_000001.parquet"
    assert sorted(files) == [name, f"{name}.manifest.json"]
    rows = read_export("parquet", files[name])
    assert json.loads(files[f"{name}.manifest.json"])["row_count"] == len(rows) == 6
    assert {r["member_number"] for r in rows} == {"M-53"}
    trail = edihub("partners", "audit", "INS53").splitlines()
    assert [line.split("\t")[1:3] for line in trail] == [
        ["j.dupont", "partner.add"],
        ["j.dupont", "partner.rotate_key"],
    ]
