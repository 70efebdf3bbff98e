"""The public opt-out pages and API: no sign-in, every a3 item, counts never identities, fixed queries."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from portal.optout import services
from portal.optout.models import OptOutNoticeVersion, OptOutRequest
from tests.factories import SocietyFactory, UserFactory
from tests.factories.datasets import DatasetFactory, published_notice
from tests.optout.test_notices import complete_fields

pytestmark = pytest.mark.django_db

TITLE = "消化器内視鏡画像データベースへの診療情報の提供について"


@pytest.fixture
def notice(society, society_admin):  # type: ignore[no-untyped-def]
    dataset = DatasetFactory(society=society, slug="jsp-endo", title_ja="胃内視鏡画像", status="published")
    notice = services.optout_notice_create(
        society=society, protocol=dataset.protocol, datasets=[dataset], by=society_admin,
        **complete_fields(title_ja=TITLE, title_en="Providing endoscopy images",
                          purpose_and_method_en="Purpose in English", contact_ja="日本病理学会 事務局 03-1234-5678"),
    )
    services.optout_notice_publish(notice=notice, by=society_admin)
    return notice


def _requests(society, count):  # type: ignore[no-untyped-def]
    handler = UserFactory(is_staff=True)
    for n in range(count):
        OptOutRequest.objects.create(
            reference=f"REQ-T-{society.slug}-{n}", society=society, subject_pseudonym=f"{n:032x}",
            received_at=timezone.now() - timedelta(days=n), channel="phone", requester_type="subject",
            identity_verification="照合", extent="future_only", action_taken="stop_use", handled_by=handler,
        )


def _pdf_text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).replace(" ", "")


def test_public_list_without_login_shows_published_notices_and_counts_only(client, society, notice):
    draft = services.optout_notice_create(
        society=society, protocol=notice.protocol, by=notice.created_by, title_ja="下書きのお知らせ"
    )
    _requests(society, 3)

    response = client.get(reverse("optout_public:list"))

    html = response.content.decode()
    assert response.status_code == 200
    assert [n.reference for n in response.context["notices"]] == [notice.reference]
    assert TITLE in html
    assert draft.reference not in html
    assert response.context["total_requests"] == 3
    assert [(s.slug, n) for s, n in response.context["counts"]] == [("jsp", 3)]
    for pseudonym in OptOutRequest.objects.values_list("subject_pseudonym", flat=True):
        assert pseudonym not in html
    assert "REQ-T-" not in html


def test_public_list_filters_by_society(client, notice):
    other = published_notice(DatasetFactory(society=SocietyFactory(slug="jrs")))

    everything = client.get(reverse("optout_public:list"))
    only_jrs = client.get(reverse("optout_public:list"), {"society": "jrs"})

    assert {n.reference for n in everything.context["notices"]} == {notice.reference, other.reference}
    assert [n.reference for n in only_jrs.context["notices"]] == [other.reference]


def test_public_list_runs_a_fixed_number_of_queries(client, society, django_assert_num_queries):
    for _n in range(2):
        published_notice(DatasetFactory(society=society))
    _requests(society, 2)
    with django_assert_num_queries(4):
        client.get(reverse("optout_public:list"))

    for _n in range(6):
        published_notice(DatasetFactory(society=SocietyFactory()))
    _requests(SocietyFactory(), 5)
    with django_assert_num_queries(4):
        response = client.get(reverse("optout_public:list"))
    assert len(response.context["notices"]) == 8


def test_public_detail_without_login_shows_every_item_lead_and_history(client, society_admin, notice):
    services.optout_notice_new_version(notice=notice, change_summary="問い合わせ先を変更", by=society_admin)
    services.optout_notice_update_draft(notice=notice, by=society_admin, contact_ja="新窓口 03-9999-0000")
    services.optout_notice_publish(notice=notice, by=society_admin)

    response = client.get(reverse("optout_public:detail", args=[notice.reference]))

    html = response.content.decode()
    assert response.status_code == 200
    shown = [item.key for item, _text in response.context["items"]]
    assert shown == [key for key, _required in OptOutNoticeVersion.ITEMS]  # ① 研究の名称 included
    for key in ("purpose_and_method", "data_items", "providing_org_and_head", "acquisition_method", "pi_and_org",
                "user_scope", "data_controller", "stop_on_request", "how_to_request"):
        assert f"{key} の記載" in html
    assert "新窓口 03-9999-0000" in html
    assert [v.number for v in response.context["history"]] == [2, 1]
    assert "問い合わせ先を変更" in html
    assert str(response.context["lead"]) in html
    assert reverse("optout_public:poster", args=[notice.reference]) in html
    assert "胃内視鏡画像" in html  # the dataset covered


def test_public_detail_in_english_uses_english_where_given(client, notice):
    client.cookies.load({"django_language": "en"})

    response = client.get(reverse("optout_public:detail", args=[notice.reference]), HTTP_ACCEPT_LANGUAGE="en")

    html = response.content.decode()
    assert "Providing endoscopy images" in html
    assert "Purpose in English" in html
    assert "data_items の記載" in html  # no English given: the Japanese stays


def test_public_detail_404_for_drafts_and_unknown(client, society, society_admin, notice):
    draft = services.optout_notice_create(
        society=society, protocol=notice.protocol, by=society_admin, title_ja="下書き"
    )

    assert client.get(reverse("optout_public:detail", args=[draft.reference])).status_code == 404
    assert client.get(reverse("optout_public:detail", args=["OPT-nope"])).status_code == 404
    assert client.get(reverse("optout_public:poster", args=[draft.reference])).status_code == 404


def test_withdrawn_notice_stays_readable_marked_withdrawn_without_poster(client, society_admin, notice):
    services.optout_notice_withdraw(notice=notice, reason="研究終了", by=society_admin)

    detail = client.get(reverse("optout_public:detail", args=[notice.reference]))
    listing = client.get(reverse("optout_public:list"))

    assert detail.status_code == 200
    assert 'data-testid="withdrawn"' in detail.content.decode()
    assert list(listing.context["notices"]) == []
    assert client.get(reverse("optout_public:poster", args=[notice.reference])).status_code == 404


def test_poster_is_an_a4_pdf_with_the_title_and_the_page_address(client, settings, notice):
    settings.PORTAL_BASE_URL = "https://portal.example.jp"

    response = client.get(reverse("optout_public:poster", args=[notice.reference]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    width, height = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    text = _pdf_text(response.content)
    assert TITLE in text
    assert "日本病理学会事務局03-1234-5678" in text
    assert f"https://portal.example.jp/optout/{notice.reference}/" in text
    assert "お申し出により不利益を受けることはありません。" in text


# --- API --------------------------------------------------------------------------------------


def test_api_notice_list_is_public_with_fixed_queries(client, society, notice, django_assert_num_queries):
    for _n in range(4):
        published_notice(DatasetFactory(society=SocietyFactory()))

    with django_assert_num_queries(2):
        response = client.get("/api/v1/optout/notices/")

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 5
    mine = next(row for row in body["results"] if row["reference"] == notice.reference)
    assert mine == {
        "reference": notice.reference, "society": "jsp", "protocol": notice.protocol.number,
        "title_ja": TITLE, "title_en": "Providing endoscopy images", "version": 1,
        "published_at": mine["published_at"], "first_published_at": mine["first_published_at"],
    }


def test_api_notice_detail_gives_the_current_version_items(client, notice, django_assert_num_queries):
    with django_assert_num_queries(2):
        response = client.get(f"/api/v1/optout/notices/{notice.reference}/")

    body = response.json()
    assert response.status_code == 200
    assert body["datasets"] == ["jsp-endo"]
    items = {item["key"]: item for item in body["current_version"]["items"]}
    assert list(items) == [key for key, _required in OptOutNoticeVersion.ITEMS]
    assert items["purpose_and_method"] == {"key": "purpose_and_method", "required": True,
                                           "ja": "purpose_and_method の記載", "en": "Purpose in English"}
    assert items["foreign_provision_info"]["required"] is False


def test_api_notice_detail_404_for_draft_and_withdrawn(client, society, society_admin, notice):
    draft = services.optout_notice_create(society=society, protocol=notice.protocol, by=society_admin, title_ja="案")
    assert client.get(f"/api/v1/optout/notices/{draft.reference}/").status_code == 404
    services.optout_notice_withdraw(notice=notice, reason="終了", by=society_admin)
    assert client.get(f"/api/v1/optout/notices/{notice.reference}/").status_code == 404


def test_api_statistics_counts_by_society_and_year_without_identities(client, society, django_assert_num_queries):
    _requests(society, 3)
    old = OptOutRequest.objects.order_by("id").first()
    old.received_at = old.received_at.replace(year=2024)
    old.status = OptOutRequest.Status.CLOSED
    old.save()
    _requests(SocietyFactory(slug="jrs", name_ja="日本医学放射線学会", name_en="JRS"), 1)

    with django_assert_num_queries(1):
        response = client.get("/api/v1/optout/statistics/")

    year = timezone.localdate().year
    rows = [(r["society"], r["year"], r["requests"], r["closed"]) for r in response.json()]
    assert response.status_code == 200
    assert rows == [("jrs", year, 1, 0), ("jsp", 2024, 1, 1), ("jsp", year, 2, 0)]
    assert "subject_pseudonym" not in response.content.decode()
    for pseudonym in OptOutRequest.objects.values_list("subject_pseudonym", flat=True):
        assert pseudonym not in response.content.decode()
