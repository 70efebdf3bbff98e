"""Reads about protocols: who may see what, and whether data may flow under a protocol now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import OrganizationMembership, User
from portal.ethics.models import (
    CommitteeMembership,
    PeriodicReport,
    Protocol,
    ProtocolItem,
    ProtocolStatus,
    ProtocolVersion,
    Review,
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


# --- The secretariat's queue ---------------------------------------------------------------------


def secretariat_committee_ids(user: User) -> QuerySet[CommitteeMembership]:
    """The committees whose secretariat work ``user`` may do (the secretariat, or the chair)."""
    return CommitteeMembership.objects.filter(
        user=user, active=True,
        role__in=[CommitteeMembership.Role.SECRETARIAT, CommitteeMembership.Role.CHAIR],
    ).values("committee_id")


def open_full_board_reviews(user: User) -> QuerySet[Review]:
    """Full-board reviews of the user's committees still awaiting the committee's opinion.

    Prefetched as ``services.quorum_problems`` reads them, so a page of them costs a fixed number of
    queries; the page keeps those whose attendance is not recorded or does not make the quorum.
    """
    return (
        Review.objects.filter(
            version__protocol__committee_id__in=secretariat_committee_ids(user),
            mode=Review.Mode.FULL_BOARD,
            decision__isnull=True,
            version__protocol__status__in=[ProtocolStatus.UNDER_REVIEW, ProtocolStatus.AMENDMENT_REVIEW],
        )
        .select_related("version__protocol__principal_investigator", "version__protocol__institution")
        .annotate(title=Subquery(
            ProtocolItem.objects.filter(version=OuterRef("version"), key="title").values("body")[:1]
        ))
        .prefetch_related("assignments", "attendance__member")
        .order_by("meeting_at", "opened_at", "id")
    )


def conditions_answered_protocols(user: User) -> QuerySet[Protocol]:
    """Protocols whose applicant answered the conditions: the chair judges the answer."""
    return (
        Protocol.objects.filter(
            committee_id__in=secretariat_committee_ids(user), status=ProtocolStatus.CONDITIONS_ANSWERED
        )
        .select_related("principal_investigator", "institution")
        .annotate(title=Subquery(
            ProtocolItem.objects.filter(version__protocol=OuterRef("pk"), key="title")
            .order_by("-version__number").values("body")[:1]
        ))
        .order_by("updated_at", "id")
    )


def periodic_reports_to_acknowledge(user: User) -> QuerySet[PeriodicReport]:
    return (
        PeriodicReport.objects.filter(
            protocol__committee_id__in=secretariat_committee_ids(user), acknowledged_at__isnull=True
        )
        .select_related("protocol")
        .order_by("submitted_at", "id")
    )
