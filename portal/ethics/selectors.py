"""Reads about protocols: who may see what, and whether data may flow under a protocol now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import OrganizationMembership, User
from portal.ethics.models import (
    CommitteeMembership,
    Protocol,
    ProtocolStatus,
    ProtocolVersion,
    ReviewAssignment,
)


@dataclass(frozen=True)
class DataFlow:
    allowed: bool
    reason: str


# States in which an earlier permitted version may still carry data, if the pending change is minor.
_PENDING_STATES = {
    ProtocolStatus.AMENDMENT_REVIEW,
    ProtocolStatus.UNDER_REVIEW,
    ProtocolStatus.SUBMITTED,
    ProtocolStatus.RETURNED,
    ProtocolStatus.CONDITIONS,
    ProtocolStatus.CONDITIONS_ANSWERED,
    ProtocolStatus.DEFERRED,
    ProtocolStatus.APPROVED,
}


def protocol_data_flow(protocol: Protocol, *, today: date | None = None) -> DataFlow:
    """May data be collected or released under this protocol now?

    Datasets and access grants that rest on a protocol ask this before every release; the answer
    turns to no the moment the protocol is suspended, its approval lapses, or a major amendment is
    pending, and back to yes when it is in good standing again.
    """
    today = today or timezone.localdate()
    prefetched = "versions" in getattr(protocol, "_prefetched_objects_cache", {})
    # Lists prefetch versions with their head decisions (one query for the page, not one a row).
    versions = sorted(
        protocol.versions.all() if prefetched else protocol.versions.select_related("head_decision"),
        key=lambda v: v.number,
    )
    permitted = [v for v in versions if getattr(v, "head_decision", None) is not None and v.head_decision.permitted]
    if not permitted:
        return DataFlow(False, _("The protocol has not been approved and permitted."))
    if protocol.approved_until is not None and protocol.approved_until < today:
        return DataFlow(False, _("The approval period ended on %(date)s.") % {"date": protocol.approved_until})
    if protocol.status == ProtocolStatus.ACTIVE:
        return DataFlow(True, _("Approved and permitted."))
    if protocol.status in _PENDING_STATES:
        if versions[-1].kind == ProtocolVersion.Kind.MINOR_AMENDMENT:
            return DataFlow(True, _("Approved and permitted; a minor amendment is pending."))
        return DataFlow(False, _("A major amendment is awaiting approval."))
    return DataFlow(False, _("The protocol is “%(status)s”.") % {"status": ProtocolStatus(protocol.status).label})


def protocols_visible_to(user: User) -> QuerySet[Protocol]:
    """Applicants see their own protocols; committee members their committee's; heads their institution's."""
    if not user.is_authenticated:
        return Protocol.objects.none()
    committees = CommitteeMembership.objects.filter(user=user, active=True).values("committee_id")
    institutions = OrganizationMembership.objects.filter(
        user=user, role=OrganizationMembership.Role.HEAD
    ).values("organization_id")
    return Protocol.objects.filter(
        Q(principal_investigator=user)
        | Q(committee_id__in=committees, number__isnull=False)
        | Q(institution_id__in=institutions, number__isnull=False)
    ).distinct()


def review_inbox(user: User) -> QuerySet[ReviewAssignment]:
    """The reviews assigned to a member and still open."""
    return (
        ReviewAssignment.objects.filter(
            member__user=user,
            member__active=True,
            review__decision__isnull=True,
            review__version__protocol__status__in=[ProtocolStatus.UNDER_REVIEW, ProtocolStatus.AMENDMENT_REVIEW],
        )
        .select_related("review__version__protocol", "member")
        .order_by("review__opened_at")
    )
