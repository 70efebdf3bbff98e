"""Reads for provision records, usage reports and the society's overview of its grants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from portal.access.models import Download, Grant, ProvisionRecord, UsageReport
from portal.accounts.models import OrganizationMembership, User
from portal.accounts.roles import Role, has_role
from portal.societies.models import Society, SocietyMembership

MANAGER_ROLES = ("admin", "steward")
LATEST_DOWNLOADS = 20


def societies_overseen_by(user: User | object) -> QuerySet[Society]:
    """Societies whose provision records, reports and grants ``user`` oversees: admins and stewards."""
    if not getattr(user, "is_authenticated", False):
        return Society.objects.none()
    if has_role(user, Role.OPERATOR):
        return Society.objects.order_by("kind", "id")
    return Society.objects.filter(
        memberships__user_id=user.pk, memberships__role__in=MANAGER_ROLES  # type: ignore[attr-defined]
    ).distinct().order_by("kind", "id")


def is_society_member(user: User | object, society: Society) -> bool:
    return SocietyMembership.objects.filter(user_id=getattr(user, "pk", None), society=society).exists()


# --- Provision records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvisionFilters:
    society: int | None = None
    q: str = ""
    legal_basis: str = ""
    provided_from: date | None = None
    provided_to: date | None = None


def provision_records_for(user: User | object, filters: ProvisionFilters | None = None) -> QuerySet[ProvisionRecord]:
    filters = filters or ProvisionFilters()
    records = ProvisionRecord.objects.filter(grant__society__in=societies_overseen_by(user)).select_related(
        "grant__society"
    )
    if filters.society:
        records = records.filter(grant__society_id=filters.society)
    if filters.q:
        q = filters.q.strip()
        records = records.filter(
            Q(grant__reference__icontains=q) | Q(recipient_name__icontains=q) | Q(study_title__icontains=q)
            | Q(study_reference__icontains=q)
        )
    if filters.legal_basis:
        records = records.filter(legal_basis=filters.legal_basis)
    if filters.provided_from:
        records = records.filter(provided_until__gte=filters.provided_from)
    if filters.provided_to:
        records = records.filter(provided_from__lte=filters.provided_to)
    return records.order_by("-provided_from", "-id")


# --- Usage reports --------------------------------------------------------------------------------


def _with_grant(reports: QuerySet[UsageReport]) -> QuerySet[UsageReport]:
    return reports.select_related("grant__access_request", "grant__society", "submitted_by")


def _confirmer_grants(user: User | object) -> Q:
    """Grants whose reports ``user`` confirms: as principal investigator or head of the institution."""
    return Q(access_request__principal_investigator=user) | Q(
        access_request__organization__memberships__user=user,
        access_request__organization__memberships__role=OrganizationMembership.Role.HEAD,
    )


def reports_of_applicant(user: User | object) -> QuerySet[UsageReport]:
    """Reports owed by the grants ``user`` is named on, applied for, or confirms."""
    if not getattr(user, "is_authenticated", False):
        return UsageReport.objects.none()
    grant_ids = Grant.objects.filter(
        Q(users=user) | Q(access_request__applicant=user) | _confirmer_grants(user)
    ).values("pk")
    return _with_grant(UsageReport.objects.filter(grant_id__in=grant_ids)).order_by("status", "due_on", "id")


def reports_to_review(user: User | object) -> QuerySet[UsageReport]:
    """Submitted reports of the societies ``user`` oversees, oldest first."""
    return _with_grant(
        UsageReport.objects.filter(status__in=[UsageReport.Status.SUBMITTED, UsageReport.Status.CONFIRMED],
                                   grant__society__in=societies_overseen_by(user))
    ).order_by("submitted_at", "id")


def report_visible_to(user: User | object, pk: int) -> UsageReport | None:
    """The report, if ``user`` is on its grant, applied for it, confirms it, or oversees its society."""
    if not getattr(user, "is_authenticated", False):
        return None
    grant_ids = Grant.objects.filter(
        Q(users=user) | Q(access_request__applicant=user) | _confirmer_grants(user)
        | Q(society__in=societies_overseen_by(user))
    ).values("pk")
    return _with_grant(UsageReport.objects.filter(pk=pk, grant_id__in=grant_ids)).first()


def days_overdue(report: UsageReport, today: date | None = None) -> int:
    today = today or timezone.localdate()
    if report.status != UsageReport.Status.DUE:
        return 0
    return max((today - report.due_on).days, 0)


# --- The society's overview -----------------------------------------------------------------------


def society_overview(society: Society, today: date | None = None) -> dict[str, Any]:
    """Grants in force (active, paused, restricted) with users, releases and overdue reports; latest downloads."""
    today = today or timezone.localdate()
    overdue = UsageReport.objects.filter(status=UsageReport.Status.DUE, due_on__lt=today).order_by("due_on")
    grants = list(
        Grant.objects.filter(society=society, status__in=[Grant.Status.ACTIVE, Grant.Status.PAUSED])
        .select_related("access_request__organization")
        .prefetch_related(
            Prefetch("users", queryset=User.objects.order_by("email")),
            "releases__dataset",
            Prefetch("usage_reports", queryset=overdue, to_attr="overdue_reports"),
        )
        .annotate(download_count=Count("downloads", distinct=True))
        .order_by("expires_at", "id")
    )
    for grant in grants:
        for report in grant.overdue_reports:  # type: ignore[attr-defined]
            report.days_overdue = (today - report.due_on).days  # type: ignore[attr-defined]
    downloads = list(
        Download.objects.filter(grant__society=society)
        .select_related("grant", "user", "file__release__dataset")
        .order_by("-started_at", "-id")[:LATEST_DOWNLOADS]
    )
    return {
        "grants": grants,
        "downloads": downloads,
        "counts": {
            "active": sum(1 for g in grants if g.status == Grant.Status.ACTIVE and not g.restricted),
            "paused": sum(1 for g in grants if g.status == Grant.Status.PAUSED),
            "restricted": sum(1 for g in grants if g.restricted),
            "overdue": sum(len(g.overdue_reports) for g in grants),  # type: ignore[attr-defined]
        },
    }
