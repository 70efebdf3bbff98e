"""Reads for the public catalogue: what anyone may see of published datasets and their releases.

Only published datasets are listed. Every read here runs a fixed number of queries whatever the
number of datasets, releases and files: the newest release is annotated by subquery, releases and
notices are prefetched, and per-release breakdowns are aggregated in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, ExtractYear
from django.http import Http404

from portal.datasets.models import (
    AccessTier,
    Dataset,
    DatasetRelease,
    DatasetStatus,
    ReleaseFile,
)
from portal.societies.models import Society

SEARCH_FIELDS = (
    "title_ja",
    "title_en",
    "description_ja",
    "description_en",
    "body_part",
    "disease_areas",
)


@dataclass(frozen=True)
class CatalogueFilters:
    """What a visitor asked for; empty values mean "any"."""

    q: str = ""
    society: str = ""  # society slug
    modality: str = ""
    granularity: str = ""
    commercial: bool = False

    @property
    def active(self) -> bool:
        return bool(self.q or self.society or self.modality or self.granularity or self.commercial)


def newest_available_releases() -> QuerySet[DatasetRelease]:
    """The newest available (not withdrawn) release of each dataset, whatever the dataset's status."""
    newer = DatasetRelease.objects.filter(
        dataset=OuterRef("dataset"),
        status=DatasetRelease.Status.AVAILABLE,
        version__gt=OuterRef("version"),
    )
    return DatasetRelease.objects.filter(status=DatasetRelease.Status.AVAILABLE).exclude(Exists(newer))


def _newest_release(field: str) -> Subquery:
    releases = DatasetRelease.objects.filter(
        dataset=OuterRef("pk"), status=DatasetRelease.Status.AVAILABLE
    ).order_by("-version")
    return Subquery(releases.values(field)[:1])


def published_datasets() -> QuerySet[Dataset]:
    """Published datasets with their society and their newest available release's version, date and
    counts (the counts the society declared until there is a release)."""
    return _with_newest_release(Dataset.objects.filter(status=DatasetStatus.PUBLISHED)).select_related("society")


def _with_newest_release(datasets: QuerySet[Dataset]) -> QuerySet[Dataset]:
    return datasets.annotate(
        newest_release_version=_newest_release("version"),
        newest_release_date=_newest_release("created_at"),
        listed_case_count=Coalesce(_newest_release("case_count"), F("case_count")),
        listed_image_count=Coalesce(_newest_release("image_count"), F("image_count")),
    )


def catalogue_search(filters: CatalogueFilters) -> QuerySet[Dataset]:
    """The published datasets that match ``filters``, newest publication first."""
    datasets = published_datasets()
    for word in filters.q.split():
        condition = Q()
        for field in SEARCH_FIELDS:
            condition |= Q(**{f"{field}__icontains": word})
        datasets = datasets.filter(condition)
    if filters.society:
        datasets = datasets.filter(society__slug=filters.society)
    if filters.modality:
        datasets = datasets.filter(modality=filters.modality)
    if filters.granularity:
        datasets = datasets.filter(annotation_granularity=filters.granularity)
    if filters.commercial:
        datasets = datasets.filter(access_tier=AccessTier.COMMERCIAL)
    return datasets.order_by("-published_at", "-id")


def catalogue_societies() -> QuerySet[Society]:
    """The societies that have at least one published dataset (for the society filter)."""
    has_published = Dataset.objects.filter(society=OuterRef("pk"), status=DatasetStatus.PUBLISHED)
    return Society.objects.filter(Exists(has_published)).order_by("kind", "id")


def catalogue_dataset(slug: str) -> Dataset:
    """A dataset as the public sees it, with its releases (newest first) and its published notices.

    Raises Http404 for a dataset that does not exist or is a draft. A withdrawn dataset is returned
    (the page says it was withdrawn); callers check ``status``.
    """
    dataset = (
        _with_newest_release(
            Dataset.objects.filter(slug=slug, status__in=[DatasetStatus.PUBLISHED, DatasetStatus.WITHDRAWN])
        )
        .select_related("society", "protocol", "protocol__committee")
        .prefetch_related(
            Prefetch("releases", queryset=DatasetRelease.objects.order_by("-version")),
        )
        .first()
    )
    if dataset is None:
        raise Http404
    return dataset


def catalogue_release(slug: str, version: int) -> DatasetRelease:
    """A release of a published dataset (withdrawn releases included, the page marks them)."""
    release = (
        DatasetRelease.objects.filter(
            dataset__slug=slug, dataset__status=DatasetStatus.PUBLISHED, version=version
        )
        .select_related("dataset", "dataset__society")
        .first()
    )
    if release is None:
        raise Http404
    return release


@dataclass(frozen=True)
class BreakdownRow:
    modality: str
    year: int | None
    images: int
    cases: int


def release_breakdown(release: DatasetRelease) -> list[BreakdownRow]:
    """Images and cases (distinct subjects) of a release by file modality and study year, in SQL.

    Annotation files are not images. A subject with studies in two years counts in each.
    """
    rows = (
        ReleaseFile.objects.filter(release=release, is_annotation=False)
        .annotate(year=ExtractYear("study_date"))
        .values("modality", "year")
        .annotate(
            images=Count("id"),
            cases=Count("subject_pseudonym", distinct=True),
        )
        .order_by("modality", F("year").asc(nulls_last=True))
    )
    return [BreakdownRow(r["modality"], r["year"], r["images"], r["cases"]) for r in rows]
