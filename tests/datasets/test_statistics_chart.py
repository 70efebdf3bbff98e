"""The stacked-bar layout of the statistics charts, without the database."""

from __future__ import annotations

import pytest

from portal.datasets.statistics import (
    PALETTE,
    SeriesStats,
    YearCount,
    _nice_step,
    _year_span,
    build_chart,
)


@pytest.mark.parametrize(
    ("maximum", "step"), [(0, 1), (3, 1), (4, 1), (5, 2), (9, 5), (40, 10), (41, 20), (1234, 500)]
)
def test_chart_nice_step(maximum, step):
    assert _nice_step(maximum) == step


def test_chart_year_span_fills_gaps_and_puts_unknown_last():
    assert _year_span({2024, None, 2021}) == [2021, 2022, 2023, 2024, None]
    assert _year_span({None}) == [None]
    assert _year_span(set()) == []


def _series(key: str, years: dict[int | None, int]) -> SeriesStats:
    return SeriesStats(key, key, key, years={y: YearCount(images=n, cases=1) for y, n in years.items()},
                       images=sum(years.values()), cases=1)


def test_chart_bars_stack_in_series_order_and_scale_to_the_top_tick():
    chart = build_chart(slug="t", title="T", series_heading="S", measure="images", years=[2020, 2021],
                        series=[_series("a", {2020: 2, 2021: 4}), _series("b", {2021: 4})])

    # plot: 720 wide, 64 left margin, 16 right; 320 high, 16 top, 40 bottom; top tick 8 (step 2)
    assert [tick.value for tick in chart.ticks] == [0, 2, 4, 6, 8]
    assert [(bar.x, bar.y, bar.width, bar.height, bar.fill) for bar in chart.bars] == [
        ("112", "214", "224", "66", PALETTE[0]),
        ("432", "148", "224", "132", PALETTE[0]),
        ("432", "16", "224", "132", PALETTE[1]),
    ]
    assert [(row.label, row.values, row.total) for row in chart.rows] == [("a", [2, 4], 6), ("b", [0, 4], 4)]
    assert chart.column_totals == [2, 8]
    assert chart.total == 10


def test_chart_of_cases_has_no_totals_row():
    chart = build_chart(slug="t", title="T", series_heading="S", measure="cases", years=[2020],
                        series=[_series("a", {2020: 2})])

    assert chart.column_totals == []
    assert chart.rows[0].values == [1]


def test_chart_labels_about_ten_years_when_many():
    chart = build_chart(slug="t", title="T", series_heading="S", measure="images",
                        years=list(range(2000, 2025)), series=[_series("a", {2000: 1})])

    assert [label.text for label in chart.x_labels] == [str(year) for year in range(2000, 2025, 3)]
    assert len(chart.columns) == 25


def test_chart_without_series_is_empty():
    chart = build_chart(slug="t", title="T", series_heading="S", measure="images", years=[], series=[])

    assert chart.empty
    assert chart.bars == []
