"""Dataset management through the API: publish and withdraw as on the pages, with the same checks."""

from __future__ import annotations

import pytest

from portal.datasets.models import Dataset
from tests.factories import give_totp
from tests.factories.datasets import DatasetFactory, published_notice
from tests.factories.ethics import permitted_protocol
from tests.support.api_caller import Caller

pytestmark = pytest.mark.django_db


def test_dataset_published_and_withdrawn_by_society_admin_through_api(client, society, society_admin):
    dataset = DatasetFactory(society=society)
    published_notice(dataset)
    admin = Caller(client, society_admin)

    published = admin.post(f"/api/v1/manage/datasets/{dataset.pk}/publish/")
    assert published.status_code == 200, published.content
    assert published.json()["status"] == "published"
    withdrawn = admin.post(f"/api/v1/manage/datasets/{dataset.pk}/withdraw/", {"reason": "同意撤回への対応"})

    assert withdrawn.status_code == 200, withdrawn.content
    assert withdrawn.json()["status"] == "withdrawn"


def test_dataset_publish_by_steward_is_403_by_outsider_404_and_twice_400(client, society, society_admin, steward,
                                                                          outsider):
    give_totp(outsider)
    dataset = DatasetFactory(society=society)
    published_notice(dataset)

    assert Caller(client, steward).post(f"/api/v1/manage/datasets/{dataset.pk}/publish/").status_code == 403
    assert Caller(client, outsider).post(f"/api/v1/manage/datasets/{dataset.pk}/publish/").status_code == 404
    assert Dataset.objects.get(pk=dataset.pk).status == "draft"
    Caller(client, society_admin).post(f"/api/v1/manage/datasets/{dataset.pk}/publish/")
    published_at = Dataset.objects.get(pk=dataset.pk).published_at
    again = Caller(client, society_admin).post(f"/api/v1/manage/datasets/{dataset.pk}/publish/")

    assert again.status_code == 400
    assert Dataset.objects.get(pk=dataset.pk).published_at == published_at


def _fields(protocol, **overrides):  # type: ignore[no-untyped-def]
    return {
        "slug": "jsp-colon", "title_ja": "大腸病理画像", "modality": "pathology_wsi", "body_part": "大腸",
        "annotation_granularity": "diagnosis", "annotation_format": "JSON", "case_count": 5, "image_count": 10,
        "collection_start": "2020-01-01", "collection_end": "2021-01-01", "legal_status": "pseudonymised",
        "protocol": protocol.pk, "access_tier": "controlled",
    } | overrides


def test_dataset_created_and_edited_through_api(client, society, society_admin):
    protocol = permitted_protocol()
    admin = Caller(client, society_admin)

    created = admin.post("/api/v1/manage/datasets/", {"society": society.slug, **_fields(protocol)})
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    edited = admin.patch(f"/api/v1/manage/datasets/{pk}/", {"title_ja": "大腸生検病理画像"})

    assert edited.status_code == 200, edited.content
    dataset = Dataset.objects.get(pk=pk)
    assert (dataset.society, dataset.protocol, dataset.status, dataset.title_ja) == (
        society, protocol, "draft", "大腸生検病理画像")


def test_dataset_slug_of_published_dataset_is_400_and_unchanged(client, society, society_admin):
    dataset = DatasetFactory(society=society, slug="jsp-gastric")
    published_notice(dataset)
    Caller(client, society_admin).post(f"/api/v1/manage/datasets/{dataset.pk}/publish/")

    response = Caller(client, society_admin).patch(f"/api/v1/manage/datasets/{dataset.pk}/", {"slug": "other"})

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"slug"}
    assert Dataset.objects.get(pk=dataset.pk).slug == "jsp-gastric"
