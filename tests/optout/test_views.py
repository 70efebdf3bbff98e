"""The society's opt-out pages: who may see and do what, the forms, and fixed query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.optout import services
from portal.optout.models import OptOutNotice, OptOutNoticeVersion, OptOutRequest
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory, give_totp
from tests.factories.datasets import DatasetFactory, FileSpec, active_grant, make_release
from tests.optout.test_notices import complete_fields
from tests.optout.test_requests import RAW_ID, _form_data, pseudonym_of, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=society, slug="jsp-endo", status="published")


@pytest.fixture
def notice(society, society_admin, dataset):  # type: ignore[no-untyped-def]
    return services.optout_notice_create(
        society=society, protocol=dataset.protocol, datasets=[dataset], by=society_admin, **complete_fields()
    )


def _notice_post(dataset, **overrides):  # type: ignore[no-untyped-def]
    data = {key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in complete_fields().items()}
    data |= {"datasets": [dataset.pk]}
    return data | overrides


def _other_admin():  # type: ignore[no-untyped-def]
    user = UserFactory(email="admin@other.example.jp")
    SocietyMembershipFactory(society=SocietyFactory(), user=user, role="admin")
    give_totp(user)
    return user


# --- Notices ----------------------------------------------------------------------------------


def test_admin_creates_edits_previews_and_publishes_a_notice(client, society, society_admin, dataset):
    client.force_login(society_admin)
    client.cookies["django_language"] = "en"  # the checklist's wording is asserted in English

    created = client.post(reverse("optout:notice_create"), _notice_post(
        dataset, society=society.pk, protocol=dataset.protocol.pk, contact_ja=""))

    notice = OptOutNotice.objects.get()
    assert created.status_code == 302
    assert created["Location"] == reverse("optout:notice_detail", args=[notice.pk])
    preview = client.get(created["Location"])
    assert preview.status_code == 200
    assert [str(p) for p in preview.context["problems"]] == ["Missing (in Japanese): Contact for enquiries"]

    refused = client.post(reverse("optout:notice_publish", args=[notice.pk]))
    notice.refresh_from_db()
    assert refused.status_code == 302
    assert notice.status == OptOutNotice.Status.DRAFT

    edited = client.post(reverse("optout:notice_edit", args=[notice.pk]), _notice_post(dataset, contact_ja="窓口"))
    assert edited.status_code == 302
    client.post(reverse("optout:notice_publish", args=[notice.pk]))

    notice.refresh_from_db()
    assert notice.status == OptOutNotice.Status.PUBLISHED
    assert notice.current_version.contact_ja == "窓口"
    assert list(notice.datasets.all()) == [dataset]


def test_new_version_and_withdraw_through_the_pages(client, society_admin, dataset, notice):
    services.optout_notice_publish(notice=notice, by=society_admin)
    client.force_login(society_admin)

    started = client.post(reverse("optout:notice_new_version", args=[notice.pk]), {"change_summary": "窓口変更"})

    assert started["Location"] == reverse("optout:notice_edit", args=[notice.pk])
    assert notice.versions.filter(status="draft").get().number == 2
    warning = client.get(reverse("optout:notice_withdraw", args=[notice.pk]))
    assert [d.pk for d in warning.context["left"]] == [dataset.pk]
    assert 'data-testid="withdraw-warning"' in warning.content.decode()

    done = client.post(reverse("optout:notice_withdraw", args=[notice.pk]), {"reason": "研究終了"}, follow=True)

    notice.refresh_from_db()
    assert notice.status == OptOutNotice.Status.WITHDRAWN
    assert any(m.level_tag == "warning" for m in done.context["messages"])


def test_edit_page_of_a_published_notice_without_draft_redirects(client, society_admin, notice):
    services.optout_notice_publish(notice=notice, by=society_admin)
    client.force_login(society_admin)
    before = list(OptOutNoticeVersion.objects.values_list("pk", "status", "title_ja"))

    response = client.post(reverse("optout:notice_edit", args=[notice.pk]), {"title_ja": "書き換え"})

    assert response.status_code == 302
    assert list(OptOutNoticeVersion.objects.values_list("pk", "status", "title_ja")) == before


def test_notice_pages_refuse_outsiders_stewards_and_other_admins(client, steward, outsider, notice):
    pages = [
        reverse("optout:notice_detail", args=[notice.pk]), reverse("optout:notice_edit", args=[notice.pk]),
        reverse("optout:notice_withdraw", args=[notice.pk]),
    ]
    before = (list(OptOutNotice.objects.values_list("status", "withdrawn_at")), AuditEvent.objects.count())
    for user in (steward, outsider, _other_admin()):
        client.force_login(user)
        before = (before[0], AuditEvent.objects.count())
        for url in pages:
            assert client.get(url).status_code == 404, (user, url)
        assert client.post(reverse("optout:notice_publish", args=[notice.pk])).status_code == 404
        assert client.post(reverse("optout:notice_withdraw", args=[notice.pk]), {"reason": "x"}).status_code == 404
        assert (list(OptOutNotice.objects.values_list("status", "withdrawn_at")), AuditEvent.objects.count()) == before
    client.force_login(outsider)
    assert client.get(reverse("optout:notice_list")).status_code == 403
    assert client.get(reverse("optout:notice_create")).status_code == 403


def test_notice_pages_need_a_login(client, notice):
    response = client.get(reverse("optout:notice_list"))

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_notice_list_runs_a_fixed_number_of_queries(client, society, society_admin, dataset,
                                                    django_assert_num_queries):
    client.force_login(society_admin)
    services.optout_notice_create(society=society, protocol=dataset.protocol, by=society_admin, title_ja="一")
    client.get(reverse("optout:notice_list"))
    with django_assert_num_queries(8) as few:
        client.get(reverse("optout:notice_list"))
    for n in range(5):
        services.optout_notice_create(society=society, protocol=dataset.protocol, by=society_admin, title_ja=f"{n}")
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(reverse("optout:notice_list"))
    assert len(response.context["notices"]) == 6


# --- Requests ---------------------------------------------------------------------------------


def test_request_list_is_paginated_with_fixed_queries(client, society, society_admin, django_assert_num_queries):
    client.force_login(society_admin)
    record(society, society_admin, extent="future_only")
    client.get(reverse("optout:request_list"))
    with django_assert_num_queries(9) as few:
        client.get(reverse("optout:request_list"))
    for n in range(55):
        record(society, society_admin, patient_id=f"P{n}", extent="future_only")

    with django_assert_num_queries(len(few.captured_queries)):
        first = client.get(reverse("optout:request_list"))
    second = client.get(reverse("optout:request_list"), {"page": 2})

    assert len(first.context["requests"]) == 50
    assert len(second.context["requests"]) == 6
    assert 'data-testid="requests"' in first.content.decode()


def test_request_list_shows_only_the_users_societies(client, society, society_admin):
    record(society, society_admin, extent="future_only")
    other = _other_admin()
    client.force_login(other)

    response = client.get(reverse("optout:request_list"))

    assert list(response.context["requests"]) == []


def test_request_pages_refuse_outsiders_and_other_societies(client, society, society_admin, outsider):
    request = record(society, society_admin, extent="future_only")
    detail = reverse("optout:request_detail", args=[request.reference])
    for user in (outsider, _other_admin()):
        client.force_login(user)
        before = (OptOutRequest.objects.values_list("status", "requester_notified_at").get(), AuditEvent.objects.count())
        assert client.get(detail).status_code == 404
        assert client.post(reverse("optout:request_notify", args=[request.reference]),
                           {"notified_at": "2026-01-01T10:00"}).status_code == 404
        assert client.post(reverse("optout:request_close", args=[request.reference])).status_code == 404
        assert (OptOutRequest.objects.values_list("status", "requester_notified_at").get(),
                AuditEvent.objects.count()) == before
    client.force_login(outsider)
    assert client.get(reverse("optout:request_list")).status_code == 403
    assert client.get(reverse("optout:request_create")).status_code == 403
    assert client.post(reverse("optout:request_create"), _form_data(society)).status_code == 403
    assert OptOutRequest.objects.count() == 1


def test_steward_records_and_handles_a_request_through_the_pages(client, society, steward, django_capture_on_commit_callbacks):
    subject = pseudonym_of()
    release = make_release(DatasetFactory(society=society), [FileSpec(subject)])
    holder = UserFactory(email="holder@company.example.jp")
    active_grant([holder], [release])
    client.force_login(steward)

    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(reverse("optout:request_create"), _form_data(society))

    request = OptOutRequest.objects.get()
    detail = client.get(created["Location"])
    assert request.status == OptOutRequest.Status.AWAITING_DELETION
    assert [str(r) for r in detail.context["releases"]] == [str(release)]
    assert detail.context["pending"] == 1
    assert detail.context["may_close"] is False
    assert RAW_ID not in detail.content.decode()

    notified = client.post(reverse("optout:request_notify", args=[request.reference]),
                           {"notified_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")})
    assert notified.status_code == 302
    refused = client.post(reverse("optout:request_close", args=[request.reference]), follow=True)
    request.refresh_from_db()
    assert request.status == OptOutRequest.Status.AWAITING_DELETION
    assert any(m.level_tag == "error" for m in refused.context["messages"])

    client.force_login(holder)
    confirmation = request.deletions.get()
    client.post(reverse("optout:deletion_confirm", args=[confirmation.pk]), {"note": "全複製を削除"})
    client.force_login(steward)
    page = client.get(reverse("optout:request_detail", args=[request.reference]))
    assert page.context["may_close"] is True
    client.post(reverse("optout:request_close", args=[request.reference]))

    request.refresh_from_db()
    assert request.status == OptOutRequest.Status.CLOSED


def test_notify_form_rejects_a_future_date_and_changes_nothing(client, society, society_admin):
    request = record(society, society_admin, extent="future_only")
    client.force_login(society_admin)

    response = client.post(reverse("optout:request_notify", args=[request.reference]),
                           {"notified_at": (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")})

    assert response.status_code == 200
    assert list(response.context["notify_form"].errors) == ["notified_at"]
    request.refresh_from_db()
    assert request.requester_notified_at is None


def test_deletions_page_runs_a_fixed_number_of_queries(client, society, society_admin, django_assert_num_queries):
    holder = UserFactory()
    subjects = [pseudonym_of(f"P{n}") for n in range(4)]
    release = make_release(DatasetFactory(society=society), [FileSpec(s) for s in subjects])
    active_grant([holder], [release])
    record(society, society_admin, patient_id="P0")
    client.force_login(holder)
    client.get(reverse("optout:deletions"))
    with django_assert_num_queries(6) as few:
        client.get(reverse("optout:deletions"))
    for n in range(1, 4):
        record(society, society_admin, patient_id=f"P{n}")

    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(reverse("optout:deletions"))
    assert len(response.context["pending"]) == 4


def test_record_view_hides_the_patient_id_from_error_reports(rf, society, society_admin):
    from portal.optout.views import request_create

    request = rf.post(reverse("optout:request_create"), _form_data(society, identity_verification=""))
    request.user = society_admin
    request._messages = None  # type: ignore[attr-defined]

    request_create(request)

    assert request.sensitive_post_parameters == ("patient_id", "institution_code")  # type: ignore[attr-defined]


def test_operator_admin_lists_opt_out_records_read_only(client, society, society_admin, notice):
    operator = UserFactory(is_staff=True, is_superuser=True)
    give_totp(operator)
    record(society, society_admin, extent="future_only")
    client.force_login(operator)

    for name in ("optoutnotice", "optoutrequest", "deletionconfirmation"):
        assert client.get(reverse(f"admin:optout_{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:optout_optoutrequest_add")).status_code == 403
