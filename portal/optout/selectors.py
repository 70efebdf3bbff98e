"""Reads about opt-out notices and requests.

Opt-out requests are platform-wide: the pseudonym is society-common, so a request recorded at one
society excludes the subject from every society's datasets in the request's scope (its protocols,
or all research, and its modalities, or all).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import ExtractYear
from django.urls import NoReverseMatch, reverse

from portal.accounts.models import User
from portal.accounts.roles import Role, has_role
from portal.datasets.models import Dataset, DatasetRelease
from portal.optout.models import (
    DeletionConfirmation,
    OptOutNotice,
    OptOutNoticeVersion,
    OptOutRequest,
)
from portal.societies.models import Society, SocietyMembership

# --- Who may manage what --------------------------------------------------------------------------


def _society_ids(user: User | object, roles: Iterable[str]) -> QuerySet[SocietyMembership]:
    return SocietyMembership.objects.filter(user_id=getattr(user, "pk", None), role__in=list(roles)).values(
        "society_id"
    )


def societies_for_notices(user: User | object) -> QuerySet[Society]:
    """Societies whose notices ``user`` drafts and publishes: their admins, and the operator."""
    if not getattr(user, "is_authenticated", False):
        return Society.objects.none()
    if has_role(user, Role.OPERATOR):
        return Society.objects.order_by("kind", "id")
    return Society.objects.filter(id__in=_society_ids(user, ["admin"])).order_by("kind", "id")


def societies_for_requests(user: User | object) -> QuerySet[Society]:
    """Societies whose opt-out requests ``user`` records and handles: admins, stewards, the operator."""
    if not getattr(user, "is_authenticated", False):
        return Society.objects.none()
    if has_role(user, Role.OPERATOR):
        return Society.objects.order_by("kind", "id")
    return Society.objects.filter(id__in=_society_ids(user, ["admin", "steward"])).order_by("kind", "id")


def may_manage_notices(user: User | object, society: Society) -> bool:
    return has_role(user, Role.OPERATOR) or SocietyMembership.objects.filter(
        user_id=getattr(user, "pk", None), society=society, role="admin"
    ).exists()


def may_handle_requests(user: User | object, society: Society) -> bool:
    return has_role(user, Role.OPERATOR) or SocietyMembership.objects.filter(
        user_id=getattr(user, "pk", None), society=society, role__in=["admin", "steward"]
    ).exists()


def notices_managed_by(user: User | object) -> QuerySet[OptOutNotice]:
    return (
        OptOutNotice.objects.filter(society__in=societies_for_notices(user))
        .select_related("society", "protocol", "current_version")
        .annotate(
            draft_exists=Exists(OptOutNoticeVersion.objects.filter(notice=OuterRef("pk"), status="draft")),
            # A notice not yet published is told apart by its draft's title.
            draft_title=Subquery(
                OptOutNoticeVersion.objects.filter(notice=OuterRef("pk"), status="draft").values("title_ja")[:1]
            ),
        )
        .order_by("society_id", "-id")
    )


def requests_handled_by(user: User | object) -> QuerySet[OptOutRequest]:
    return (
        OptOutRequest.objects.filter(society__in=societies_for_requests(user))
        .select_related("society", "institution")
        .annotate(
            pending_count=Count("deletions", filter=Q(deletions__status=DeletionConfirmation.Status.PENDING)),
            confirmed_count=Count(
                "deletions", filter=Q(deletions__status=DeletionConfirmation.Status.CONFIRMED)
            ),
            deletion_count=Count("deletions"),
        )
        .order_by("-received_at", "-id")
    )


# --- Scope of a request, and what it reaches ------------------------------------------------------


def excluded_pseudonyms(*, dataset: Dataset) -> set[str]:
    """Pseudonyms of every subject who refused use of this dataset, whatever the request's status.

    A request covers the dataset when it names all research or the dataset's protocol, and no
    modality or the dataset's modality. Requests are platform-wide: one recorded at any society
    counts here. ``release_build`` leaves these subjects out of every new release.
    """
    # JSON containment is not available on every backend (SQLite): filter modalities in Python.
    rows = (
        OptOutRequest.objects.filter(Q(all_protocols=True) | Q(protocols=dataset.protocol_id))
        .values_list("subject_pseudonym", "modalities")
    )
    return {pseudonym for pseudonym, modalities in rows if not modalities or dataset.modality in modalities}


def datasets_in_scope(request: OptOutRequest) -> QuerySet[Dataset]:
    """Every dataset, of any society, that the request's scope covers."""
    datasets = Dataset.objects.all()
    if not request.all_protocols:
        datasets = datasets.filter(protocol__in=request.protocols.all())
    if request.modalities:
        datasets = datasets.filter(modality__in=request.modalities)
    return datasets


def releases_holding(*, pseudonym: str, datasets: QuerySet[Dataset]) -> QuerySet[DatasetRelease]:
    """Available releases of these datasets with files of the subject, with the number of such files."""
    return (
        DatasetRelease.objects.filter(
            status=DatasetRelease.Status.AVAILABLE, dataset__in=datasets, files__subject_pseudonym=pseudonym
        )
        .select_related("dataset__society")
        .annotate(subject_files=Count("files"))
        .order_by("dataset_id", "version")
    )


def affected_releases_of(request: OptOutRequest) -> QuerySet[DatasetRelease]:
    """The releases recorded as holding the subject, with the subject's file count in each."""
    return (
        request.affected_releases.select_related("dataset__society")
        .annotate(subject_files=Count("files", filter=Q(files__subject_pseudonym=request.subject_pseudonym)))
        .order_by("dataset_id", "version")
    )


def pending_confirmations_for(user: User | object) -> QuerySet[DeletionConfirmation]:
    """The deletions a data holder has still to confirm."""
    return (
        DeletionConfirmation.objects.filter(
            holder_id=getattr(user, "pk", None), status=DeletionConfirmation.Status.PENDING
        )
        .select_related("request", "release__dataset__society", "grant")
        .order_by("notified_at", "id")
    )


def confirmations_of(user: User | object) -> QuerySet[DeletionConfirmation]:
    return (
        DeletionConfirmation.objects.filter(holder_id=getattr(user, "pk", None))
        .select_related("request", "release__dataset__society", "grant")
        .order_by("-notified_at", "-id")
    )


# --- Notices --------------------------------------------------------------------------------------


def published_notices() -> QuerySet[OptOutNotice]:
    return (
        OptOutNotice.objects.filter(status=OptOutNotice.Status.PUBLISHED, current_version__isnull=False)
        .select_related("society", "protocol", "current_version")
        .order_by("society__kind", "society_id", "-id")
    )


def published_notices_for(dataset: Dataset) -> QuerySet[OptOutNotice]:
    """The published notices that cover ``dataset`` (with their current version)."""
    return published_notices().filter(datasets=dataset)


def dataset_has_published_notice(dataset: Dataset) -> bool:
    return published_notices_for(dataset).exists()


def notice_public_url(notice: OptOutNotice) -> str:
    """The public page of an opt-out notice (``optout_public:detail``)."""
    try:
        return reverse("optout_public:detail", args=[notice.reference])
    except NoReverseMatch:
        # The public notice pages are mounted at /optout/.
        return f"/optout/{notice.reference}/"


def dataset_public_notices(*, dataset: Dataset) -> list[tuple[OptOutNotice, str]]:
    """The published notices covering ``dataset``, newest first, each with its public page: what the
    dataset's catalogue page and API show (the ``dataset_public_notices`` hook)."""
    notices = (
        OptOutNotice.objects.filter(status=OptOutNotice.Status.PUBLISHED, datasets=dataset)
        .select_related("current_version")
        .order_by("-first_published_at", "-id")
    )
    return [(notice, notice_public_url(notice)) for notice in notices]


def public_notice(reference: str) -> OptOutNotice | None:
    """A notice the public may read: published now, or published once and since withdrawn."""
    return (
        OptOutNotice.objects.filter(reference=reference, first_published_at__isnull=False)
        .select_related("society", "protocol", "current_version")
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=OptOutNoticeVersion.objects.filter(published_at__isnull=False).order_by("-number"),
                to_attr="published_versions",
            ),
            Prefetch("datasets", queryset=Dataset.objects.order_by("id")),
        )
        .first()
    )


def datasets_left_without_notice(notice: OptOutNotice) -> list[Dataset]:
    """Published datasets this notice covers that no other published notice covers."""
    others = OptOutNotice.objects.filter(
        status=OptOutNotice.Status.PUBLISHED, datasets=OuterRef("pk")
    ).exclude(pk=notice.pk)
    return list(
        notice.datasets.filter(status="published").annotate(covered=Exists(others)).filter(covered=False).order_by("id")
    )


# --- Counts for the public (never identities) -----------------------------------------------------


def request_counts_by_society() -> dict[int, int]:
    return dict(
        OptOutRequest.objects.values_list("society_id").annotate(n=Count("id")).order_by()  # type: ignore[arg-type]
    )


def request_statistics() -> list[dict[str, object]]:
    """Requests received, by society and year of receipt: counts only."""
    rows = (
        OptOutRequest.objects.annotate(year=ExtractYear("received_at"))
        .values("society__slug", "society__name_ja", "society__name_en", "year")
        .annotate(
            requests=Count("id"),
            closed=Count("id", filter=Q(status=OptOutRequest.Status.CLOSED)),
        )
        .order_by("society__slug", "year")
    )
    return [
        {
            "society": row["society__slug"],
            "society_name_ja": row["society__name_ja"],
            "society_name_en": row["society__name_en"],
            "year": row["year"],
            "requests": row["requests"],
            "closed": row["closed"],
        }
        for row in rows
    ]
