"""Reads for a grant's page: the files a named user may fetch, filtered and ready to page; the named
users' research-ethics training."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet
from django.utils import timezone

from portal.access.models import Grant, RequestUser
from portal.access.selectors import training_lapses_on
from portal.access.services.training import may_renew_training
from portal.accounts.models import User
from portal.datasets.models import DatasetRelease, ReleaseFile
from portal.optout.selectors import excluded_pseudonyms


def grant_files(
    releases: Iterable[DatasetRelease], *, path: str = "", modality: str = "", subject: str = "",
) -> QuerySet[ReleaseFile]:
    """The files of the grant's available ``releases``, less those of subjects who opted out.

    The same rules as a link (``links._check_file``), so that what is listed can be fetched; the
    link re-checks everything when it is issued and again when it is used. One query per dataset
    for the opt-outs, then the page itself.
    """
    by_dataset: dict[int, tuple[object, list[int]]] = {}
    for release in releases:
        if release.status == DatasetRelease.Status.AVAILABLE:
            by_dataset.setdefault(release.dataset_id, (release.dataset, []))[1].append(release.pk)
    if not by_dataset:
        return ReleaseFile.objects.none()
    shown = Q()
    for dataset, release_ids in by_dataset.values():
        shown |= Q(release_id__in=release_ids) & ~Q(subject_pseudonym__in=excluded_pseudonyms(dataset=dataset))  # type: ignore[arg-type]
    files = ReleaseFile.objects.filter(shown)
    if path:
        files = files.filter(path__icontains=path)
    if modality:
        files = files.filter(modality=modality)
    if subject:
        files = files.filter(subject_pseudonym__startswith=subject.lower())
    return files.select_related("release__dataset").order_by("release__dataset_id", "release__version", "path", "id")


@dataclass(frozen=True)
class TrainingRow:
    """A named user of a grant with their research-ethics training, as the grant's page shows it."""

    named: RequestUser
    lapses_on: date | None  # the first day it no longer holds; None: it does not lapse
    lapsed: bool
    may_renew: bool  # may the viewer record a renewed training for this user


def grant_training_rows(grant: Grant, viewer: User | object) -> list[TrainingRow]:
    """Each named user of the grant with their training date and when it lapses, by e-mail (one query)."""
    if grant.access_request_id is None:
        return []
    today = timezone.localdate()
    named_users = (RequestUser.objects.filter(access_request_id=grant.access_request_id, user__grants=grant)
                   .select_related("user").order_by("user__email"))
    live = grant.status in (Grant.Status.ACTIVE, Grant.Status.PAUSED)
    rows = []
    for named in named_users:
        lapses_on = training_lapses_on(named)
        rows.append(TrainingRow(named=named, lapses_on=lapses_on,
                                lapsed=not named.ethics_training or (lapses_on is not None and lapses_on <= today),
                                may_renew=live and may_renew_training(viewer, grant, named.user)))
    return rows
