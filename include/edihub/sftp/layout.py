"""Where files live on the SFTP server.

The hub's service account sees the whole tree; each partner account is chrooted to its own
``partners/<partner_id>`` folder and so sees only ``/inbound/<feed>/`` and ``/outbound/acks/``.
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


def archive_dir(partner_id: str, feed: str, day: str) -> str:
    """``day`` is an ISO date (YYYY-MM-DD): one folder per partner, feed and day."""
    return posixpath.join("/", ARCHIVE, partner_id, feed, day)


# What a partner account sees of the same folders, from inside its chroot.
PARTNER_VIEW_INBOUND = "/inbound/{feed}"
PARTNER_VIEW_ACKS = "/outbound/acks"
