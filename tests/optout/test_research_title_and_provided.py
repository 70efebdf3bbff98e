"""Item ① of a notice (研究の名称) shows the research's title; a release is 提供中 only while its
dataset is published."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.datasets.models import DatasetStatus
from portal.ethics.models import ProtocolItem
from portal.optout import services
from tests.factories.datasets import DatasetFactory, FileSpec, active_grant, make_release
from tests.optout.test_notices import complete_fields

pytestmark = pytest.mark.django_db

RESEARCH_TITLE = "胃生検病理画像を用いた診断支援AIの開発研究"
NOTICE_TITLE = "日本病理学会：臨床画像データベースの研究利用に関するお知らせ"


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    dataset = DatasetFactory(society=society, slug="jsp-endo", status="published")
    ProtocolItem.objects.create(version=dataset.protocol.versions.get(number=1), key="title", body=RESEARCH_TITLE)
    return dataset


def _item(body: str, key: str) -> str:
    match = re.search(rf'<dt data-item="{key}">(.*?)</dt>\s*<dd>(.*?)</dd>', body, re.S)
    assert match, f"no item {key}"
    return f"{match.group(1).strip()}: {match.group(2).strip()}"


def test_notice_preview_shows_the_research_title_under_item_one(client, society, society_admin, dataset):
    notice = services.optout_notice_create(
        society=society, protocol=dataset.protocol, datasets=[dataset], by=society_admin,
        **(complete_fields() | {"title_ja": NOTICE_TITLE}),
    )
    client.force_login(society_admin)

    body = client.get(reverse("optout:notice_detail", args=[notice.pk])).content.decode()

    assert _item(body, "title") == f"研究の名称: {RESEARCH_TITLE}"
    assert f"<h3>{NOTICE_TITLE}</h3>" in body


def test_notice_preview_falls_back_to_the_notice_title_without_a_protocol_title(client, society, society_admin):
    dataset = DatasetFactory(society=society, status="published")
    notice = services.optout_notice_create(
        society=society, protocol=dataset.protocol, datasets=[dataset], by=society_admin,
        **(complete_fields() | {"title_ja": NOTICE_TITLE}),
    )
    client.force_login(society_admin)

    body = client.get(reverse("optout:notice_detail", args=[notice.pk])).content.decode()

    assert _item(body, "title") == f"研究の名称: {NOTICE_TITLE}"


def test_public_notice_shows_the_research_title_under_item_one(client, society, society_admin, dataset):
    notice = services.optout_notice_create(
        society=society, protocol=dataset.protocol, datasets=[dataset], by=society_admin,
        **(complete_fields() | {"title_ja": NOTICE_TITLE}),
    )
    services.optout_notice_publish(notice=notice, by=society_admin)
    notice.refresh_from_db()

    body = client.get(reverse("optout_public:detail", args=[notice.reference])).content.decode()

    assert _item(body, "title") == f"研究の名称: {RESEARCH_TITLE}"


# --- 提供中 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "shown"), [
    (DatasetStatus.PUBLISHED, "提供中"),
    (DatasetStatus.DRAFT, "未提供（データセット未公開）"),
    (DatasetStatus.WITHDRAWN, "提供終了（データセット取下げ）"),
])
def test_release_status_on_the_dataset_page_follows_the_dataset(client, society, society_admin, status, shown):
    dataset = DatasetFactory(society=society, status=status)
    release = make_release(dataset, [FileSpec("a" * 32)], store=False)
    client.force_login(society_admin)

    detail = client.get(reverse("datasets:detail", args=[dataset.pk])).content.decode()
    release_page = client.get(reverse("datasets:release_detail", args=[release.pk])).content.decode()

    assert f"<td>{shown}</td>" in detail
    assert f'data-status="available">{shown}</span>' in release_page


def test_withdrawn_release_is_shown_withdrawn_whatever_the_dataset(society):
    dataset = DatasetFactory(society=society, status=DatasetStatus.DRAFT)
    release = make_release(dataset, [FileSpec("a" * 32)], store=False)
    release.status = release.Status.WITHDRAWN
    release.withdrawn_at = timezone.now()
    release.withdrawal_reason = "試験のため取下げ"
    release.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])

    assert release.is_provided is False
    assert release.get_shown_status_display() == "Withdrawn"


def test_dataset_list_counts_provided_releases_only_of_published_datasets(client, society, society_admin):
    draft = DatasetFactory(society=society, status=DatasetStatus.DRAFT, slug="draft-one")
    published = DatasetFactory(society=society, status=DatasetStatus.PUBLISHED, slug="published-one")
    make_release(draft, [FileSpec("a" * 32)], store=False)
    make_release(published, [FileSpec("b" * 32)], store=False)
    client.force_login(society_admin)

    response = client.get(reverse("datasets:list"))

    counts = {d.slug: (d.release_count, d.available_release_count) for d in response.context["datasets"]}
    assert counts == {"draft-one": (1, 0), "published-one": (1, 1)}


def test_catalogue_release_of_published_dataset_is_provided(client, society):
    dataset = DatasetFactory(society=society, status=DatasetStatus.PUBLISHED, slug="jsp-pub")
    make_release(dataset, [FileSpec("a" * 32)], store=False)

    body = client.get(reverse("catalogue:detail", args=["jsp-pub"])).content.decode()

    assert '<span class="badge badge--status">提供中</span>' in body


def test_grant_page_shows_a_release_of_a_withdrawn_dataset_as_not_provided(client, society, applicant):
    dataset = DatasetFactory(society=society, status=DatasetStatus.PUBLISHED)
    release = make_release(dataset, [FileSpec("a" * 32)], store=False)
    grant = active_grant([applicant], [release])
    dataset.status = DatasetStatus.WITHDRAWN
    dataset.withdrawn_at = timezone.now()
    dataset.withdrawal_reason = "試験のため取下げ"
    dataset.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])
    client.force_login(applicant)

    body = client.get(reverse("access:grant_detail", args=[grant.pk])).content.decode()

    assert "<td>提供終了（データセット取下げ）</td>" in body
    assert "<td>提供中</td>" not in body
