"""``edihub run --demo``: what each demo drops on the SFTP server, and where its state lives."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from edihub.feeds import FEEDS
from edihub.stack import run


@pytest.mark.parametrize(("which", "files", "partners"), [("brochure", 431, 397), ("day", 20, 9)])
def test_each_demo_sends_files_of_every_feed(
    which: str, files: int, partners: int, tmp_path: Path
) -> None:
    out = io.StringIO()
    demo = run.write_demo_data(run.Stack(tmp_path), run.Steps(Console(file=out, width=300)), which)
    assert sum(len(f) for f in demo.files.values()) == files
    assert len(demo.files) == partners
    assert {f.feed for fs in demo.files.values() for f in fs} == set(FEEDS)
    assert all(f.path.is_relative_to(tmp_path) for fs in demo.files.values() for f in fs)
    assert f"{len(demo.insurer_accounts)} insurers' accounts" in out.getvalue()


def test_the_two_demos_never_share_a_state_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDIHUB_STATE_DIR", "/srv/edihub/state")
    assert run.default_state_dir("brochure") == Path("/srv/edihub/state")
    assert run.default_state_dir("day") == Path("/srv/edihub/state/day")
