"""Where files live on the SFTP server.

The hub's service account sees the whole tree; each partner account is chrooted to its own
``partners/<partner_id>`` folder and so sees only ``/inbound/<feed>/`` and ``/outbound/acks/``.
An insurer's account (read-only) sees only ``/outbound/statements/``, its statement exports.
The archive sits outside every partner's chroot: what a partner cannot reach cannot leak
through a partner's credentials.
"""

from __future__ import annotations

import posixpath

PARTNERS = "partners"
ARCHIVE = "archive"


def partner_root(partner_id: str) -> str:
    return posixpath.join("/", PARTNERS, partner_id)


def inbound_dir(partner_id: str, feed: str) -> str:
    return posixpath.join(partner_root(partner_id), "inbound", feed)


def acks_dir(partner_id: str) -> str:
    return posixpath.join(partner_root(partner_id), "outbound", "acks")


def payslips_dir(partner_id: str, period: str, employer: str | None = None) -> str:
    """Household employers' payslips and contribution summary of a period (YYYY-MM).

    ``employer``: a subfolder for that employer, when the partner sends for employers other
    than itself (the funds' paper-keying account, whose mail room prints and posts them).
    """
    folder = posixpath.join(partner_root(partner_id), "outbound", "payroll", period)
    return posixpath.join(folder, employer) if employer else folder


def statements_dir(partner_id: str) -> str:
    """An insurer's statement exports and their manifests, which only its account can read."""
    return posixpath.join(partner_root(partner_id), "outbound", "statements")


def print_dir(partner_id: str, day: str) -> str:
    """The mail room's print batch of a day (``day``: YYYY-MM-DD): the paper statements in one
    PDF and its index, in the mail-room account (the funds' paper-keying account)."""
    return posixpath.join(partner_root(partner_id), "outbound", "print", day)


def partner_folders() -> tuple[str, ...]:
    """The folders of every partner account, relative to its root: an inbox per feed, and
    what the hub returns. The hub writes only into folders that already exist, so that an
    OpenSSH chroot (whose upper levels are root's) never needs the hub to create them."""
    from edihub.feeds import FEEDS

    return (
        *(f"inbound/{feed}" for feed in FEEDS),
        "outbound/acks",
        "outbound/payroll",
        "outbound/print",  # the mail room's daily print batches (paper statements)
    )


def insurer_folders() -> tuple[str, ...]:
    """The folders of an insurer's account, relative to its root: insurers send nothing, they
    only fetch the statement exports the hub puts there (no inbox, so none to misuse)."""
    return ("outbound/statements",)


def archive_dir(partner_id: str, feed: str, day: str) -> str:
    """``day`` is an ISO date (YYYY-MM-DD): one folder per partner, feed and day."""
    return posixpath.join("/", ARCHIVE, partner_id, feed, day)


# What a partner account sees of the same folders, from inside its chroot.
PARTNER_VIEW_INBOUND = "/inbound/{feed}"
PARTNER_VIEW_ACKS = "/outbound/acks"
PARTNER_VIEW_STATEMENTS = "/outbound/statements"
