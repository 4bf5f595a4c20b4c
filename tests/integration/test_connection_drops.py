"""The SFTP connection dropped mid-transfer, both ways, on the real servers (a TCP proxy cuts
it): the step fails with an error Airflow retries, leaves nothing a reader could take for a
whole file, and its retry over a sound connection ends as if nothing had happened."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import paramiko
import pytest

from edihub import collect
from edihub.sftp.client import connect, put_atomic
from tests.fixtures.cutting_proxy import CuttingProxy
from tests.fixtures.fse import PRACTITIONER, fse_file, sheet
from tests.fixtures.hub import Hub, make_hub
from tests.fixtures.registry import seed_registry

DROPPED = (paramiko.SSHException, EOFError, OSError)  # what paramiko raises on a lost link


@pytest.fixture
def hub(sftp_server: Any, dsn: str, tmp_path: Path) -> Hub:
    seed_registry(dsn, tmp_path)
    return make_hub(sftp_server, PRACTITIONER, dsn, tmp_path / "state", "fse")


def through(proxy: CuttingProxy, endpoint: Any) -> Any:
    return dataclasses.replace(endpoint, host=proxy.host, port=proxy.port, timeout=10.0)


def test_a_download_cut_midway_is_retried_and_loaded_once(hub: Hub, tmp_path: Path) -> None:
    big = fse_file(tmp_path / "FSE_big.xml", [sheet(i) for i in range(1, 1500)])
    assert big.stat().st_size > 400_000
    hub.send(big)
    hub.send(fse_file(tmp_path / "FSE_small.xml", [sheet(i) for i in range(2000, 2003)],
                      batch="000002"))  # fmt: skip
    proxy = CuttingProxy(hub.server.host, hub.server.port, cut_after=200_000, direction="down")
    with (
        proxy.running(),
        pytest.raises(DROPPED),
        connect(through(proxy, hub.server.hub)) as sftp,
    ):
        list(collect.collect(sftp, hub.dsn, hub.settings, "fse"))
    assert proxy.cuts == 1
    landing = hub.settings.landing_dir
    assert not any(p.name.startswith(".fetch-") for p in landing.rglob("*")), "temp kept"

    hub.collect()  # the task's retry
    assert sorted((f[0], f[1], f[3]) for f in hub.files()) == [
        ("FSE_big.xml", "loaded", 1499), ("FSE_small.xml", "loaded", 3)
    ]  # fmt: skip
    assert hub.query("SELECT count(*) FROM edi.fse_care_sheet") == [(1502,)]
    assert hub.inbox() == []


def test_an_upload_cut_midway_leaves_no_file_and_its_retry_writes_it_whole(
    hub: Hub, tmp_path: Path
) -> None:
    payload = os.urandom(1_500_000)
    target = "/partners/P10001/outbound/acks/big.bin"
    proxy = CuttingProxy(hub.server.host, hub.server.port, cut_after=600_000, direction="up")
    with (
        proxy.running(),
        pytest.raises(DROPPED),
        connect(through(proxy, hub.server.hub)) as sftp,
    ):
        put_atomic(sftp, payload, target)
    assert proxy.cuts == 1
    final = hub.server.local(target)
    assert not final.exists()  # a reader never sees half a file under its name

    with connect(hub.server.hub) as sftp:  # the retry
        put_atomic(sftp, payload, target)
    assert final.read_bytes() == payload
    assert [p.name for p in final.parent.iterdir()] == ["big.bin"]  # the .part is gone too
