"""The public statistics page: exact numbers for a known catalogue, SVG charts, fixed queries."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from portal.datasets.models import DatasetRelease, DatasetStatus, ReleaseFile
from portal.datasets.statistics import (
    STATISTICS_CACHE_KEY,
    catalogue_statistics,
    statistics_as_data,
)
from tests.factories import SocietyFactory
from tests.factories.datasets import DatasetFactory, FileSpec, make_release

A, B, C, D, E, F = (letter * 64 for letter in "abcdef")


@pytest.fixture(autouse=True)
def _no_cached_statistics() -> None:
    # A Redis cache (CACHE_URL) is not emptied between tests; the statistics are cached in it.
    cache.delete(STATISTICS_CACHE_KEY)


def _ja(text) -> str:  # type: ignore[no-untyped-def]
    with translation.override("ja"):
        return str(text)


def _withdraw(release: DatasetRelease) -> None:
    release.status = DatasetRelease.Status.WITHDRAWN
    release.withdrawal_reason = "試験のため取下げ"
    release.withdrawn_at = timezone.now()
    release.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])


def _annotation(release: DatasetRelease, subject: str, study_date: date) -> None:
    ReleaseFile.objects.create(
        release=release, path=f"annotations/{subject[:4]}.json", storage_key="unused", size=2,
        sha256=hashlib.sha256(b"{}").hexdigest(), media_type="application/json",
        subject_pseudonym=subject, study_date=study_date, modality=release.dataset.modality,
        is_annotation=True,
    )


@pytest.fixture
def known(db):  # type: ignore[no-untyped-def]
    """Two societies; only each published dataset's newest available release may count."""
    jsp = SocietyFactory(slug="jsp", name_ja="日本病理学会", name_en="The Japanese Society of Pathology")
    jges = SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会", name_en="Japan Gastroenterological Endoscopy Society")
    published = {"status": DatasetStatus.PUBLISHED, "published_at": timezone.now()}

    wsi = DatasetFactory(society=jsp, modality="pathology_wsi", **published)
    make_release(wsi, [FileSpec(A, date(2021, 1, 1)), FileSpec(A, date(2021, 2, 1)),
                       FileSpec(B, date(2022, 1, 1))], store=False)  # older: not counted
    newest = make_release(wsi, [FileSpec(A, date(2021, 1, 1)), FileSpec(B, date(2022, 1, 1)),
                                FileSpec(C, date(2023, 1, 1))], store=False)
    _annotation(newest, C, date(2023, 1, 1))  # annotations are not images
    _withdraw(make_release(wsi, [FileSpec(D, date(2024, 1, 1))] * 5, store=False))  # withdrawn: not counted

    endo = DatasetFactory(society=jges, modality="endoscopy", **published)
    make_release(endo, [FileSpec(A, date(2022, 3, 1)), FileSpec(A, date(2022, 4, 1)),
                        FileSpec(F, date(2022, 5, 1), modality="xray"), FileSpec(E, None)], store=False)

    draft = DatasetFactory(society=jges, modality="ct", status=DatasetStatus.DRAFT)
    make_release(draft, [FileSpec(D, date(2020, 1, 1))], store=False)
    gone = DatasetFactory(society=jsp, modality="ct", status=DatasetStatus.WITHDRAWN)
    make_release(gone, [FileSpec(D, date(2020, 1, 1))], store=False)
    only_withdrawn = DatasetFactory(society=jges, modality="mr", **published)
    _withdraw(make_release(only_withdrawn, [FileSpec(D, date(2019, 1, 1))], store=False))
    return {"jsp": jsp, "jges": jges}


def test_statistics_exact_numbers_for_known_catalogue(known):
    data = statistics_as_data(catalogue_statistics())

    assert data == {
        "basis": "newest_available_release_of_each_published_dataset",
        "time_axis": "study_year",
        "images": 7,
        "cases": 5,
        "by_society": [
            {"society": "jges", "label_ja": "日本消化器内視鏡学会", "label_en": "Japan Gastroenterological Endoscopy Society",
             "images": 4, "cases": 3, "by_year": [
                 {"year": 2022, "images": 3, "cases": 2},
                 {"year": None, "images": 1, "cases": 1},
             ]},
            {"society": "jsp", "label_ja": "日本病理学会", "label_en": "The Japanese Society of Pathology",
             "images": 3, "cases": 3, "by_year": [
                 {"year": 2021, "images": 1, "cases": 1},
                 {"year": 2022, "images": 1, "cases": 1},
                 {"year": 2023, "images": 1, "cases": 1},
             ]},
        ],
        "by_modality": [
            {"modality": "pathology_wsi", "label_ja": "病理ホールスライド画像（WSI）",
             "label_en": "Pathology whole-slide images", "images": 3, "cases": 3, "by_year": [
                 {"year": 2021, "images": 1, "cases": 1},
                 {"year": 2022, "images": 1, "cases": 1},
                 {"year": 2023, "images": 1, "cases": 1},
             ]},
            {"modality": "endoscopy", "label_ja": "内視鏡画像", "label_en": "Endoscopy",
             "images": 3, "cases": 2, "by_year": [
                 {"year": 2022, "images": 2, "cases": 1},
                 {"year": None, "images": 1, "cases": 1},
             ]},
            {"modality": "xray", "label_ja": "X線画像", "label_en": "X-ray", "images": 1, "cases": 1,
             "by_year": [{"year": 2022, "images": 1, "cases": 1}]},
        ],
    }


def test_statistics_page_is_public_with_svg_charts_and_tables(client, known):
    response = client.get(reverse("catalogue:statistics"))

    assert response.status_code == 200
    content = response.content.decode()
    assert content.count("<svg class=\"chart__svg\"") == 4
    assert "style=" not in content
    assert "<script>" not in content
    table = content.split('data-testid="table-images-by-society"')[1].split("</table>")[0]
    header = table.split("<thead>")[1].split("</thead>")[0]
    assert [cell.split(">", 1)[1].split("<")[0] for cell in header.split("<th")[2:]] == [
        "2021", "2022", "2023", _ja(_("Unknown")), _ja(_("All years")),
    ]
    body_rows = table.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert [[cell.split(">", 1)[1].split("<")[0] for cell in row.split("<td")[1:]] for row in body_rows] == [
        ["0", "3", "0", "1", "4"],
        ["1", "1", "1", "0", "3"],
    ]
    foot = table.split("<tfoot>")[1].split("</tfoot>")[0]
    assert [cell.split(">", 1)[1].split("<")[0] for cell in foot.split("<td")[1:]] == ["1", "4", "1", "1", "7"]
    cases = content.split('data-testid="table-cases-by-society"')[1].split("</table>")[0]
    assert "<tfoot>" not in cases
    svg = content.split('data-testid="chart-images-by-society"')[1].split("</svg>")[0]
    # jges (4 images) is stacked first, in the first colour; 3 of 4 at 2022 reach 3/4 of the plot
    assert '<rect x="248" y="82" width="112" height="198" fill="#0072B2"><title>日本消化器内視鏡学会 2022: 3</title></rect>' in svg
    assert '<rect x="248" y="16" width="112" height="66" fill="#E69F00">' in svg


@pytest.mark.parametrize("datasets", [2, 12])
def test_statistics_page_query_count_is_fixed(client, db, datasets, django_assert_num_queries):
    societies = [SocietyFactory() for _ in range(3)]
    for index in range(datasets):
        dataset = DatasetFactory(society=societies[index % 3], status=DatasetStatus.PUBLISHED,
                                 published_at=timezone.now(), modality=["ct", "mr", "endoscopy"][index % 3])
        make_release(dataset, [FileSpec(A, date(2020, 1, 1))], store=False)
        make_release(dataset, [FileSpec(B, date(2021 + index % 3, 1, 1))], store=False)

    with django_assert_num_queries(5):
        response = client.get(reverse("catalogue:statistics"))

    assert response.status_code == 200


def test_statistics_page_is_cached_for_a_while(client, known, django_assert_num_queries):
    client.get(reverse("catalogue:statistics"))

    with django_assert_num_queries(0):
        response = client.get(reverse("catalogue:statistics"))

    assert response.status_code == 200
    assert 'data-testid="table-images-by-society"' in response.content.decode()


def test_statistics_page_with_nothing_published(client, db):
    response = client.get(reverse("catalogue:statistics"))

    assert response.status_code == 200
    assert "chart__svg" not in response.content.decode()
