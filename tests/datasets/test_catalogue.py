"""The public catalogue: search, filters, dataset and release pages, without signing in."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from portal.datasets.models import (
    AccessTier,
    AnnotationGranularity,
    DatasetRelease,
    DatasetStatus,
    LegalStatus,
)
from portal.optout.models import OptOutNotice
from tests.factories import SocietyFactory
from tests.factories.datasets import DatasetFactory, FileSpec, make_release, published_notice

PSEUDONYM_A = "a" * 64
PSEUDONYM_B = "b" * 64


def _published(**fields):  # type: ignore[no-untyped-def]
    fields.setdefault("published_at", timezone.now())
    return DatasetFactory(status=DatasetStatus.PUBLISHED, **fields)


def _ja(text) -> str:  # type: ignore[no-untyped-def]
    with translation.override("ja"):
        return str(text)


def _slugs(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [dataset.slug for dataset in response.context["page"]]


@pytest.fixture
def catalogue(db):  # type: ignore[no-untyped-def]
    jsp = SocietyFactory(slug="jsp", name_ja="日本病理学会", name_en="The Japanese Society of Pathology")
    jges = SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会", name_en="Japan Gastroenterological Endoscopy Society")
    now = timezone.now()
    return {
        "wsi": _published(
            society=jsp, slug="gastric-wsi", title_ja="胃生検病理標本", title_en="Gastric biopsy slides",
            modality="pathology_wsi", annotation_granularity="cell_outline", access_tier="commercial",
            body_part="胃", disease_areas="胃がん, 胃炎", published_at=now - timedelta(days=3),
        ),
        "endo": _published(
            society=jges, slug="colon-endo", title_ja="大腸内視鏡画像", title_en="Colonoscopy images",
            modality="endoscopy", annotation_granularity="rectangle", access_tier="controlled",
            body_part="大腸", disease_areas="大腸ポリープ", published_at=now - timedelta(days=2),
        ),
        "endo_commercial": _published(
            society=jges, slug="gastric-endo", title_ja="胃内視鏡画像", title_en="Gastroscopy images",
            modality="endoscopy", annotation_granularity="diagnosis", access_tier="commercial",
            body_part="胃", disease_areas="胃がん", description_ja="早期胃癌の拡大内視鏡画像",
            published_at=now - timedelta(days=1),
        ),
        "draft": DatasetFactory(society=jsp, slug="draft-set", title_ja="下書きのデータセット",
                                status=DatasetStatus.DRAFT),
        "withdrawn": DatasetFactory(society=jsp, slug="old-set", title_ja="取り下げたデータセット",
                                    status=DatasetStatus.WITHDRAWN, withdrawn_at=now),
    }


def test_catalogue_needs_no_sign_in_and_lists_only_published_newest_first(client, catalogue):
    response = client.get(reverse("catalogue:list"))

    assert response.status_code == 200
    assert _slugs(response) == ["gastric-endo", "colon-endo", "gastric-wsi"]
    content = response.content.decode()
    assert "下書きのデータセット" not in content
    assert "取り下げたデータセット" not in content
    assert 'lang="ja"' in content


def test_catalogue_result_count_is_shown(client, catalogue):
    response = client.get(reverse("catalogue:list"), {"modality": "endoscopy"})

    count = response.content.decode().split('data-testid="result-count"')[1].split("</p>")[0]
    assert "2" in count
    assert response.context["page"].paginator.count == 2


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"society": "jges"}, ["gastric-endo", "colon-endo"]),
        ({"society": "jsp"}, ["gastric-wsi"]),
        ({"modality": "pathology_wsi"}, ["gastric-wsi"]),
        ({"modality": "endoscopy"}, ["gastric-endo", "colon-endo"]),
        ({"modality": "ct"}, []),
        ({"granularity": "rectangle"}, ["colon-endo"]),
        ({"commercial": "on"}, ["gastric-endo", "gastric-wsi"]),
    ],
)
def test_catalogue_each_filter_alone(client, catalogue, params, expected):
    response = client.get(reverse("catalogue:list"), params)

    assert response.status_code == 200
    assert _slugs(response) == expected


def test_catalogue_filters_combine(client, catalogue):
    response = client.get(
        reverse("catalogue:list"), {"society": "jges", "modality": "endoscopy", "commercial": "on"}
    )

    assert _slugs(response) == ["gastric-endo"]


def test_catalogue_filters_and_search_combine(client, catalogue):
    response = client.get(
        reverse("catalogue:list"), {"q": "胃がん", "commercial": "on", "granularity": "cell_outline"}
    )

    assert _slugs(response) == ["gastric-wsi"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("胃生検", ["gastric-wsi"]),  # title (Japanese)
        ("colonoscopy", ["colon-endo"]),  # title (English), any case
        ("拡大内視鏡", ["gastric-endo"]),  # description
        ("大腸", ["colon-endo"]),  # body part and title
        ("ポリープ", ["colon-endo"]),  # disease areas
        ("胃炎", ["gastric-wsi"]),  # second disease area
        ("胃 内視鏡", ["gastric-endo"]),  # every word must match
        ("存在しない語", []),
    ],
)
def test_catalogue_search(client, catalogue, q, expected):
    response = client.get(reverse("catalogue:list"), {"q": q})

    assert _slugs(response) == expected


def test_catalogue_search_never_finds_drafts(client, catalogue):
    response = client.get(reverse("catalogue:list"), {"q": "下書き"})

    assert _slugs(response) == []


def test_catalogue_unknown_modality_is_reported_and_ignored(client, catalogue):
    response = client.get(reverse("catalogue:list"), {"modality": "telepathy", "society": "jsp"})

    assert response.status_code == 200
    assert response.context["form"].errors["modality"]
    assert _slugs(response) == ["gastric-wsi"]


def test_catalogue_filter_form_works_without_javascript(client, catalogue):
    content = client.get(reverse("catalogue:list"), {"society": "jsp"}).content.decode()

    form = content.split('role="search"')[1].split("</form>")[0]
    assert 'method="get"' in content.split('role="search"')[0].rsplit("<form", 1)[1]
    for name in ("q", "society", "modality", "granularity", "commercial"):
        assert f'name="{name}"' in form
    assert '<option value="jsp" selected>日本病理学会</option>' in form
    assert 'type="submit"' in form


def test_catalogue_row_shows_newest_available_release(client, catalogue):
    wsi = catalogue["wsi"]
    make_release(wsi, [FileSpec(PSEUDONYM_A, date(2024, 1, 5))], store=False)
    second = make_release(wsi, [FileSpec(PSEUDONYM_A, date(2024, 1, 5))], store=False)
    third = make_release(wsi, [FileSpec(PSEUDONYM_B, date(2024, 1, 5))], store=False)
    third.status = DatasetRelease.Status.WITHDRAWN
    third.withdrawn_at = timezone.now()
    third.withdrawal_reason = "試験のため取下げ"
    third.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])

    response = client.get(reverse("catalogue:list"), {"society": "jsp"})

    (row,) = response.context["page"]
    assert row.newest_release_version == 2
    assert row.newest_release_date == second.created_at
    content = response.content.decode()
    row_html = content.split('data-slug="gastric-wsi"')[1].split("</tr>")[0]
    with translation.override("ja"):
        assert translation.gettext("v%(version)s") % {"version": 2} in row_html
    assert second.created_at.astimezone(timezone.get_current_timezone()).strftime("%Y-%m-%d") in row_html
    assert "日本病理学会" in row_html
    assert _ja(AnnotationGranularity.CELL_OUTLINE.label) in row_html
    assert _ja(AccessTier.COMMERCIAL.label) in row_html


def test_catalogue_row_without_release_says_so(client, catalogue):
    content = client.get(reverse("catalogue:list"), {"society": "jsp"}).content.decode()

    row_html = content.split('data-slug="gastric-wsi"')[1].split("</tr>")[0]
    assert _ja(_("No release yet")) in row_html


def test_catalogue_paginates_by_twenty_and_keeps_filters(client, db):
    society = SocietyFactory(slug="many")
    for index in range(25):
        _published(society=society, slug=f"set-{index:02d}", modality="ct",
                   published_at=timezone.now() - timedelta(minutes=index))

    first = client.get(reverse("catalogue:list"), {"modality": "ct"})
    second = client.get(reverse("catalogue:list"), {"modality": "ct", "page": "2"})

    assert len(first.context["page"]) == 20
    assert _slugs(second) == [f"set-{index:02d}" for index in range(20, 25)]
    assert first.context["next_query"] == "modality=ct&page=2"
    assert second.context["previous_query"] == "modality=ct&page=1"
    assert 'href="?modality=ct&amp;page=2"' in first.content.decode()


def _many_datasets(count: int) -> None:
    societies = [SocietyFactory() for _ in range(3)]
    for index in range(count):
        dataset = _published(society=societies[index % 3])
        make_release(dataset, [FileSpec(PSEUDONYM_A, date(2023, 4, 1))], store=False)
        make_release(dataset, [FileSpec(PSEUDONYM_B, date(2024, 4, 1))], store=False)


@pytest.mark.parametrize("count", [3, 30])
def test_catalogue_query_count_is_fixed(client, db, count, django_assert_num_queries):
    _many_datasets(count)

    # societies for the filter, the count, the page (newest release by subquery)
    with django_assert_num_queries(3):
        response = client.get(reverse("catalogue:list"))

    assert response.status_code == 200
    assert len(response.context["page"]) == min(count, 20)


@pytest.mark.parametrize("count", [3, 30])
def test_catalogue_filtered_query_count_is_fixed(client, db, count, django_assert_num_queries):
    _many_datasets(count)

    with django_assert_num_queries(3):
        response = client.get(reverse("catalogue:list"), {"q": "テスト", "modality": "endoscopy", "granularity": "diagnosis"})

    assert response.context["page"].paginator.count == count


def test_catalogue_in_english(client, catalogue):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    content = client.get(reverse("catalogue:list")).content.decode()

    assert "Gastric biopsy slides" in content
    assert "The Japanese Society of Pathology" in content
    assert "Dataset catalogue" in content


# --- Dataset page --------------------------------------------------------------------------------


def test_dataset_page_shows_metadata_releases_and_covering_notice(client, catalogue):
    wsi = catalogue["wsi"]
    wsi.collection_start, wsi.collection_end = date(2020, 4, 1), date(2023, 3, 31)
    wsi.annotation_format = "GeoJSON"
    wsi.save()
    first = make_release(wsi, [FileSpec(PSEUDONYM_A, date(2021, 5, 1)), FileSpec(PSEUDONYM_B, date(2022, 5, 1))],
                         store=False)
    first.status = DatasetRelease.Status.WITHDRAWN
    first.withdrawal_reason = "試験のため取下げ"
    first.withdrawn_at = timezone.now()
    first.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])
    make_release(wsi, [FileSpec(PSEUDONYM_A, date(2021, 5, 1))], store=False)
    notice = published_notice(wsi)
    draft_notice = OptOutNotice.objects.create(
        society=wsi.society, protocol=wsi.protocol, reference="OPT-DRAFT", status=OptOutNotice.Status.DRAFT
    )
    draft_notice.datasets.add(wsi)

    response = client.get(reverse("catalogue:detail", args=["gastric-wsi"]))

    assert response.status_code == 200
    content = response.content.decode()
    facts = content.split('data-testid="dataset-facts"')[1].split("</dl>")[0]
    assert "胃生検病理標本" in content
    assert "2020-04-01 – 2023-03-31" in facts
    assert "GeoJSON" in facts
    assert wsi.protocol.number in facts
    assert wsi.protocol.committee.name_ja in facts
    assert _ja(LegalStatus.PSEUDONYMISED.label) in facts
    releases = content.split('data-testid="releases"')[1].split("</table>")[0]
    assert releases.index('data-version="2"') < releases.index('data-version="1"')
    withdrawn_row = releases.split('data-version="1"')[1].split("</tr>")[0]
    assert 'data-version="1" class="release--withdrawn"' in releases
    assert 'data-version="2" class' not in releases
    assert _ja(DatasetRelease.Status.WITHDRAWN.label) in withdrawn_row
    notices = content.split('data-testid="notices"')[1].split("</ul>")[0]
    assert f'href="{reverse("optout_public:detail", args=[notice.reference])}"' in notices
    assert notice.reference in notices
    assert "OPT-DRAFT" not in content


def test_dataset_page_release_counts(client, catalogue):
    wsi = catalogue["wsi"]
    make_release(wsi, [FileSpec(PSEUDONYM_A, date(2021, 5, 1), content=b"x" * 1024),
                       FileSpec(PSEUDONYM_A, date(2021, 6, 1), content=b"y" * 1024),
                       FileSpec(PSEUDONYM_B, date(2022, 5, 1), content=b"z" * 1024)], store=False)

    content = client.get(reverse("catalogue:detail", args=["gastric-wsi"])).content.decode()

    row = content.split('data-version="1"')[1].split("</tr>")[0]
    cells = [cell.split(">", 1)[1].split("</td>")[0] for cell in row.split("<td")[1:]]
    assert cells[2:5] == ["2", "3", "3"]
    with translation.override("ja"):
        assert cells[5] == filesizeformat(3072)
    assert cells[6] == "0"


def test_dataset_page_without_notice_says_so(client, catalogue):
    content = client.get(reverse("catalogue:detail", args=["colon-endo"])).content.decode()

    assert 'data-testid="notices"' not in content


@pytest.mark.parametrize("releases", [1, 8])
def test_dataset_page_query_count_is_fixed(client, catalogue, releases, django_assert_num_queries):
    wsi = catalogue["wsi"]
    for _index in range(releases):
        make_release(wsi, [FileSpec(PSEUDONYM_A, date(2021, 5, 1)), FileSpec(PSEUDONYM_B, date(2022, 5, 1))],
                     store=False)
    published_notice(wsi)
    published_notice(wsi)

    # the dataset with society, protocol and committee; its releases; its published notices
    with django_assert_num_queries(3):
        response = client.get(reverse("catalogue:detail", args=["gastric-wsi"]))

    assert response.status_code == 200


def test_dataset_page_of_draft_is_404(client, catalogue):
    assert client.get(reverse("catalogue:detail", args=["draft-set"])).status_code == 404


def test_dataset_page_of_unknown_slug_is_404(client, catalogue):
    assert client.get(reverse("catalogue:detail", args=["no-such-set"])).status_code == 404


def test_dataset_page_of_withdrawn_dataset_is_gone_and_says_withdrawn(client, catalogue):
    response = client.get(reverse("catalogue:detail", args=["old-set"]))

    assert response.status_code == 410
    content = response.content.decode()
    assert 'data-testid="withdrawn"' in content
    assert 'data-testid="releases"' not in content


# --- Release page --------------------------------------------------------------------------------


def test_release_page_counts_by_modality_and_year_and_hides_paths_and_pseudonyms(client, catalogue):
    wsi = catalogue["wsi"]
    release = make_release(wsi, [
        FileSpec(PSEUDONYM_A, date(2021, 5, 1), path="secret-a/one.svs"),
        FileSpec(PSEUDONYM_A, date(2021, 6, 1), path="secret-a/two.svs"),
        FileSpec(PSEUDONYM_B, date(2022, 5, 1), path="secret-b/one.svs"),
        FileSpec(PSEUDONYM_B, date(2022, 5, 1), path="secret-b/photo.png", modality="dermatology"),
        FileSpec(PSEUDONYM_B, None, path="secret-b/undated.svs"),
    ], store=False)

    response = client.get(reverse("catalogue:release", args=["gastric-wsi", release.version]))

    assert response.status_code == 200
    assert response.context["rows"] == [
        {"modality": "皮膚臨床写真", "year": "2022", "images": 1, "cases": 1},
        {"modality": "病理ホールスライド画像（WSI）", "year": "2021", "images": 2, "cases": 1},
        {"modality": "病理ホールスライド画像（WSI）", "year": "2022", "images": 1, "cases": 1},
        {"modality": "病理ホールスライド画像（WSI）", "year": "不明", "images": 1, "cases": 1},
    ]
    content = response.content.decode()
    assert "secret-" not in content
    assert PSEUDONYM_A not in content
    assert PSEUDONYM_B not in content
    assert PSEUDONYM_A[:8] not in content
    assert release.manifest_sha256 in content


def test_release_page_of_withdrawn_release_says_withdrawn(client, catalogue):
    wsi = catalogue["wsi"]
    release = make_release(wsi, [FileSpec(PSEUDONYM_A, date(2021, 5, 1))], store=False)
    release.status = DatasetRelease.Status.WITHDRAWN
    release.withdrawal_reason = "試験のため取下げ"
    release.withdrawn_at = timezone.now()
    release.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])

    response = client.get(reverse("catalogue:release", args=["gastric-wsi", 1]))

    assert response.status_code == 200
    assert 'data-testid="withdrawn"' in response.content.decode()


def test_release_page_of_draft_dataset_is_404(client, catalogue):
    make_release(catalogue["draft"], [FileSpec(PSEUDONYM_A, date(2021, 5, 1))], store=False)

    assert client.get(reverse("catalogue:release", args=["draft-set", 1])).status_code == 404


def test_release_page_of_unknown_version_is_404(client, catalogue):
    assert client.get(reverse("catalogue:release", args=["gastric-wsi", 9])).status_code == 404


@pytest.mark.parametrize("files", [2, 40])
def test_release_page_query_count_is_fixed(client, catalogue, files, django_assert_num_queries):
    release = make_release(
        catalogue["wsi"],
        [FileSpec(f"{index % 7:064d}", date(2015 + index % 5, 1, 1)) for index in range(files)],
        store=False,
    )

    with django_assert_num_queries(2):
        client.get(reverse("catalogue:release", args=["gastric-wsi", release.version]))


def test_catalogue_counts_come_from_newest_available_release_else_declared(client, catalogue):
    wsi, endo = catalogue["wsi"], catalogue["endo"]
    wsi.case_count, wsi.image_count = 100, 900  # declared; superseded by the release
    wsi.save()
    endo.case_count, endo.image_count = 7, 70  # declared; no release yet
    endo.save()
    make_release(wsi, [FileSpec(PSEUDONYM_A, date(2021, 1, 1)), FileSpec(PSEUDONYM_A, date(2021, 2, 1)),
                       FileSpec(PSEUDONYM_B, date(2021, 3, 1))], store=False)
    _withdraw_release(make_release(wsi, [FileSpec(PSEUDONYM_A, date(2021, 1, 1))], store=False))

    response = client.get(reverse("catalogue:list"))

    rows = {d.slug: (d.listed_case_count, d.listed_image_count) for d in response.context["page"]}
    assert rows["gastric-wsi"] == (2, 3)
    assert rows["colon-endo"] == (7, 70)
    detail = client.get(reverse("catalogue:detail", args=["gastric-wsi"])).content.decode()
    facts = detail.split('data-testid="dataset-facts"')[1].split("</dl>")[0]
    assert f"<dt>{_ja(_('Cases'))}</dt><dd>2</dd>" in facts
    assert f"<dt>{_ja(_('Images'))}</dt><dd>3</dd>" in facts


def _withdraw_release(release: DatasetRelease) -> None:
    release.status = DatasetRelease.Status.WITHDRAWN
    release.withdrawal_reason = "試験のため取下げ"
    release.withdrawn_at = timezone.now()
    release.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])
