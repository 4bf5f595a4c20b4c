"""Load the minimal reference registry (practitioners, beneficiaries) from CSV snapshots.

A snapshot replaces the previous one in one transaction: readers see the old registry or
the new one, never half of each.
"""

from __future__ import annotations

from pathlib import Path

from edihub.load.db import connect

SNAPSHOTS = {
    # file name -> (table, columns in the CSV, in order)
    "practitioners.csv": ("edi.registry_practitioner", ("practitioner_id", "kind", "name")),
    "beneficiaries.csv": ("edi.registry_beneficiary", ("registration_number", "beneficiary_rank")),
}


def load_registry(dsn: str, registry_dir: Path) -> dict[str, int]:
    """Replace each registry table whose snapshot is present; return row counts per table."""
    counts: dict[str, int] = {}
    with connect(dsn) as conn, conn.cursor() as cur:
        for file_name, (table, columns) in SNAPSHOTS.items():
            path = registry_dir / file_name
            if not path.is_file():
                continue
            # Table and column names are constants above, never input.
            cur.execute(f"DELETE FROM {table}")
            with path.open(encoding="utf-8") as fh:
                copy = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv, HEADER true)"
                cur.copy_expert(copy, fh)
            counts[table] = cur.rowcount
        conn.commit()
    return counts
