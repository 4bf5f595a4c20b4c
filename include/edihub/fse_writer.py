"""Writes FSE files: what a doctor's or dentist's software sends. Used by the demo and tests.

Version 1 carries care sheets only; version 2 every message (formats/fse/v2/fse.xsd), one
kind per file: care sheets, work stoppages, exemption and invalidity requests, dental prior
approvals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import ClassVar
from xml.sax.saxutils import escape

NAMESPACES = {1: "urn:mc:caisses-sociales:edi:fse:v1", 2: "urn:mc:caisses-sociales:edi:fse:v2"}
NAMESPACE = NAMESPACES[1]


@dataclass
class Act:
    code: str
    quantity: int
    unit_fee: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_fee * self.quantity


def _acts_xml(acts: list[Act]) -> str:
    return "".join(
        f"<act><code>{escape(a.code)}</code><quantity>{a.quantity}</quantity>"
        f"<unitFee>{a.unit_fee:.2f}</unitFee><amount>{a.amount:.2f}</amount></act>"
        for a in acts
    )


def _element(name: str, value: object) -> str:
    """``<name>value</name>`` in the XSD's lexical form; nothing for None; acts for a list."""
    if value is None:
        return ""
    if isinstance(value, list):
        return _acts_xml(value)
    if isinstance(value, Decimal):
        text = f"{value:.2f}"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        text = escape(str(value))
    return f"<{name}>{text}</{name}>"


@dataclass
class Message:
    """What every message starts with: its id, who made it, for whom, with which card code.
    Each kind's own fields follow, by keyword."""

    ROOT: ClassVar[str]
    ELEMENT: ClassVar[str]
    ID: ClassVar[str]  # the XML element of the message's id
    ELEMENTS: ClassVar[tuple[tuple[str, str], ...]]  # after the start: (element, attribute)

    id: str
    practitioner_id: str
    registration_number: str
    beneficiary_rank: int
    fse_code: str

    def _start(self) -> str:
        return (
            f"{_element(self.ID, self.id)}{_element('practitionerId', self.practitioner_id)}"
            f"<insured>{_element('registrationNumber', self.registration_number)}"
            f"{_element('beneficiaryRank', self.beneficiary_rank)}</insured>"
            f"{_element('fseCode', self.fse_code)}"
        )

    def body(self) -> str:
        """The elements after the common start, in the XSD's order."""
        return "".join(_element(tag, getattr(self, attr)) for tag, attr in self.ELEMENTS)

    @property
    def amount(self) -> Decimal | None:
        """What the message adds to the trailer's total; None for messages without amounts."""
        return None

    def xml(self) -> str:
        return f"  <{self.ELEMENT}>{self._start()}{self.body()}</{self.ELEMENT}>\n"


@dataclass(kw_only=True)
class CareSheet(Message):
    ROOT = "fseFile"
    ELEMENT = "careSheet"
    ID = "sheetId"
    ELEMENTS = (
        ("careDate", "care_date"),
        ("priorApprovalId", "prior_approval_id"),
        ("act", "acts"),
        ("total", "declared_total"),
    )

    care_date: dt.date
    acts: list[Act] = field(default_factory=list)
    total: Decimal | None = None  # None: the sum of the acts, as honest software writes it
    prior_approval_id: str | None = None  # version 2 only: dental acts under prior approval

    @property
    def declared_total(self) -> Decimal:
        return (
            self.total
            if self.total is not None
            else sum((a.amount for a in self.acts), Decimal("0"))
        )

    @property
    def amount(self) -> Decimal:
        return self.declared_total


@dataclass(kw_only=True)
class WorkStoppage(Message):
    ROOT = "workStoppageFile"
    ELEMENT = "workStoppage"
    ID = "prescriptionId"
    ELEMENTS = (
        ("prescribedOn", "prescribed_on"),
        ("kind", "kind"),
        ("startDate", "start_date"),
        ("endDate", "end_date"),
        ("reasonCategory", "reason_category"),
        ("outingsAllowed", "outings_allowed"),
    )

    prescribed_on: dt.date
    kind: str = "initial"  # initial | extension
    start_date: dt.date
    end_date: dt.date
    reason_category: str = "illness"
    outings_allowed: bool = True


@dataclass(kw_only=True)
class ExemptionRequest(Message):
    ROOT = "exemptionRequestFile"
    ELEMENT = "exemptionRequest"
    ID = "requestId"
    ELEMENTS = (
        ("requestedOn", "requested_on"),
        ("ground", "ground"),
        ("conditionCode", "condition_code"),
        ("exemptFrom", "exempt_from"),
        ("exemptUntil", "exempt_until"),
    )

    requested_on: dt.date
    ground: str = "long_term_condition"
    condition_code: str | None = None
    exempt_from: dt.date
    exempt_until: dt.date | None = None


@dataclass(kw_only=True)
class InvalidityRequest(Message):
    ROOT = "invalidityRequestFile"
    ELEMENT = "invalidityRequest"
    ID = "requestId"
    ELEMENTS = (
        ("requestedOn", "requested_on"),
        ("stoppedWorkSince", "stopped_work_since"),
        ("incapacityRate", "incapacity_rate"),
        ("conditionCode", "condition_code"),
    )

    requested_on: dt.date
    stopped_work_since: dt.date
    incapacity_rate: int
    condition_code: str


@dataclass(kw_only=True)
class PriorApproval(Message):
    ROOT = "priorApprovalFile"
    ELEMENT = "priorApproval"
    ID = "requestId"
    ELEMENTS = (
        ("requestedOn", "requested_on"),
        ("status", "status"),
        ("plannedStart", "planned_start"),
        ("act", "acts"),
        ("estimatedTotal", "amount"),
    )

    requested_on: dt.date
    status: str = "submitted"  # submitted | withdrawn
    planned_start: dt.date
    acts: list[Act] = field(default_factory=list)
    estimated_total: Decimal | None = None  # None: the sum of the acts

    @property
    def amount(self) -> Decimal:
        if self.estimated_total is not None:
            return self.estimated_total
        return sum((a.amount for a in self.acts), Decimal("0"))


def write_fse_file(
    path: Path,
    sender: str,
    batch_number: str,
    messages: Iterable[Message],
    created_at: dt.datetime,
    version: int = 1,
    root: str = CareSheet.ROOT,
) -> Path:
    """Stream the file out message by message (so generators of millions stay flat).

    All messages are of one kind, whose ``root`` element the file takes (version 1: care
    sheets only). The trailer counts them and, for kinds with amounts, adds them up.
    """
    count, total, has_amounts = 0, Decimal("0"), root in (CareSheet.ROOT, PriorApproval.ROOT)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NAMESPACES[version]}" '
            f'formatVersion="{version}">\n  <header><sender>{escape(sender)}</sender>'
            f"<batchNumber>{escape(batch_number)}</batchNumber>"
            f"<createdAt>{created_at.replace(microsecond=0).isoformat()}</createdAt>"
            f"<software>edihub demo</software></header>\n"
        )
        for message in messages:
            if root != message.ROOT:
                raise ValueError(f"a {message.ELEMENT} does not belong in a {root}")
            if version == 1 and isinstance(message, CareSheet) and message.prior_approval_id:
                raise ValueError("version 1 care sheets cannot name a prior approval")
            out.write(message.xml())
            count += 1
            total += message.amount or 0
        counted = "sheetCount" if version == 1 else "recordCount"
        amounts = f"<totalAmount>{total:.2f}</totalAmount>" if has_amounts else ""
        out.write(f"  <trailer><{counted}>{count}</{counted}>{amounts}</trailer>\n</{root}>\n")
    return path
