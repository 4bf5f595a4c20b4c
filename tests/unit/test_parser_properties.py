"""Property-based tests (hypothesis) of every feed's parser and contracts, through the entry
point the hub uses (validation.check_file, offline): whatever bytes arrive, arbitrary or a
valid file truncated, overwritten or spliced at any place, the hub ends with a verdict a
sender can act on, never an exception; and what it counts adds up."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edihub.config import Settings
from edihub.registry_writer import write_snapshot
from edihub.validation import check_file
from tests.fixtures.fse import PRACTITIONER, fse_file
from tests.fixtures.payroll import EMPLOYER, payroll_file
from tests.fixtures.pharmacy import PHARMACY, pharmacy_file
from tests.fixtures.registry import CORE

FINAL = {"loaded", "loaded_with_errors", "rejected", "quarantined"}


def _registry_file(folder: Path) -> Path:
    rows = [
        {"pharmacy_id": f"PH00000{i}", "name": f"Pharmacie {i}",
         "teletransmission_start_date": dt.date(2016, 3, 1)}
        for i in range(1, 4)
    ]  # fmt: skip
    return write_snapshot(folder, "pharmacy", dt.date(2026, 1, 31), rows)


# feed -> (a valid file's maker, its sender)
SAMPLES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "fse": (lambda folder: fse_file(folder / "FSE.xml"), PRACTITIONER),
    "pharmacy": (lambda folder: pharmacy_file(folder / "PHA.txt"), PHARMACY),
    "payroll": (lambda folder: payroll_file(folder / "DSM.xml"), EMPLOYER),
    "registry": (_registry_file, CORE),
}
PROPERTY = settings(max_examples=25, deadline=None)


@dataclasses.dataclass(frozen=True)
class Samples:
    folder: Path
    valid: dict[str, Path]  # feed -> a file the hub accepts
    hub: Settings


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    folder = tmp_path_factory.mktemp("properties")
    valid = {feed: make(folder) for feed, (make, _) in SAMPLES.items()}
    return Samples(folder, valid, dataclasses.replace(Settings.from_env(), state_dir=folder))


def verdict_of(samples: Samples, feed: str, data: bytes) -> None:
    """Check ``data`` as ``feed``'s file; assert it ends in a state a sender can act on."""
    with tempfile.TemporaryDirectory(dir=samples.folder) as tmp:
        path = Path(tmp) / samples.valid[feed].name
        path.write_bytes(data)
        verdict, errors = check_file(path, samples.hub, feed, SAMPLES[feed][1], None)
    assert verdict.state in FINAL, verdict
    assert 0 <= verdict.records_rejected <= verdict.records_total
    assert verdict.records_loaded == verdict.records_total - verdict.records_rejected
    if verdict.state in ("rejected", "quarantined"):
        assert verdict.reason_code and verdict.reason, verdict  # the rule and why
        assert verdict.records_loaded == 0
    for error in errors:
        assert error["rule"] and error["message"], error


mutations = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1), st.binary(max_size=0)),
    st.tuples(st.just("overwrite"), st.floats(0, 1), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=64)),
)


@PROPERTY
@given(feed=st.sampled_from(sorted(SAMPLES)), data=st.binary(max_size=4096))
def test_arbitrary_bytes_get_a_verdict(samples: Samples, feed: str, data: bytes) -> None:
    verdict_of(samples, feed, data)


@PROPERTY
@given(feed=st.sampled_from(sorted(SAMPLES)), mutation=mutations)
def test_a_damaged_valid_file_gets_a_verdict(
    samples: Samples, feed: str, mutation: tuple[str, float, bytes]
) -> None:
    kind, where, payload = mutation
    valid = samples.valid[feed].read_bytes()
    at = int(where * len(valid))
    damaged = {
        "truncate": valid[:at],
        "overwrite": valid[:at] + payload + valid[at + len(payload) :],
        "insert": valid[:at] + payload + valid[at:],
    }[kind]
    verdict_of(samples, feed, damaged)


def test_the_undamaged_samples_are_loaded(samples: Samples) -> None:
    """The mutations start from files the hub accepts (offline, the registry rules aside)."""
    for feed, path in samples.valid.items():
        verdict, _ = check_file(path, samples.hub, feed, SAMPLES[feed][1], None)
        assert verdict.state == "loaded", (feed, verdict)
