"""DAG parse benchmark: how long Airflow's DAG processor spends on the hub's DAG files.

    .venv/bin/python bench/dag_parse.py [--repeat R]

The DAG processor imports Airflow once, then parses every file of dags/ again every 30 s
(``min_file_process_interval``). So, in one fresh interpreter: the import of the Airflow SDK
(paid once, the baseline), then all of dags/ in one DagBag, cold (the hub's modules not yet
imported), then each DAG file parsed the way the processor does it (a ``DagBag`` of that one
file; best of R). The target of issue 6
is the whole folder in under 2 s. A DAG file that imported the hub's heavy code (Great
Expectations, pandas, pyarrow) at module level would show here, long before production.
Nothing is asserted (tests/test_dags.py checks that nothing heavy is imported).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

DAGS = Path(__file__).resolve().parent.parent / "dags"
TARGET_SECONDS = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="parses per file; best kept")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

    started = time.perf_counter()
    import airflow.sdk  # noqa: F401  the processor's one-off import
    from airflow.dag_processing.dagbag import DagBag

    imported = time.perf_counter() - started
    print(f"# bench/dag_parse.py --repeat {args.repeat}; Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at start")  # fmt: skip
    print(f"{'what':<34} {'DAGs':>5} {'seconds':>9} {'vs the SDK import':>18}")
    print(f"{'import airflow.sdk (baseline)':<34} {'':>5} {imported:>9.3f} {'1.00x':>18}")
    t = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS))
    whole = time.perf_counter() - t
    print(f"{'dags/ (one DagBag, cold)':<34} {len(bag.dags):>5} {whole:>9.3f} "
          f"{whole / imported:>17.2f}x")  # fmt: skip
    for path in sorted(DAGS.glob("*.py")):
        best, dags = float("inf"), 0
        for _ in range(args.repeat):
            t = time.perf_counter()
            bag = DagBag(dag_folder=str(path))
            best = min(best, time.perf_counter() - t)
            if bag.import_errors:
                print(f"{path.name}: import errors {bag.import_errors}", file=sys.stderr)
                return 1
            dags = len(bag.dags)
        print(f"{'dags/' + path.name:<34} {dags:>5} {best:>9.3f} {best / imported:>17.2f}x")
    print(f"target: all DAG files in under {TARGET_SECONDS:.0f} s: "
          f"{'met' if whole < TARGET_SECONDS else 'NOT met'} ({whole:.3f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
