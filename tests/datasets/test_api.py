"""The catalogue API: public datasets, releases and statistics; manifests for signed-in users only,
with subject IDs only under an active grant on that release."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from knox.models import AuthToken

from portal.access.models import Grant
from portal.datasets.models import DatasetRelease, DatasetStatus
from portal.datasets.statistics import STATISTICS_CACHE_KEY
from tests.factories import SocietyFactory
from tests.factories.datasets import (
    DatasetFactory,
    FileSpec,
    active_grant,
    make_release,
    published_notice,
)

A, B = "a" * 64, "b" * 64


def _token(user) -> str:  # type: ignore[no-untyped-def]
    return AuthToken.objects.create(user)[1]


def _published(**fields):  # type: ignore[no-untyped-def]
    fields.setdefault("published_at", timezone.now())
    return DatasetFactory(status=DatasetStatus.PUBLISHED, **fields)


@pytest.fixture
def catalogue(db):  # type: ignore[no-untyped-def]
    jsp = SocietyFactory(slug="jsp", name_ja="日本病理学会", name_en="The Japanese Society of Pathology")
    jges = SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会", name_en="Japan Gastroenterological Endoscopy Society")
    now = timezone.now()
    wsi = _published(society=jsp, slug="gastric-wsi", title_ja="胃生検病理標本", modality="pathology_wsi",
                     annotation_granularity="cell_outline", access_tier="commercial",
                     disease_areas="胃がん、胃炎", published_at=now - timedelta(days=2))
    endo = _published(society=jges, slug="colon-endo", title_ja="大腸内視鏡画像", modality="endoscopy",
                      annotation_granularity="rectangle", published_at=now - timedelta(days=1))
    DatasetFactory(society=jsp, slug="draft-set", status=DatasetStatus.DRAFT)
    release = make_release(wsi, [
        FileSpec(A, date(2021, 5, 1), path="x/one.svs"),
        FileSpec(B, date(2022, 5, 1), path="y/two.svs"),
    ], store=False)
    return {"wsi": wsi, "endo": endo, "release": release}


def test_api_dataset_list_is_public_and_lists_published_only(client, catalogue):
    response = client.get("/api/v1/datasets/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [row["slug"] for row in body["results"]] == ["colon-endo", "gastric-wsi"]
    wsi = body["results"][1]
    assert wsi["society"] == {"slug": "jsp", "name_ja": "日本病理学会", "name_en": "The Japanese Society of Pathology"}
    assert wsi["disease_areas"] == ["胃がん", "胃炎"]
    assert wsi["commercial_use_allowed"] is True
    assert wsi["newest_release_version"] == 1
    assert wsi["url"] == "/datasets/gastric-wsi/"
    assert body["results"][0]["newest_release_version"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"society": "jges"}, ["colon-endo"]),
        ({"modality": "pathology_wsi"}, ["gastric-wsi"]),
        ({"granularity": "rectangle"}, ["colon-endo"]),
        ({"commercial": "true"}, ["gastric-wsi"]),
        ({"q": "大腸"}, ["colon-endo"]),
        ({"q": "胃", "commercial": "true", "society": "jsp", "modality": "pathology_wsi"}, ["gastric-wsi"]),
        ({"q": "病理", "society": "jges"}, []),
    ],
)
def test_api_dataset_list_filters(client, catalogue, params, expected):
    response = client.get("/api/v1/datasets/", params)

    assert [row["slug"] for row in response.json()["results"]] == expected


def test_api_dataset_list_bad_filter_is_400(client, catalogue):
    response = client.get("/api/v1/datasets/", {"modality": "telepathy"})

    assert response.status_code == 400
    assert "modality" in response.json()["errors"]


@pytest.mark.parametrize("count", [3, 30])
def test_api_dataset_list_query_count_is_fixed(client, db, count, django_assert_num_queries):
    society = SocietyFactory()
    for _ in range(count):
        dataset = _published(society=society)
        make_release(dataset, [FileSpec(A, date(2021, 1, 1))], store=False)
        make_release(dataset, [FileSpec(B, date(2022, 1, 1))], store=False)

    with django_assert_num_queries(2):  # count, page
        response = client.get("/api/v1/datasets/")

    assert response.json()["count"] == count


def test_api_dataset_detail_has_releases_and_published_notices(client, catalogue):
    notice = published_notice(catalogue["wsi"])

    response = client.get("/api/v1/datasets/gastric-wsi/")

    assert response.status_code == 200
    body = response.json()
    assert body["legal_status"] == "pseudonymised"
    assert body["protocol"]["number"] == catalogue["wsi"].protocol.number
    assert [release["version"] for release in body["releases"]] == [1]
    assert body["releases"][0]["manifest_url"] == f"/api/v1/releases/{catalogue['release'].pk}/manifest/"
    assert body["optout_notices"] == [{
        "reference": notice.reference,
        "title_ja": "胃生検病理標本に関するお知らせ",
        "title_en": "",
        "url": f"/optout/{notice.reference}/",
    }]


@pytest.mark.parametrize("slug", ["draft-set", "no-such-set"])
def test_api_dataset_detail_of_unpublished_is_404(client, catalogue, slug):
    assert client.get(f"/api/v1/datasets/{slug}/").status_code == 404


def test_api_dataset_detail_of_withdrawn_is_404(client, catalogue):
    DatasetFactory(slug="old-set", status=DatasetStatus.WITHDRAWN)

    assert client.get("/api/v1/datasets/old-set/").status_code == 404


def test_api_release_list_is_public_and_marks_withdrawn(client, catalogue):
    second = make_release(catalogue["wsi"], [FileSpec(A, date(2021, 5, 1))], store=False)
    second.status = DatasetRelease.Status.WITHDRAWN
    second.withdrawn_at = timezone.now()
    second.withdrawal_reason = "試験のため取下げ"
    second.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])

    response = client.get("/api/v1/datasets/gastric-wsi/releases/")

    assert response.status_code == 200
    assert [(r["version"], r["status"], r["file_count"]) for r in response.json()] == [
        (2, "withdrawn", 1), (1, "available", 2),
    ]


def test_api_release_list_of_draft_is_404(client, catalogue):
    assert client.get("/api/v1/datasets/draft-set/releases/").status_code == 404


@pytest.mark.parametrize("releases", [1, 6])
def test_api_release_list_query_count_is_fixed(client, catalogue, releases, django_assert_num_queries):
    for _ in range(releases):
        make_release(catalogue["endo"], [FileSpec(A, date(2021, 5, 1))], store=False)

    with django_assert_num_queries(2):
        client.get("/api/v1/datasets/colon-endo/releases/")


# --- Manifest ---------------------------------------------------------------------------------------


def _manifest(client, release, user=None, **params):  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": f"Token {_token(user)}"} if user else {}
    return client.get(f"/api/v1/releases/{release.pk}/manifest/", params, **headers)


def test_api_manifest_needs_sign_in(client, catalogue):
    response = _manifest(client, catalogue["release"])

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_api_manifest_without_grant_has_no_pseudonyms_or_links(client, catalogue, applicant):
    response = _manifest(client, catalogue["release"], applicant)

    assert response.status_code == 200
    body = response.json()
    assert body["includes_subjects"] is False
    assert body["links_available"] is False
    assert body["dataset"] == "gastric-wsi"
    assert body["version"] == 1
    assert body["status"] == "available"
    assert [row["path"] for row in body["results"]] == ["x/one.svs", "y/two.svs"]
    first = body["results"][0]
    assert set(first) == {"path", "size", "sha256", "media_type", "modality", "study_date", "annotation_path",
                          "is_annotation", "subject_pseudonym", "link"}
    assert first["study_date"] == "2021-05-01"
    assert first["modality"] == "pathology_wsi"
    assert all(row["subject_pseudonym"] is None and row["link"] is None for row in body["results"])
    assert A not in response.content.decode()


def test_api_manifest_with_active_grant_has_pseudonyms(client, catalogue, applicant):
    active_grant([applicant], [catalogue["release"]])

    body = _manifest(client, catalogue["release"], applicant).json()

    assert body["includes_subjects"] is True
    assert body["links_available"] is False
    assert [row["subject_pseudonym"] for row in body["results"]] == [A, B]
    assert [row["link"] for row in body["results"]] == [None, None]


def test_api_manifest_grant_on_another_release_gives_no_pseudonyms(client, catalogue, applicant):
    other = make_release(catalogue["endo"], [FileSpec(A, date(2021, 5, 1))], store=False)
    active_grant([applicant], [other])

    body = _manifest(client, catalogue["release"], applicant).json()

    assert body["includes_subjects"] is False
    assert [row["subject_pseudonym"] for row in body["results"]] == [None, None]


def test_api_manifest_expired_or_revoked_grant_gives_no_pseudonyms(client, catalogue, applicant, outsider):
    expired = active_grant([applicant], [catalogue["release"]])
    Grant.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    revoked = active_grant([outsider], [catalogue["release"]])
    Grant.objects.filter(pk=revoked.pk).update(status=Grant.Status.REVOKED, revoked_at=timezone.now())

    for user in (applicant, outsider):
        body = _manifest(client, catalogue["release"], user).json()
        assert body["includes_subjects"] is False
        assert [row["subject_pseudonym"] for row in body["results"]] == [None, None]


def test_api_manifest_of_draft_dataset_release_is_404(client, catalogue, applicant):
    draft_release = make_release(DatasetFactory(slug="draft-two"), [FileSpec(A, date(2021, 5, 1))], store=False)

    assert _manifest(client, draft_release, applicant).status_code == 404


def test_api_manifest_pages_by_cursor(client, catalogue, applicant):
    release = make_release(catalogue["endo"], [FileSpec(A, path=f"f/{index:03d}.png") for index in range(5)],
                           store=False)

    first = _manifest(client, release, applicant, page_size=2).json()
    second = client.get(first["next"], HTTP_AUTHORIZATION=f"Token {_token(applicant)}").json()

    assert [row["path"] for row in first["results"]] == ["f/000.png", "f/001.png"]
    assert [row["path"] for row in second["results"]] == ["f/002.png", "f/003.png"]
    assert second["includes_subjects"] is False


@pytest.mark.parametrize("files", [2, 40])
def test_api_manifest_query_count_is_fixed(client, catalogue, applicant, files, django_assert_num_queries):
    release = make_release(catalogue["endo"], [FileSpec(A, path=f"f/{i:03d}.png") for i in range(files)],
                           store=False)
    active_grant([applicant], [release])
    token = _token(applicant)

    # token and user, the user's other tokens (knox), three role look-ups for the MFA rule,
    # the release, the grant check, the page of files
    with django_assert_num_queries(8):
        response = client.get(f"/api/v1/releases/{release.pk}/manifest/", HTTP_AUTHORIZATION=f"Token {token}")

    assert len(response.json()["results"]) == files


# --- Statistics and schema -------------------------------------------------------------------------


def test_api_statistics_is_public(client, catalogue):
    cache.delete(STATISTICS_CACHE_KEY)  # a Redis cache (CACHE_URL) is not emptied between tests

    response = client.get("/api/v1/statistics/")

    assert response.status_code == 200
    body = response.json()
    assert body["images"] == 2
    assert body["cases"] == 2
    assert [s["society"] for s in body["by_society"]] == ["jsp"]
    assert body["by_society"][0]["by_year"] == [
        {"year": 2021, "images": 1, "cases": 1}, {"year": 2022, "images": 1, "cases": 1},
    ]


def test_api_schema_of_catalogue_endpoints_has_no_warnings():
    """Generated from this app's endpoints alone, so that other apps' enums cannot interfere."""
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("portal.datasets.api_urls"))])

    schema = generator.get_schema(request=None, public=True)

    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache))
    assert sorted(schema["paths"]) == [
        "/api/v1/datasets/", "/api/v1/datasets/{slug}/", "/api/v1/datasets/{slug}/releases/",
        "/api/v1/releases/{id}/manifest/", "/api/v1/statistics/",
    ]
    parameters = {p["name"] for p in schema["paths"]["/api/v1/datasets/"]["get"]["parameters"]}
    assert parameters == {"q", "society", "modality", "granularity", "commercial", "page"}
    manifest = schema["components"]["schemas"]["PaginatedManifestFileList"]
    assert {"includes_subjects", "links_available", "results"} <= set(manifest["properties"])
    assert {} not in schema["paths"]["/api/v1/releases/{id}/manifest/"]["get"]["security"]  # not anonymous
    assert {} in schema["paths"]["/api/v1/datasets/"]["get"]["security"]  # public


def test_api_schema_whole_builds_without_errors(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert "/api/v1/releases/{id}/manifest/" in response.json()["paths"]
