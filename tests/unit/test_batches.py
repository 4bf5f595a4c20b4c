"""How a collect run cuts the ready files into mapped tasks (collect.batches), and how a task
treats a batch whose one file fails (orchestration._each)."""

from __future__ import annotations

from typing import Any

import pytest

from edihub import collect, orchestration


def ready(*sizes: int) -> list[collect.InboundFile]:
    return [
        collect.InboundFile("P10001", "fse", f"f{i}.xml", f"/p/f{i}.xml", size, 0.0)
        for i, size in enumerate(sizes)
    ]


def names(batches: list[list[collect.InboundFile]]) -> list[list[str]]:
    return [[f.name for f in batch] for batch in batches]


def test_batches_hold_at_most_the_files_per_task_in_listing_order() -> None:
    assert names(collect.batches(ready(1, 1, 1, 1, 1), 2, 1_000)) == [
        ["f0.xml", "f1.xml"], ["f2.xml", "f3.xml"], ["f4.xml"]
    ]  # fmt: skip
    assert collect.batches([], 20, 1_000) == []


def test_a_large_file_gets_a_batch_of_its_own() -> None:
    # 600 + 300 stay under 1,000; the 5,000-byte file is alone; the next starts a new batch
    assert names(collect.batches(ready(600, 300, 5_000, 200, 900), 20, 1_000)) == [
        ["f0.xml", "f1.xml"], ["f2.xml"], ["f3.xml"], ["f4.xml"]
    ]  # fmt: skip


def test_one_failing_file_does_not_stop_the_others_but_fails_the_task() -> None:
    done: list[int] = []

    def step(file_id: int) -> int:
        if file_id == 2:
            raise ConnectionError("SFTP connection lost")
        done.append(file_id)
        return file_id

    with pytest.raises(RuntimeError, match=r"fetch failed for 1 of 3 file\(s\): 2: SFTP") as info:
        orchestration._each("fetch", [1, 2, 3], step)
    assert done == [1, 3]
    assert isinstance(info.value.__cause__, ConnectionError)
    assert orchestration._each("fetch", [1, 3], step) == [1, 3]


def outcome(name: str) -> dict[str, Any]:
    return {"remote_name": name, "state": "loaded"}


def test_the_report_tells_a_collapsed_single_batch_from_a_list_of_batches() -> None:
    one, two = [[{"name": "a"}]], [[{"name": "a"}], [{"name": "b"}]]
    # Airflow 3.3.2 hands a single expansion's value over bare (apache/airflow#69036)
    assert orchestration.batch_outcomes(one, [outcome("a")]) == [[outcome("a")]]
    assert orchestration.batch_outcomes(one, None) == [None]  # the batch failed
    assert orchestration.batch_outcomes(one, [[outcome("a")]]) == [[outcome("a")]]  # fixed
    assert orchestration.batch_outcomes(two, [[outcome("a")], None]) == [[outcome("a")], None]
    assert orchestration.batch_outcomes([], None) == []
    with pytest.raises(RuntimeError, match=r"1 batch\(es\) of files did not finish"):
        orchestration.report("fse", orchestration.batch_outcomes(one, None))
