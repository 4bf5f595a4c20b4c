"""The sshd configuration generator's own checks, without a database: which keys and account
names it writes, and that nothing from the registry can add a directive to sshd's file.
(tests/integration/test_sshd_config.py runs it on the registry and on a real sshd.)"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import PurePosixPath

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edihub.sftp.sshd_config import (
    RegistryKey,
    ServiceAccount,
    SshdConfigError,
    SshdPlan,
    account_name_problem,
    build_plan,
    parse_public_key,
)

TODAY = dt.date(2026, 11, 2)
ROOT, KEYS = PurePosixPath("/srv/sftp"), PurePosixPath("/etc/edihub-sftp/authorized_keys")


PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _public(private: PrivateKey) -> str:
    return private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def ed25519_key(comment: str = "") -> str:
    line = _public(ed25519.Ed25519PrivateKey.generate())
    return f"{line} {comment}" if comment else line


def plan(
    accounts: list[tuple[str, str]],
    keys: list[RegistryKey],
    service: ServiceAccount | None = None,
) -> SshdPlan:
    return build_plan(accounts, keys, today=TODAY, root=ROOT, keys_dir=KEYS, service=service)


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_ecdsa_keys_of_the_three_nist_curves_are_taken(curve: ec.EllipticCurve) -> None:
    line = _public(ec.generate_private_key(curve))
    assert parse_public_key(line).line(None) == f"restrict {line}"


def test_an_rsa_key_is_written_as_ssh_rsa_whatever_signature_name_it_came_under() -> None:
    line = _public(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    blob = line.split()[1]
    for written in ("ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"):
        parsed = parse_public_key(f"{written} {blob} ops@insurer")
        assert parsed.line(None) == f"restrict ssh-rsa {blob} ops@insurer"


def test_an_expiry_is_written_for_sshd_to_enforce_too() -> None:
    line = ed25519_key("clé de Mme Dupont")
    assert parse_public_key(line).line(dt.date(2027, 3, 1)) == (
        f'restrict,expiry-time="20270301" {line}'
    )


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "key type 'ssh-dss' is not one of"),
        ('command="/bin/sh" ssh-ed25519 AAAA', "key type 'command=\"/bin/sh\"' is not one of"),
        ("ssh-ed25519 not*base64", "the key is not base64"),
        ("ssh-ed25519", "no key after the key type"),
        ("ssh-ed25519  AAAAC3NzaC1lZDI1NTE5", "no key after the key type"),
    ],
)
def test_lines_that_are_not_one_plain_key_are_refused(line: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace("*", r"\*")):
        parse_public_key(line)


def test_a_key_must_be_what_its_line_says_and_whole() -> None:
    line = ed25519_key()
    blob = base64.b64decode(line.split()[1])
    with pytest.raises(ValueError, match="the line says ecdsa-sha2-nistp256 but the key inside"):
        parse_public_key(f"ecdsa-sha2-nistp256 {line.split()[1]}")
    with pytest.raises(ValueError, match="not a valid ssh-ed25519 key"):
        parse_public_key(f"ssh-ed25519 {base64.b64encode(blob[:-3]).decode()}")
    with pytest.raises(ValueError, match="the key is truncated"):
        parse_public_key(f"ssh-ed25519 {base64.b64encode(blob[:8]).decode()}")


def test_short_rsa_keys_are_refused() -> None:
    line = _public(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(ValueError, match="an RSA key of 1024 bits"):
        parse_public_key(line)


@pytest.mark.parametrize("control", ["\n", "\r", "\x00", "\u202e", "\u2028"])
def test_a_comment_cannot_carry_a_second_line_or_hide_text(control: str) -> None:
    with pytest.raises(ValueError, match="the comment holds a control character"):
        parse_public_key(ed25519_key(f"ops{control}PermitRootLogin yes"))


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["P10001", "PH000001", "csm-core", "CSMSAISIE", "mut.001_a"])
def test_registry_ids_are_account_names(name: str) -> None:
    assert account_name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    ["", "ins01\nChrootDirectory none", "ins 01", "*", "ins,root", "!ins", ".hidden", "-o",
     "a" * 33, "ins/01", "%u", "ins01\r", "ïns01"],
)  # fmt: skip
def test_names_sshd_could_read_otherwise_are_not_account_names(name: str) -> None:
    assert account_name_problem(name) is not None


@pytest.mark.parametrize("name", ["root", "sshd", "nobody", "www-data"])
def test_system_accounts_are_never_partners(name: str) -> None:
    assert account_name_problem(name) == "a system account's name, never a partner's"


def test_a_bad_name_is_reported_quoted_and_never_written() -> None:
    evil = "ins01\n    ChrootDirectory none"
    result = plan([("insurer", evil)], [RegistryKey(evil, ed25519_key())])
    assert result.accounts == ()
    assert "ChrootDirectory none" not in "".join(result.files().values())
    assert repr(evil) in result.summary() and "\n    ChrootDirectory" not in result.summary()


# ---------------------------------------------------------------- the plan


def test_a_key_listed_for_two_accounts_opens_neither() -> None:
    shared, own = ed25519_key("shared"), ed25519_key("own")
    result = plan(
        [("insurer", "insa"), ("insurer", "insb")],
        [RegistryKey("insa", shared), RegistryKey("insb", shared), RegistryKey("insb", own)],
    )
    assert [(a.name, a.authorized_keys) for a in result.accounts] == [
        ("insb", (f"restrict {own}",))
    ]
    reasons = {(i.account, i.reason) for i in result.left_out}
    fingerprint = parse_public_key(shared).fingerprint
    for account, other in (("insa", "insb"), ("insb", "insa")):
        assert (
            account,
            f"key {fingerprint} is also listed for {other!r}: a key opens one account only",
        ) in reasons
    assert ("insa", "no valid key: the account is left out") in reasons


def test_one_key_listed_twice_for_an_account_is_written_once() -> None:
    key = ed25519_key()
    result = plan([("pharmacy", "PH1")], [RegistryKey("PH1", key), RegistryKey("PH1", f"{key} x")])
    assert len(result.accounts[0].authorized_keys) == 1


def test_an_insurer_that_also_sends_gets_no_account() -> None:
    result = plan(
        [("insurer", "mut01"), ("employer", "mut01")], [RegistryKey("mut01", ed25519_key())]
    )
    assert result.accounts == ()
    assert [i.reason for i in result.left_out] == [
        "both an insurer's account (read-only) and a sender's (employer): give them two accounts"
    ]


def test_keys_of_unknown_accounts_are_reported() -> None:
    result = plan([("pharmacy", "PH1")], [RegistryKey("PH9", ed25519_key())])
    assert {(i.account, i.reason) for i in result.left_out} == {
        ("PH1", "no valid key: the account is left out"),
        ("PH9", "keys for an account the registry does not know"),
    }


def test_the_service_account_sees_the_tree_and_is_never_a_partner() -> None:
    hub = ServiceAccount("hub", (ed25519_key("hub"),))
    result = plan([("pharmacy", "PH1")], [RegistryKey("PH1", ed25519_key())], service=hub)
    config = result.sshd_config()
    block = config.split("Match User hub\n")[1].split("\n\n")[0]
    assert "    ChrootDirectory /srv/sftp\n" in block
    at_root = build_plan([], [], today=TODAY, root=PurePosixPath("/"), keys_dir=KEYS, service=hub)
    assert "    ChrootDirectory none\n" in at_root.sshd_config()
    with pytest.raises(SshdConfigError, match="also a partner's account"):
        plan([("pharmacy", "hub")], [], service=hub)
    with pytest.raises(SshdConfigError, match="service account 'hub': key type"):
        plan([], [], service=ServiceAccount("hub", ("ssh-dss AAAA",)))


@pytest.mark.parametrize(
    "root", ["srv/sftp", "/srv/my sftp", "/srv/%h", "/srv/../etc", "/srv/sftp\nPermitRootLogin"]
)
def test_paths_sshd_could_read_otherwise_stop_the_generation(root: str) -> None:
    with pytest.raises(SshdConfigError, match="is not usable in sshd_config"):
        build_plan([], [], today=TODAY, root=PurePosixPath(root), keys_dir=KEYS)
