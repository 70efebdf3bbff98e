"""Reads for a grant's page: the files a named user may fetch, filtered and ready to page."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from portal.datasets.models import DatasetRelease, ReleaseFile


def grant_files(
    releases: Iterable[DatasetRelease], *, path: str = "", modality: str = "", subject: str = "",
) -> QuerySet[ReleaseFile]:
    """The files of the grant's available ``releases``, less those of subjects who opted out.

    The same rules as a link (``links._check_file``), so that what is listed can be fetched; the
    link re-checks everything when it is issued and again when it is used. One query per dataset
    for the opt-outs, then the page itself.
    """
    from portal.optout.selectors import excluded_pseudonyms

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
