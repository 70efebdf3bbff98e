"""Who is who for a protocol, and the helpers every ethics service shares.

A ``_require_*`` helper raises ``EthicsRefused`` unless the user holds the role.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils.translation import gettext as _

from portal.accounts.models import OrganizationMembership, User
from portal.audit.services import audit_record
from portal.ethics.models import (
    CommitteeMembership,
    EthicsCommittee,
    Protocol,
    ProtocolStatus,
    ProtocolVersion,
)
from portal.ethics.workflow import EthicsRefused

# --- Who is who ----------------------------------------------------------------------------------


def _membership(committee: EthicsCommittee, user: User) -> CommitteeMembership | None:
    return CommitteeMembership.objects.filter(committee=committee, user=user, active=True).first()


def _require_secretariat(committee: EthicsCommittee, user: User) -> CommitteeMembership:
    membership = _membership(committee, user)
    if membership is None or membership.role not in {
        CommitteeMembership.Role.SECRETARIAT,
        CommitteeMembership.Role.CHAIR,
    }:
        raise EthicsRefused(_("Only the committee's secretariat or chair can do this."))
    return membership


def _require_chair(committee: EthicsCommittee, user: User) -> CommitteeMembership:
    membership = _membership(committee, user)
    if membership is None or membership.role != CommitteeMembership.Role.CHAIR:
        raise EthicsRefused(_("Only the committee's chair can do this."))
    return membership


def _require_applicant(protocol: Protocol, user: User) -> None:
    if protocol.principal_investigator_id != user.pk:
        raise EthicsRefused(_("Only the protocol's principal investigator can do this."))


def _require_head(protocol: Protocol, user: User) -> None:
    if not OrganizationMembership.objects.filter(
        user=user, organization=protocol.institution, role=OrganizationMembership.Role.HEAD
    ).exists():
        raise EthicsRefused(_("Only the head of the research institution can do this."))


def one_year_after(day: date) -> date:
    """The same date next year; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def _locked(protocol: Protocol) -> Protocol:
    return Protocol.objects.select_for_update().get(pk=protocol.pk)


# A draft version can be edited only while the protocol is in one of these states (an amendment
# is drafted while the protocol stays active).
_EDITABLE_STATES = {ProtocolStatus.DRAFT, ProtocolStatus.RETURNED, ProtocolStatus.DEFERRED, ProtocolStatus.ACTIVE}


def _editable_version(protocol: Protocol) -> ProtocolVersion:
    version = latest_version(protocol)
    if version.is_frozen or protocol.status not in _EDITABLE_STATES:
        raise EthicsRefused(_("This version was submitted and can no longer change; start an amendment."))
    return version


def latest_version(protocol: Protocol) -> ProtocolVersion:
    return protocol.versions.order_by("-number").first()  # type: ignore[return-value]


def _audit(action: str, by: User, protocol: Protocol, **details: Any) -> None:
    audit_record(action=f"ethics.{action}", actor=by, target=protocol, details=details)
