"""Public statistics: images and cases by society and by modality, by year of study date.

What counts: the newest available (not withdrawn) release of each published dataset, never the sum
of a dataset's versions. An image is a release file that is not an annotation; a case is a distinct
pseudonymous subject, so a subject with studies in two years counts in each year but once in the
total. Files without a study date fall in an "unknown" column. Everything is aggregated in SQL in
five queries whatever the number of datasets and files.

Charts are stacked-bar SVGs laid out here, drawn by ``templates/datasets/_chart.html`` with
presentation attributes only (no inline styles, no script), each followed by its data table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db.models import Count, QuerySet
from django.db.models.functions import ExtractYear
from django.utils.functional import Promise
from django.utils.translation import get_language, override
from django.utils.translation import gettext_lazy as _

from portal.core.vocabulary import Modality
from portal.datasets.catalogue_selectors import newest_available_releases
from portal.datasets.models import DatasetStatus, ReleaseFile

# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


@dataclass
class YearCount:
    images: int = 0
    cases: int = 0


@dataclass
class SeriesStats:
    """One society or one modality: its counts per study year (None: unknown) and in total."""

    key: str
    label_ja: str
    label_en: str
    years: dict[int | None, YearCount] = field(default_factory=dict)
    images: int = 0
    cases: int = 0

    @property
    def label(self) -> str:
        return self.label_en if get_language() == "en" and self.label_en else self.label_ja


@dataclass
class Statistics:
    by_society: list[SeriesStats]
    by_modality: list[SeriesStats]
    years: list[int | None]
    images: int
    cases: int


def _counted_files() -> QuerySet[ReleaseFile]:
    return ReleaseFile.objects.filter(
        release__in=newest_available_releases().filter(dataset__status=DatasetStatus.PUBLISHED),
        is_annotation=False,
    )


def _year_span(years: set[int | None]) -> list[int | None]:
    known = [year for year in years if year is not None]
    span: list[int | None] = list(range(min(known), max(known) + 1)) if known else []
    return [*span, None] if None in years else span


def catalogue_statistics() -> Statistics:
    files = _counted_files()
    society_fields = (
        "release__dataset__society__slug",
        "release__dataset__society__name_ja",
        "release__dataset__society__name_en",
    )
    society_years = (
        files.annotate(year=ExtractYear("study_date"))
        .values(*society_fields, "year")
        .annotate(images=Count("id"), cases=Count("subject_pseudonym", distinct=True))
        .order_by()
    )
    society_totals = (
        files.values(*society_fields)
        .annotate(images=Count("id"), cases=Count("subject_pseudonym", distinct=True))
        .order_by()
    )
    modality_years = (
        files.annotate(year=ExtractYear("study_date"))
        .values("modality", "year")
        .annotate(images=Count("id"), cases=Count("subject_pseudonym", distinct=True))
        .order_by()
    )
    modality_totals = (
        files.values("modality")
        .annotate(images=Count("id"), cases=Count("subject_pseudonym", distinct=True))
        .order_by()
    )

    societies: dict[str, SeriesStats] = {}
    for row in society_totals:
        slug = row["release__dataset__society__slug"]
        societies[slug] = SeriesStats(
            slug, row["release__dataset__society__name_ja"], row["release__dataset__society__name_en"],
            images=row["images"], cases=row["cases"],
        )
    years: set[int | None] = set()
    for row in society_years:
        societies[row["release__dataset__society__slug"]].years[row["year"]] = YearCount(
            row["images"], row["cases"]
        )
        years.add(row["year"])

    labels = dict(Modality.choices)
    modalities: dict[str, SeriesStats] = {}
    for row in modality_totals:
        label = labels.get(row["modality"], row["modality"])
        with override("ja"):
            label_ja = str(label)
        with override("en"):
            label_en = str(label)
        modalities[row["modality"]] = SeriesStats(
            row["modality"], label_ja, label_en, images=row["images"], cases=row["cases"]
        )
    for row in modality_years:
        modalities[row["modality"]].years[row["year"]] = YearCount(row["images"], row["cases"])

    order = {value: index for index, value in enumerate(labels)}
    return Statistics(
        by_society=sorted(societies.values(), key=lambda s: (-s.images, s.key)),
        by_modality=sorted(modalities.values(), key=lambda s: order.get(s.key, len(order))),
        years=_year_span(years),
        images=sum(s.images for s in societies.values()),
        cases=_distinct_cases(),
    )


STATISTICS_CACHE_KEY = "datasets:catalogue-statistics:v1"
STATISTICS_CACHE_SECONDS = 300


def cached_catalogue_statistics() -> Statistics:
    """``catalogue_statistics`` kept for five minutes: the page is public and the aggregates scan
    every counted file, so a burst of visitors must not run them once each."""
    stats = cache.get(STATISTICS_CACHE_KEY)
    if stats is None:
        stats = catalogue_statistics()
        cache.set(STATISTICS_CACHE_KEY, stats, STATISTICS_CACHE_SECONDS)
    return stats


def _distinct_cases() -> int:
    return _counted_files().values("subject_pseudonym").distinct().count()


def statistics_as_data(stats: Statistics) -> dict[str, Any]:
    """The statistics as plain data (for the API)."""

    def series(items: list[SeriesStats], key_name: str) -> list[dict[str, Any]]:
        return [
            {
                key_name: item.key,
                "label_ja": item.label_ja,
                "label_en": item.label_en,
                "images": item.images,
                "cases": item.cases,
                "by_year": [
                    {"year": year, "images": count.images, "cases": count.cases}
                    for year, count in sorted(item.years.items(), key=lambda pair: _year_key(pair[0]))
                ],
            }
            for item in items
        ]

    return {
        "basis": "newest_available_release_of_each_published_dataset",
        "time_axis": "study_year",
        "images": stats.images,
        "cases": stats.cases,
        "by_society": series(stats.by_society, "society"),
        "by_modality": series(stats.by_modality, "modality"),
    }


def _year_key(year: int | None) -> int:
    return year if year is not None else 10_000


# --- Charts -------------------------------------------------------------------------------------

WIDTH = 720
HEIGHT = 320
LEFT = 64
RIGHT = 16
TOP = 16
BOTTOM = 40


def _coord(value: float) -> str:
    """An SVG coordinate, formatted here so that no locale setting can put a comma in it."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    fill: str
    label: str


@dataclass(frozen=True)
class Tick:
    y: str
    value: int


@dataclass(frozen=True)
class XLabel:
    x: str
    text: str


@dataclass(frozen=True)
class LegendItem:
    label: str
    fill: str


@dataclass(frozen=True)
class TableRow:
    label: str
    values: list[int]
    total: int


@dataclass(frozen=True)
class Chart:
    """A stacked-bar chart laid out in SVG user units, and the table of the same numbers."""

    slug: str
    title: str | Promise
    series_heading: str | Promise
    width: int
    height: int
    plot_left: str
    plot_right: str
    tick_label_x: str
    baseline: str
    x_label_y: str
    bars: list[Bar]
    ticks: list[Tick]
    x_labels: list[XLabel]
    legend: list[LegendItem]
    columns: list[str]
    rows: list[TableRow]
    column_totals: list[int]
    total: int

    @property
    def empty(self) -> bool:
        return not self.rows


def _nice_step(maximum: int, steps: int = 4) -> int:
    raw = max(1, -(-maximum // steps))
    magnitude = 10 ** (len(str(raw)) - 1)
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def year_label(year: int | None) -> str:
    return str(year) if year is not None else str(_("Unknown"))


def build_chart(
    *, slug: str, title: str | Promise, series_heading: str | Promise, series: list[SeriesStats],
    years: list[int | None], measure: str,
) -> Chart:
    """Lay out one stacked-bar chart: one bar per year, one colour per series, ``measure`` images or cases."""
    values = [[getattr(item.years.get(year, YearCount()), measure) for year in years] for item in series]
    stacked_totals = [sum(column) for column in zip(*values, strict=True)] if values else [0] * len(years)
    step = _nice_step(max(stacked_totals, default=0))
    top_value = step * max(1, -(-max(stacked_totals, default=0) // step))
    plot_height = HEIGHT - TOP - BOTTOM
    plot_width = WIDTH - LEFT - RIGHT
    baseline = TOP + plot_height
    slot = plot_width / max(1, len(years))
    bar_width = slot * 0.7
    scale = plot_height / top_value

    bars: list[Bar] = []
    x_labels: list[XLabel] = []
    for index, year in enumerate(years):
        x = LEFT + index * slot + (slot - bar_width) / 2
        stacked = 0
        for item_index, item in enumerate(series):
            value = values[item_index][index]
            if value:
                height = value * scale
                bars.append(Bar(
                    x=_coord(x), y=_coord(baseline - (stacked + value) * scale),
                    width=_coord(bar_width), height=_coord(height), fill=PALETTE[item_index % len(PALETTE)],
                    label=f"{item.label} {year_label(year)}: {value}",
                ))
                stacked += value
        x_labels.append(XLabel(x=_coord(LEFT + index * slot + slot / 2), text=year_label(year)))
    # Label every year when few, else about ten of them, so that labels never overlap.
    every = max(1, -(-len(years) // 10))
    x_labels = [label for index, label in enumerate(x_labels) if index % every == 0]
    ticks = [Tick(y=_coord(baseline - value * scale), value=value) for value in range(0, top_value + 1, step)]
    return Chart(
        slug=slug, title=title, series_heading=series_heading, width=WIDTH, height=HEIGHT,
        plot_left=_coord(LEFT), plot_right=_coord(WIDTH - RIGHT), tick_label_x=_coord(LEFT - 6),
        baseline=_coord(baseline), x_label_y=_coord(baseline + 18), bars=bars, ticks=ticks,
        x_labels=x_labels,
        legend=[LegendItem(item.label, PALETTE[index % len(PALETTE)]) for index, item in enumerate(series)],
        columns=[year_label(year) for year in years],
        rows=[
            TableRow(item.label, values[index], getattr(item, measure)) for index, item in enumerate(series)
        ],
        # Images add up across series and years; cases do not (one subject may be in two societies,
        # or have studies in two years), so their table has no total row.
        column_totals=stacked_totals if measure == "images" else [],
        total=sum(stacked_totals) if measure == "images" else 0,
    )


def statistics_charts(stats: Statistics) -> list[Chart]:
    """The four charts of the statistics page."""
    common = {"years": stats.years}
    return [
        build_chart(slug="images-by-society", title=_("Images by society and year of study"),
                    series_heading=_("Society"), series=stats.by_society, measure="images", **common),
        build_chart(slug="cases-by-society", title=_("Cases by society and year of study"),
                    series_heading=_("Society"), series=stats.by_society, measure="cases", **common),
        build_chart(slug="images-by-modality", title=_("Images by modality and year of study"),
                    series_heading=_("Modality"), series=stats.by_modality, measure="images", **common),
        build_chart(slug="cases-by-modality", title=_("Cases by modality and year of study"),
                    series_heading=_("Modality"), series=stats.by_modality, measure="cases", **common),
    ]
