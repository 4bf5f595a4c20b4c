"""OpenSSH's configuration for the partners' SFTP server, written from the registry.

Every partner account of the registry (practitioners, pharmacies, employers by their id,
insurers by their ``sftp_account``) and the funds' own accounts (``Settings.registry_senders``
and ``paper_senders``) that hold at least one valid key in ``edi.registry_sftp_key`` gets a
``Match User`` block: chrooted to ``<root>/partners/<account>``, SFTP only
(``ForceCommand internal-sftp``), read-only for insurers (``-R``: they only fetch their
statement exports), its keys in ``<keys_dir>/<account>``. Everything else is refused by
default: the global section reads no key file at all (``AuthorizedKeysFile none``), so a system
account without a block of its own cannot log in, whatever keys it has lying around; no
password, no keyboard-interactive, no shell, no forwarding of any kind, no root.

The hub's own service account is not a partner: it is confined to the tree (``<root>``, which
it sees as ``/``, as ``edihub.sftp.layout`` names paths), not to a partner's folder, and not at
all when the tree is the file system's root.

Names and keys come from another system's data, so each is checked again here before it is
written into a configuration file (a name with a newline or a space would add a directive):
account names must match ``ACCOUNT_NAME`` (the registry's rule REG-KEY-05), keys must parse as
one of ``KEY_TYPES``. What fails is left out and reported, never written. The output depends
only on the registry, the settings and the day (expired keys are left out), so the same
registry gives the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from edihub.config import Settings
from edihub.sftp import layout

# The registry's rule REG-KEY-05: also a safe user name, file name and sshd token.
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
# Paths written into the configuration: absolute, plain characters only (no space, quote,
# "%" token or newline for sshd to read otherwise).
_SAFE_PATH = re.compile(r"/|(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)+")
# Key type as written -> the type inside the key itself. rsa-sha2-* name RSA signature
# algorithms; OpenSSH accepts them in front of an RSA key, written back here as ssh-rsa.
KEY_TYPES = {
    "ssh-ed25519": "ssh-ed25519",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
    "ssh-rsa": "ssh-rsa",
    "rsa-sha2-256": "ssh-rsa",
    "rsa-sha2-512": "ssh-rsa",
}
MIN_RSA_BITS = 2048
# Debian's static system accounts (base-passwd): a partner must never be given one of them.
RESERVED_NAMES = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "sshd",
})  # fmt: skip

FILESYSTEM_ROOT = PurePosixPath("/")

# The one read-only role: insurers only fetch what the hub exports to them.
INSURER = "insurer"
SERVICE = "service"  # the hub's own account's role
# internal-sftp: log every file operation (the download audit reads each close and its bytes:
# edihub.sftp.downloads), on a facility of its own so that syslog writes them to a file of
# their own (EDIHUB_SFTP_LOG), apart from the authentication log; files group-usable (the hub
# shares the partners' group); no links (the hub quarantines them anyway); -R: read-only.
SFTP_LOG_FACILITY = "LOCAL5"
SFTP_WRITER = f"internal-sftp -l INFO -f {SFTP_LOG_FACILITY} -u 0007 -P symlink,hardlink"
SFTP_READER = f"internal-sftp -l INFO -f {SFTP_LOG_FACILITY} -R"

# The registry's partner accounts, by role (parameter-free: nothing of the caller's in it).
_ACCOUNTS_SQL = """
SELECT 'practitioner', practitioner_id FROM edi.registry_practitioner
UNION ALL SELECT 'pharmacy', pharmacy_id FROM edi.registry_pharmacy
UNION ALL SELECT 'employer', employer_id FROM edi.registry_employer
UNION ALL SELECT 'insurer', sftp_account FROM edi.registry_insurer
"""
_KEYS_SQL = (
    "SELECT sftp_account, public_key, expires_on FROM edi.registry_sftp_key"
    " ORDER BY sftp_account, public_key"
)


class SshdConfigError(ValueError):
    """The generator's own inputs (paths, the service account) cannot be written safely."""


@dataclass(frozen=True)
class RegistryKey:
    """A row of edi.registry_sftp_key."""

    account: str
    public_key: str
    expires_on: dt.date | None = None


@dataclass(frozen=True)
class ServiceAccount:
    """The hub's own account: its name and its public key lines (``<type> <base64> ...``)."""

    name: str
    public_keys: tuple[str, ...]


@dataclass(frozen=True)
class LeftOut:
    """Something of the registry not written into the configuration, and why."""

    account: str
    reason: str

    def __str__(self) -> str:
        return f"{self.account!r}: {self.reason}"


@dataclass(frozen=True)
class PartnerAccount:
    name: str
    roles: tuple[str, ...]
    authorized_keys: tuple[str, ...]

    @property
    def read_only(self) -> bool:
        return INSURER in self.roles

    @property
    def folders(self) -> tuple[str, ...]:
        """The folders of its chroot it uses, relative to it (the hub's: the whole tree)."""
        if SERVICE in self.roles:
            return ()
        return layout.insurer_folders() if self.read_only else layout.partner_folders()


@dataclass(frozen=True)
class ParsedKey:
    """A public key that passed every check: its type, blob and the line to write."""

    key_type: str
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    def line(self, expires_on: dt.date | None) -> str:
        # restrict: no forwarding, pty or rc even if the config said otherwise; expiry-time:
        # sshd itself refuses the key from that day, should the config not be regenerated.
        options = "restrict" + (f',expiry-time="{expires_on:%Y%m%d}"' if expires_on else "")
        text = f"{options} {self.key_type} {base64.b64encode(self.blob).decode()}"
        return f"{text} {self.comment}" if self.comment else text


def account_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a partner's SFTP account, or None."""
    if not ACCOUNT_NAME.fullmatch(name):
        return (
            "not an account name (1 to 32 letters, digits, dots, dashes or underscores, "
            "starting with a letter or digit)"
        )
    if name in RESERVED_NAMES:
        return "a system account's name, never a partner's"
    return None


def parse_public_key(line: str) -> ParsedKey:
    """``<type> <base64> [comment]``, checked the way sshd reads it; ValueError says why not."""
    key_type, _, rest = line.partition(" ")
    encoded, _, comment = rest.partition(" ")
    if key_type not in KEY_TYPES:
        raise ValueError(f"key type {key_type[:40]!r} is not one of {', '.join(KEY_TYPES)}")
    if not encoded:
        raise ValueError("no key after the key type")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the key is not base64") from exc
    inner = _blob_type(blob)
    if inner != KEY_TYPES[key_type]:
        raise ValueError(f"the line says {key_type} but the key inside is {inner[:40]!r}")
    try:
        key = load_ssh_public_key(f"{inner} {encoded}".encode())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a valid {inner} key ({exc})") from exc
    if isinstance(key, RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValueError(f"an RSA key of {key.key_size} bits (at least {MIN_RSA_BITS})")
    for char in comment:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise ValueError(f"the comment holds a control character (U+{ord(char):04X})")
    return ParsedKey(inner, blob, comment.strip())


def _blob_type(blob: bytes) -> str:
    """The key type an SSH public key blob starts with (a length-prefixed string)."""
    size = int.from_bytes(blob[:4], "big")
    if len(blob) < 4 + size or size > 64:
        raise ValueError("the key is truncated")
    return blob[4 : 4 + size].decode("ascii", "replace")


def _safe_path(path: PurePosixPath, what: str) -> str:
    text = str(path)
    if not _SAFE_PATH.fullmatch(text) or ".." in path.parts:
        raise SshdConfigError(
            f"{what} {text!r} is not usable in sshd_config: an absolute path of letters, "
            "digits, dots, dashes and underscores only"
        )
    return text


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class SshdPlan:
    """What to install: the configuration, one authorized_keys file per account, and the
    system accounts to create. ``files()`` gives them all, as text."""

    root: PurePosixPath
    keys_dir: PurePosixPath
    accounts: tuple[PartnerAccount, ...]
    service: PartnerAccount | None  # role SERVICE; never chrooted to a partner folder
    left_out: tuple[LeftOut, ...] = field(default=())

    def chroot(self, account: str) -> str:
        return str(self.root / layout.PARTNERS / account)

    def _service_chroot(self) -> str:
        return "none" if self.root == FILESYSTEM_ROOT else str(self.root)

    def sshd_config(self) -> str:
        keys = f"{self.keys_dir}/%u"
        insurers = sum(a.read_only for a in self.accounts)
        service = f"service account {self.service.name}" if self.service else "no service account"
        lines = [
            "# Generated by `edihub sftp sshd-config` from the hub's registry: do not edit,",
            "# generate it again. For an sshd of its own serving the partners' SFTP accounts",
            "# (not the machine's administration sshd):",
            "#   sshd -f <this file> -p <port> -h <host key file> [-o ListenAddress=<address>]",
            f"# {len(self.accounts)} partner accounts (insurers, read-only: {insurers});"
            f" {service}.",
            f"# Chroots ({self.root}/partners/<account>) and every folder above them must be",
            "# root's and not group- or other-writable (sshd refuses others); the folders of",
            "# accounts.tsv belong to the account, group-shared with the service account (2770).",
            f"# internal-sftp logs to syslog ({SFTP_LOG_FACILITY}) through /dev/log inside the",
            "# chroot: give each chroot a dev/log socket of the syslog daemon and point",
            "# EDIHUB_SFTP_LOG at the file it writes (the hub's download audit reads it).",
            "",
            "# Public keys only, and only those of the blocks below: an account without a",
            "# block reads no key file and cannot log in.",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "PermitEmptyPasswords no",
            "PermitRootLogin no",
            "UsePAM no",
            "StrictModes yes",
            "AuthorizedKeysFile none",
            "AuthorizedKeysCommand none",
            "AuthorizedPrincipalsFile none",
            "# SFTP and nothing else: no shell, terminal, forwarding, tunnel, agent or X11.",
            "DisableForwarding yes",
            "AllowTcpForwarding no",
            "AllowStreamLocalForwarding no",
            "AllowAgentForwarding no",
            "X11Forwarding no",
            "PermitTunnel no",
            "PermitListen none",
            "PermitOpen none",
            "PermitTTY no",
            "PermitUserRC no",
            "PermitUserEnvironment no",
            "PrintMotd no",
            "MaxAuthTries 3",
            "LoginGraceTime 30",
            "LogLevel VERBOSE",
            f"Subsystem sftp {SFTP_READER}",
            f"ForceCommand {SFTP_READER}",
        ]
        if self.service:
            lines += [
                "",
                f"# The hub: the whole tree ({self.root}) as /, no partner's folder.",
                f"Match User {self.service.name}",
                f"    ChrootDirectory {self._service_chroot()}",
                f"    ForceCommand {SFTP_WRITER}",
                f"    AuthorizedKeysFile {keys}",
            ]
        for account in self.accounts:
            lines += [
                "",
                f"# {', '.join(account.roles)}",
                f"Match User {account.name}",
                f"    ChrootDirectory {self.chroot(account.name)}",
                f"    ForceCommand {SFTP_READER if account.read_only else SFTP_WRITER}",
                f"    AuthorizedKeysFile {keys}",
            ]
        return "\n".join(lines) + "\n"

    def authorized_keys(self) -> dict[str, str]:
        """Account name -> the text of its file in ``keys_dir``."""
        everyone = sorted([*self.accounts, *([self.service] if self.service else [])],
                          key=lambda a: a.name)  # fmt: skip
        return {a.name: "\n".join(a.authorized_keys) + "\n" for a in everyone}

    def accounts_tsv(self) -> str:
        """The system accounts to create: name, home and chroot, access, its folders."""
        rows = [("account", "chroot", "access", "folders")]
        if self.service:
            rows.append((self.service.name, str(self.root), SERVICE, "-"))
        rows += [
            (
                a.name,
                self.chroot(a.name),
                "read-only" if a.read_only else "read-write",
                ",".join(a.folders),
            )
            for a in self.accounts
        ]
        return "".join("\t".join(row) + "\n" for row in rows)

    def files(self) -> dict[str, str]:
        """Path relative to the output folder -> text."""
        out = {"sshd_config": self.sshd_config(), "accounts.tsv": self.accounts_tsv()}
        out |= {f"authorized_keys/{n}": text for n, text in self.authorized_keys().items()}
        return out

    def summary(self) -> str:
        insurers = sum(a.read_only for a in self.accounts)
        head = (
            f"{len(self.accounts)} partner accounts (insurers, read-only: {insurers}; "
            f"senders: {len(self.accounts) - insurers}); "
            + (f"service account {self.service.name}" if self.service else "no service account")
            + f"; {len(self.left_out)} left out"
        )
        return "\n".join([head, *(f"  left out: {item}" for item in self.left_out)])


def _valid_keys(
    keys: Iterable[RegistryKey], today: dt.date, left_out: list[LeftOut]
) -> dict[str, dict[bytes, tuple[ParsedKey, dt.date | None]]]:
    """Account -> key blob -> (key, expiry), for the keys in force today. A key listed under
    two accounts would open both: it is kept for neither."""
    by_account: dict[str, dict[bytes, tuple[ParsedKey, dt.date | None]]] = {}
    for row in sorted(keys, key=lambda k: (k.account, k.public_key)):
        try:
            parsed = parse_public_key(row.public_key)
        except ValueError as exc:
            left_out.append(LeftOut(row.account, f"a key refused: {exc}"))
            continue
        if row.expires_on is not None and row.expires_on <= today:
            left_out.append(
                LeftOut(row.account, f"key {parsed.fingerprint} expired on {row.expires_on}")
            )
            continue
        # One key listed twice (another comment): the first line is kept.
        by_account.setdefault(row.account, {}).setdefault(parsed.blob, (parsed, row.expires_on))
    holders: dict[bytes, list[str]] = {}
    for account, blobs in by_account.items():
        for blob in blobs:
            holders.setdefault(blob, []).append(account)
    for blob, accounts in holders.items():
        if len(accounts) > 1:
            for account in accounts:
                parsed, _ = by_account[account].pop(blob)
                others = ", ".join(repr(a) for a in accounts if a != account)
                left_out.append(
                    LeftOut(
                        account,
                        f"key {parsed.fingerprint} is also listed for {others}: "
                        "a key opens one account only",
                    )
                )
    return by_account


def build_plan(
    accounts: Iterable[tuple[str, str]],
    keys: Iterable[RegistryKey],
    *,
    today: dt.date,
    root: PurePosixPath,
    keys_dir: PurePosixPath,
    service: ServiceAccount | None = None,
) -> SshdPlan:
    """The plan from (role, account name) pairs and the registry's keys."""
    _safe_path(root, "the tree's root")
    _safe_path(keys_dir, "the keys folder")
    left_out: list[LeftOut] = []
    roles: dict[str, set[str]] = {}
    for role, name in accounts:
        roles.setdefault(name, set()).add(role)
    hub = _service(service, roles) if service else None
    usable: dict[str, tuple[str, ...]] = {}
    for name, held in sorted(roles.items()):
        if problem := account_name_problem(name):
            left_out.append(LeftOut(name, problem))
        elif INSURER in held and len(held) > 1:
            left_out.append(
                LeftOut(
                    name,
                    f"both an insurer's account (read-only) and a sender's "
                    f"({', '.join(sorted(held - {INSURER}))}): give them two accounts",
                )
            )
        else:
            usable[name] = tuple(sorted(held))
    valid = _valid_keys(keys, today, left_out)
    for name in sorted(set(valid) - set(roles)):
        left_out.append(LeftOut(name, "keys for an account the registry does not know"))
    partners = []
    for name, held in usable.items():
        lines = tuple(sorted(k.line(expires) for k, expires in valid.get(name, {}).values()))
        if not lines:
            left_out.append(LeftOut(name, "no valid key: the account is left out"))
            continue
        partners.append(PartnerAccount(name, held, lines))
    return SshdPlan(root, keys_dir, tuple(partners), hub, tuple(sorted(left_out, key=str)))


def _service(service: ServiceAccount, partners: dict[str, set[str]]) -> PartnerAccount:
    """The service account's entry; its name and keys are the operator's, so a fault in them
    stops the generation rather than being left out."""
    if problem := account_name_problem(service.name):
        raise SshdConfigError(f"service account {service.name!r}: {problem}")
    if service.name in partners:
        raise SshdConfigError(
            f"service account {service.name!r} is also a partner's account in the registry"
        )
    if not service.public_keys:
        raise SshdConfigError(f"service account {service.name!r}: no public key")
    try:
        lines = sorted({parse_public_key(k).line(None) for k in service.public_keys})
    except ValueError as exc:
        raise SshdConfigError(f"service account {service.name!r}: {exc}") from exc
    return PartnerAccount(service.name, (SERVICE,), tuple(lines))


# ---------------------------------------------------------------- registry and files


def registry_accounts(cur: Any, settings: Settings) -> list[tuple[str, str]]:
    """(role, account name) of every account the hub knows: the registry's partners and the
    funds' own accounts from the settings."""
    cur.execute(_ACCOUNTS_SQL)
    found = [(str(role), str(name)) for role, name in cur.fetchall()]
    found += [("core", name) for name in settings.registry_senders]
    found += [("paper", name) for name in settings.paper_senders]
    return found


def registry_keys(cur: Any) -> list[RegistryKey]:
    cur.execute(_KEYS_SQL)
    return [RegistryKey(str(a), str(k), e) for a, k, e in cur.fetchall()]


def plan_from_registry(
    dsn: str,
    settings: Settings,
    *,
    today: dt.date,
    root: PurePosixPath,
    keys_dir: PurePosixPath,
    service: ServiceAccount | None = None,
) -> SshdPlan:
    from edihub.load.db import connect

    with connect(dsn) as conn, conn.cursor() as cur:
        accounts, keys = registry_accounts(cur, settings), registry_keys(cur)
        conn.rollback()
    return build_plan(accounts, keys, today=today, root=root, keys_dir=keys_dir, service=service)


def _write(path: Path, text: str, mode: int) -> None:
    """Through a temporary file and a rename: sshd never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_plan(plan: SshdPlan, out_dir: Path) -> list[str]:
    """Write ``plan.files()`` under ``out_dir`` (readable by all: sshd reads a user's keys as
    that user; nothing here is secret) and remove the key files of accounts no longer in it.
    Returns the names of the key files removed."""
    keys_dir = out_dir / "authorized_keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    for folder in (out_dir, keys_dir):
        folder.chmod(0o755)
    for relative, text in plan.files().items():
        _write(out_dir / relative, text, 0o644)
    kept = set(plan.authorized_keys())
    removed = []
    for entry in sorted(keys_dir.iterdir()):
        if entry.name not in kept and entry.is_file() and not entry.is_symlink():
            entry.unlink()
            removed.append(entry.name)
    return removed


def service_account(name: str | None, key_file: Path | None) -> ServiceAccount | None:
    """The service account from ``--service-account`` and ``--service-key``."""
    if name is None and key_file is None:
        return None
    if name is None or key_file is None:
        raise SshdConfigError("--service-account and --service-key go together")
    lines = [ln.strip() for ln in key_file.read_text(encoding="utf-8").splitlines()]
    return ServiceAccount(name, tuple(ln for ln in lines if ln and not ln.startswith("#")))


def generate(
    dsn: str,
    settings: Settings,
    out_dir: Path,
    *,
    root: PurePosixPath = FILESYSTEM_ROOT,
    today: dt.date | None = None,
    service: ServiceAccount | None = None,
) -> tuple[SshdPlan, list[str]]:
    """What ``edihub sftp sshd-config`` does: the plan from the registry, written to
    ``out_dir`` (whose ``authorized_keys/`` the configuration names)."""
    out_dir = out_dir.resolve()
    plan = plan_from_registry(
        dsn,
        settings,
        today=today or dt.date.today(),
        root=root,
        keys_dir=PurePosixPath(out_dir) / "authorized_keys",
        service=service,
    )
    return plan, write_plan(plan, out_dir)
