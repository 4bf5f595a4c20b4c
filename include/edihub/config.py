"""Settings read from the environment, with embedded defaults.

Inside Airflow tasks the database and SFTP endpoints come from Airflow connections
(see ``edihub.orchestration``); the variables below serve the CLI and the embedded stack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_names(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = os.environ.get(name)
    return _names(value) if value else default


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


def env_fields(
    cls: type[Any],
    prefix: str,
    environ: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A settings dataclass's values set in the environment (blank: unset), by field: each
    from PREFIX + FIELD in capitals (or ``names[field]``), an int or a comma-separated tuple
    of names as the field's default is; for ``cls(**env_fields(...))``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for item in fields(cls):
        raw = env.get((names or {}).get(item.name, prefix + item.name.upper()), "").strip()
        if raw:
            values[item.name] = _names(raw) if isinstance(item.default, tuple) else int(raw)
    return values


@dataclass(frozen=True)
class Settings:
    """What the hub needs to know about its surroundings.

    state_dir        EDIHUB_STATE_DIR          local state: embedded servers, landing copies, keys
    formats_dir      EDIHUB_FORMATS_DIR        format contracts (formats/ of the repository)
    contracts_dir    EDIHUB_CONTRACTS_DIR      data contracts (contracts/ of the repository)
    max_file_bytes   EDIHUB_MAX_FILE_BYTES     larger inbound files are quarantined unread
    settle_seconds   EDIHUB_SETTLE_SECONDS     an inbound file must be this old and unchanged
    files_per_task   EDIHUB_FILES_PER_TASK     at most this many files per mapped collect task...
    bytes_per_task   EDIHUB_BYTES_PER_TASK     ...and about this many bytes (a larger file alone)
    care_window_days EDIHUB_CARE_WINDOW_DAYS   oldest accepted date of care or dispensing, in days
    declaration_window_days EDIHUB_DECLARATION_WINDOW_DAYS   oldest salary period, in days
    registry_senders EDIHUB_REGISTRY_SENDERS   accounts of the funds' core systems, which alone
                                               may send registry snapshots (comma-separated)
    paper_senders    EDIHUB_PAPER_SENDERS      accounts of the funds' staff keying declarations
                                               received on paper, which alone may send payroll
                                               declarations on an employer's behalf (channel
                                               paper; comma-separated, each matching the payroll
                                               XSD's sender pattern [A-Z][A-Z0-9]{2,15})
    mailroom_account EDIHUB_MAILROOM_ACCOUNT   the SFTP account whose /outbound/print/ receives
                                               the daily print batch of paper statements
                                               (default: the first paper sender)
    """

    state_dir: Path
    formats_dir: Path
    contracts_dir: Path
    max_file_bytes: int
    settle_seconds: int
    care_window_days: int
    declaration_window_days: int
    files_per_task: int = 20
    bytes_per_task: int = 256 * 1024**2
    registry_senders: tuple[str, ...] = ("csm-core",)
    paper_senders: tuple[str, ...] = ("CSMSAISIE",)
    mailroom_account: str = "CSMSAISIE"

    @classmethod
    def from_env(cls) -> Settings:
        paper_senders = env_names("EDIHUB_PAPER_SENDERS", ("CSMSAISIE",))
        return cls(
            state_dir=Path(os.environ.get("EDIHUB_STATE_DIR", REPO_ROOT / "state")),
            formats_dir=Path(os.environ.get("EDIHUB_FORMATS_DIR", REPO_ROOT / "formats")),
            contracts_dir=Path(os.environ.get("EDIHUB_CONTRACTS_DIR", REPO_ROOT / "contracts")),
            max_file_bytes=env_int("EDIHUB_MAX_FILE_BYTES", 2 * 1024**3),
            settle_seconds=env_int("EDIHUB_SETTLE_SECONDS", 10),
            care_window_days=env_int("EDIHUB_CARE_WINDOW_DAYS", 730),
            declaration_window_days=env_int("EDIHUB_DECLARATION_WINDOW_DAYS", 730),
            files_per_task=max(1, env_int("EDIHUB_FILES_PER_TASK", 20)),
            bytes_per_task=env_int("EDIHUB_BYTES_PER_TASK", 256 * 1024**2),
            registry_senders=env_names("EDIHUB_REGISTRY_SENDERS", ("csm-core",)),
            paper_senders=paper_senders,
            mailroom_account=os.environ.get("EDIHUB_MAILROOM_ACCOUNT") or paper_senders[0],
        )

    @property
    def for_contracts(self) -> dict[str, Any]:
        """The settings data contracts may name (``days_before_today: <name>``,
        ``setting: <name>``)."""
        return {
            "care_window_days": self.care_window_days,
            "declaration_window_days": self.declaration_window_days,
            "registry_senders": list(self.registry_senders),
            "paper_senders": list(self.paper_senders),
        }

    @property
    def landing_dir(self) -> Path:
        return self.state_dir / "landing"
