"""Warnings 90/60/30 days before a grant or what it rests on lapses, and the one-click extension
(延長申請) they link to: the pre-filled form and API, and the steward's view of what changes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from portal.access.amendment_prefill import add_months, amendment_changes, extension_prefill
from portal.access.models import Grant, GrantAmendment, LapseWarning, SecurityAnswer, UsageReport
from portal.access.services.amendments import expiry_for, grant_amendment_request, last_day_of
from portal.access.services.warnings import (
    Lapse,
    lapse_warning_send,
    lapse_warnings_send,
    threshold_for,
)
from portal.audit.models import AuditEvent
from portal.ethics.models import Protocol
from portal.notifications.models import Notification
from tests.access.test_links import World, make_world
from tests.factories import SocietyMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

FAR = 2000  # days: a lapse that no window reaches


@pytest.fixture
def world(society, settings, tmp_path) -> World:  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    w = make_world(society)
    # Only what a test sets lapses within reach: the grant ends in 200 days, the rest in FAR days.
    grant = w.grant
    grant.expires_at = expiry_for(timezone.localdate() + timedelta(days=199))
    grant.save(update_fields=["expires_at"])
    far = timezone.localdate() + timedelta(days=FAR)
    Protocol.objects.filter(pk=grant.access_request.ethics_protocol_id).update(approved_until=far)
    Protocol.objects.filter(pk=w.release.dataset.protocol_id).update(approved_until=far)
    SecurityAnswer.objects.filter(access_request=grant.access_request).update(
        answered_at=timezone.now() + timedelta(days=FAR))
    return w


@pytest.fixture(autouse=True)
def _english_pages(client):  # type: ignore[no-untyped-def]
    client.cookies["django_language"] = "en"


def _at(day: date) -> dict[str, object]:
    """The service's clock on ``day`` at 07:50 in Japan time (when beat runs it)."""
    return {"today": day, "now": timezone.make_aware(datetime.combine(day, time(7, 50)))}


def _sent() -> list[tuple[str, str, date, int]]:
    return sorted(LapseWarning.objects.values_list("kind", "subject", "lapses_on", "days_before"))


# --- thresholds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("days_left", "expected"), [
    (200, None), (91, None), (90, 90), (89, 90), (61, 90), (60, 60), (31, 60), (30, 30), (1, 30), (0, None), (-3, None),
])
def test_threshold_is_the_nearest_not_yet_passed(days_left, expected):
    assert settings.PORTAL_LAPSE_WARNING_DAYS == [30, 60, 90]
    assert threshold_for(days_left) == expected


def test_grant_expiry_warned_at_90_60_30_days_once_each(world, steward, mailoutbox,
                                                        django_capture_on_commit_callbacks):
    expiry = timezone.localdate(world.grant.expires_at)  # the first day it no longer holds
    runs = {}
    for days in (91, 90, 90, 61, 60, 60, 31, 30, 30):
        with django_capture_on_commit_callbacks(execute=True):
            sent = lapse_warnings_send(**_at(expiry - timedelta(days=days)))
        runs.setdefault(days, []).append([w.days_before for w in sent])
    assert runs == {91: [[]], 90: [[90], []], 61: [[]], 60: [[60], []], 31: [[]], 30: [[30], []]}
    assert _sent() == [("grant_expiry", "", expiry, 30), ("grant_expiry", "", expiry, 60),
                       ("grant_expiry", "", expiry, 90)]
    # Each warning once to each of the three people: in their inbox, and by mail.
    assert len(mailoutbox) == 9
    last_day = (expiry - timedelta(days=1)).isoformat()
    assert {m.subject for m in mailoutbox} == {  # in the portal's language (Japanese)
        f"[データ利用] 利用許可 {world.grant.reference} の利用期間は {last_day} までです"}
    extension = f"{settings.PORTAL_BASE_URL}/access/grants/{world.grant.pk}/amendments/new/?extend=1"
    assert extension in mailoutbox[0].body
    assert f"{settings.PORTAL_BASE_URL}/access/grants/{world.grant.pk}/" in mailoutbox[0].body
    inbox = Notification.objects.filter(subject__startswith=f"利用許可 {world.grant.reference} の利用期間")
    assert sorted(inbox.values_list("recipient__email", flat=True)) == sorted(
        ["colleague@company.example.jp", "researcher@company.example.jp", "steward@jsp.example.jp"] * 3)
    assert set(inbox.values_list("url", flat=True)) == {f"/access/grants/{world.grant.pk}/"}
    assert AuditEvent.objects.filter(action="access.lapse_warning_sent").count() == 3


def test_grant_first_seen_late_gets_only_the_nearest_warning(world):
    expiry = timezone.localdate(world.grant.expires_at)
    assert [w.days_before for w in lapse_warnings_send(**_at(expiry - timedelta(days=45)))] == [60]
    assert lapse_warnings_send(**_at(expiry - timedelta(days=44))) == []
    assert _sent() == [("grant_expiry", "", expiry, 60)]


def test_recipients_are_the_holders_and_the_stewards_exactly(world, steward, society_admin, mailoutbox,
                                                            django_capture_on_commit_callbacks):
    second_steward = UserFactory(email="steward2@jsp.example.jp")
    SocietyMembershipFactory(society=world.grant.society, user=second_steward, role="steward")
    gone = UserFactory(email="gone@jsp.example.jp", is_active=False)
    SocietyMembershipFactory(society=world.grant.society, user=gone, role="steward")
    UserFactory(email="committee@jsp.example.jp")  # not related to the grant
    other_society_steward = UserFactory(email="steward@other.example.jp")
    SocietyMembershipFactory(user=other_society_steward, role="steward")
    expiry = timezone.localdate(world.grant.expires_at)
    with django_capture_on_commit_callbacks(execute=True):
        [warning] = lapse_warnings_send(**_at(expiry - timedelta(days=90)))
    expected = ["colleague@company.example.jp", "researcher@company.example.jp",
                "steward2@jsp.example.jp", "steward@jsp.example.jp"]
    assert warning.recipients == expected
    assert sorted(address for m in mailoutbox for address in m.to) == expected
    assert sorted(Notification.objects.values_list("recipient__email", flat=True)) == expected
    event = AuditEvent.objects.get(action="access.lapse_warning_sent")
    assert event.details == {"kind": "grant_expiry", "subject": "", "lapses_on": expiry.isoformat(),
                             "days_before": 90, "recipients": expected}


def test_applicant_who_is_not_a_named_user_is_told(world):
    applicant = UserFactory(email="office@company.example.jp")
    request = world.grant.access_request
    request.applicant = applicant
    request.save(update_fields=["applicant"])
    expiry = timezone.localdate(world.grant.expires_at)
    [warning] = lapse_warnings_send(**_at(expiry - timedelta(days=30)))
    assert warning.recipients == ["colleague@company.example.jp", "office@company.example.jp",
                                  "researcher@company.example.jp"]


def test_protocol_approval_warned_for_the_application_and_each_dataset(world, mailoutbox,
                                                                      django_capture_on_commit_callbacks):
    today = timezone.localdate()
    application = world.grant.access_request.ethics_protocol
    dataset = world.release.dataset.protocol
    Protocol.objects.filter(pk=application.pk).update(approved_until=today + timedelta(days=59))  # lapses in 60
    Protocol.objects.filter(pk=dataset.pk).update(approved_until=today + timedelta(days=88))  # lapses in 89
    with django_capture_on_commit_callbacks(execute=True):
        sent = lapse_warnings_send(**_at(today))
    assert sorted((w.kind, w.subject, w.days_before) for w in sent) == sorted([
        ("protocol_approval", application.number, 60), ("protocol_approval", dataset.number, 90)])
    assert lapse_warnings_send(**_at(today)) == []
    subjects = sorted({m.subject for m in mailoutbox})
    assert subjects == sorted(
        f"[データ利用] 利用許可 {world.grant.reference} の前提となる研究計画 {p.number} の倫理審査の承認期間は "
        f"{(today + timedelta(days=d)).isoformat()} までです" for p, d in ((application, 59), (dataset, 88)))


def test_renewed_approval_starts_a_new_series(world):
    today = timezone.localdate()
    protocol = world.grant.access_request.ethics_protocol
    Grant.objects.filter(pk=world.grant.pk).update(expires_at=expiry_for(today + timedelta(days=FAR)))
    Protocol.objects.filter(pk=protocol.pk).update(approved_until=today + timedelta(days=29))
    assert [w.days_before for w in lapse_warnings_send(**_at(today))] == [30]
    Protocol.objects.filter(pk=protocol.pk).update(approved_until=today + timedelta(days=29 + 365))
    assert lapse_warnings_send(**_at(today + timedelta(days=300))) == []
    assert [w.days_before for w in lapse_warnings_send(**_at(today + timedelta(days=305)))] == [90]


def test_security_reattestation_warned_a_year_after_the_last(world, mailoutbox, django_capture_on_commit_callbacks):
    attested = datetime(2026, 6, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    SecurityAnswer.objects.filter(access_request=world.grant.access_request).update(answered_at=attested)
    lapses_on = date(2027, 6, 1)
    grant = world.grant
    grant.expires_at = expiry_for(date(2028, 3, 31))
    grant.save(update_fields=["expires_at"])
    report = UsageReport.objects.create(grant=grant, kind=UsageReport.Kind.ANNUAL, due_on=date(2027, 4, 30),
                                        period_from=date(2026, 4, 1), period_to=date(2027, 3, 31))
    with django_capture_on_commit_callbacks(execute=True):
        sent = lapse_warnings_send(**_at(lapses_on - timedelta(days=60)))
    assert [(w.kind, w.lapses_on, w.days_before) for w in sent] == [("security_reattestation", lapses_on, 60)]
    assert mailoutbox[0].subject == (
        f"[データ利用] 利用許可 {grant.reference} のセキュリティ対策の年次再確認は 2027-06-01 に期限を迎えます")
    assert "年次利用報告を提出してください" in mailoutbox[0].body
    assert f"{settings.PORTAL_BASE_URL}/access/reports/{report.pk}/" in mailoutbox[0].body


def test_paused_grant_warned_ended_ones_not(world):
    expiry = timezone.localdate(world.grant.expires_at)
    Grant.objects.filter(pk=world.grant.pk).update(status=Grant.Status.PAUSED)
    assert len(lapse_warnings_send(**_at(expiry - timedelta(days=90)))) == 1
    for status in (Grant.Status.REVOKED, Grant.Status.EXPIRED, Grant.Status.ENDED):
        Grant.objects.filter(pk=world.grant.pk).update(
            status=status, revoked_at=timezone.now() if status == Grant.Status.REVOKED else None)
        assert lapse_warnings_send(**_at(expiry - timedelta(days=60))) == []
    assert LapseWarning.objects.count() == 1


def test_extension_approved_starts_a_new_series(world, steward):
    expiry = timezone.localdate(world.grant.expires_at)
    assert len(lapse_warnings_send(**_at(expiry - timedelta(days=30)))) == 1
    new_last = last_day_of(world.grant) + timedelta(days=200)
    world.grant.expires_at = expiry_for(new_last)
    world.grant.save(update_fields=["expires_at"])
    assert lapse_warnings_send(**_at(expiry - timedelta(days=30))) == []
    sent = lapse_warnings_send(**_at(new_last + timedelta(days=1) - timedelta(days=90)))
    assert [(w.lapses_on, w.days_before) for w in sent] == [(new_last + timedelta(days=1), 90)]


def test_a_second_send_of_the_same_warning_is_refused_by_the_constraint(world, mailoutbox,
                                                                       django_capture_on_commit_callbacks):
    lapse = Lapse(world.grant, LapseWarning.Kind.GRANT_EXPIRY, timezone.localdate(world.grant.expires_at))
    with django_capture_on_commit_callbacks(execute=True):
        assert lapse_warning_send(lapse=lapse, days_before=90) is not None
        assert lapse_warning_send(lapse=lapse, days_before=90) is None  # e.g. a second beat worker
    assert LapseWarning.objects.count() == 1
    assert len(mailoutbox) == 2  # the two named users, once each
    assert AuditEvent.objects.filter(action="access.lapse_warning_sent").count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        LapseWarning.objects.create(grant=world.grant, kind=lapse.kind, lapses_on=lapse.lapses_on, days_before=90)


def test_thresholds_come_from_the_setting(world, settings):
    settings.PORTAL_LAPSE_WARNING_DAYS = [14]
    expiry = timezone.localdate(world.grant.expires_at)
    assert lapse_warnings_send(**_at(expiry - timedelta(days=90))) == []
    assert [w.days_before for w in lapse_warnings_send(**_at(expiry - timedelta(days=14)))] == [14]


def test_beat_runs_the_task_daily():
    from celery.schedules import crontab

    from portal.access.tasks import send_lapse_warnings_task

    entry = settings.CELERY_BEAT_SCHEDULE["access-lapse-warnings"]
    assert entry == {"task": "access.send_lapse_warnings", "schedule": crontab(hour=7, minute=50)}
    assert send_lapse_warnings_task.name == "access.send_lapse_warnings"
    assert (send_lapse_warnings_task.time_limit, send_lapse_warnings_task.soft_time_limit) == (900, 840)


def test_task_sends_through_the_service(world):
    from portal.access.tasks import send_lapse_warnings_task

    Grant.objects.filter(pk=world.grant.pk).update(expires_at=expiry_for(timezone.localdate() + timedelta(days=20)))
    assert send_lapse_warnings_task.delay().get() == 1
    assert send_lapse_warnings_task.delay().get() == 0


# --- the one-click extension ----------------------------------------------------------------------


def test_add_months_keeps_the_day_or_takes_the_months_last():
    assert add_months(date(2026, 3, 31), 12) == date(2027, 3, 31)
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)


def test_prefill_is_the_usual_period_with_the_same_users(world):
    current = last_day_of(world.grant)
    prefill = extension_prefill(world.grant)
    assert prefill.as_data() == {
        "grant": world.grant.pk,
        "current_last_day": current.isoformat(),
        "new_expires_on": add_months(current, 12).isoformat(),
        "limit": world.grant.access_request.period_start.replace(
            year=world.grant.access_request.period_start.year + 3).isoformat(),
        "users_to_add": [],
        "users_to_remove": [],
        "reason": f"Extension of the period of use, which ends on {current.isoformat()}, with the same users "
                  "and purpose.",
        "users": ["colleague@company.example.jp", "researcher@company.example.jp"],
        "purpose": "Product development (including regulatory approval)",
    }


def test_prefill_stops_at_the_limit_of_the_period(world, settings):
    settings.PORTAL_EXTENSION_MONTHS = 60
    start = world.grant.access_request.period_start
    assert extension_prefill(world.grant).new_expires_on == start.replace(year=start.year + 3)
    world.grant.expires_at = expiry_for(start.replace(year=start.year + 3))
    world.grant.save(update_fields=["expires_at"])
    prefill = extension_prefill(world.grant)
    assert (prefill.new_expires_on, prefill.reason) == (None, "")


def test_prefilled_page_sends_the_extension_in_one_click(client, world):
    client.force_login(world.user)
    url = reverse("access:amendment_create", args=[world.grant.pk]) + "?extend=1"
    grant_page = client.get(reverse("access:grant_detail", args=[world.grant.pk])).content.decode()
    assert url in grant_page
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["form"]
    current = last_day_of(world.grant)
    assert form.initial == {"new_expires_on": add_months(current, 12),
                            "reason": f"Extension of the period of use, which ends on {current.isoformat()}, "
                                      "with the same users and purpose."}
    html = page.content.decode()
    assert f'value="{add_months(current, 12).isoformat()}"' in html
    assert 'data-testid="prefill-users">colleague@company.example.jp、researcher@company.example.jp<' in html
    assert 'data-testid="prefill-purpose">Product development (including regulatory approval)<' in html
    # Sending the form as it came: the extension, nobody added or removed.
    response = client.post(url, {"new_expires_on": add_months(current, 12).isoformat(),
                                 "reason": form.initial["reason"]})
    amendment = GrantAmendment.objects.get()
    assert response.status_code == 302
    assert (amendment.new_expires_on, amendment.users_to_add, list(amendment.users_removed.all())) == (
        add_months(current, 12), [], [])
    assert sorted(world.grant.users.values_list("email", flat=True)) == [
        "colleague@company.example.jp", "researcher@company.example.jp"]


def test_plain_page_is_not_prefilled(client, world):
    client.force_login(world.user)
    page = client.get(reverse("access:amendment_create", args=[world.grant.pk]))
    assert page.context["form"].initial == {}
    assert page.context["prefill"] is None


def _auth(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"HTTP_AUTHORIZATION": f"Token {AuthToken.objects.create(user)[1]}", "HTTP_ACCEPT_LANGUAGE": "en"}


def test_prefill_api_answers_the_same_values(client, world, steward):
    url = reverse("api-access-grant-extension-prefill", args=[world.grant.pk])
    response = client.get(url, **_auth(world.user))
    assert response.status_code == 200
    assert response.json() == extension_prefill(world.grant).as_data()
    assert client.get(url, **_auth(UserFactory())).status_code == 404
    assert client.get(url, **_auth(world.other)).status_code == 403  # a named user, not the applicant
    assert client.get(url, **_auth(steward)).status_code == 403
    assert client.get(url).status_code in (401, 403)
    assert GrantAmendment.objects.count() == 0


# --- what the steward sees ------------------------------------------------------------------------


def test_decision_page_shows_only_what_changes(client, world, steward):
    current = last_day_of(world.grant)
    amendment = grant_amendment_request(grant=world.grant, by=world.user,
                                        new_expires_on=add_months(current, 12), reason="延長")
    client.force_login(steward)
    page = client.get(reverse("access:amendment_detail", args=[amendment.pk]))
    assert page.status_code == 200
    changes = page.context["changes"]
    assert [(c.key, c.before, c.after) for c in changes if c.changed] == [
        ("last_day", current.isoformat(), add_months(current, 12).isoformat())]
    html = page.content.decode()
    table = html.split('data-testid="amendment-changes"')[1].split("</table>")[0]
    assert table.count("<tr data-testid=") == 1
    assert 'data-testid="change-last_day"' in table
    for key in ("users", "purpose", "releases", "title", "environment", "processing_level"):
        assert f'data-testid="change-{key}"' not in table
    unchanged = html.split('data-testid="amendment-unchanged"')[1].split("</details>")[0]
    assert "<dt>Purpose</dt><dd>Product development (including regulatory approval)</dd>" in unchanged
    assert "<dt>Named users</dt><dd>colleague@company.example.jp, researcher@company.example.jp</dd>" in unchanged


def test_changes_of_users_are_shown_as_added_and_removed(client, world, steward):
    newcomer = UserFactory(email="newcomer@company.example.jp")
    amendment = grant_amendment_request(
        grant=world.grant, by=world.user, users_to_remove=[world.other], reason="交代",
        users_to_add=[{"user": newcomer, "ethics_training": True, "ethics_training_date": date(2026, 4, 1)}])
    changes = {c.key: c for c in amendment_changes(amendment) if c.changed}
    assert list(changes) == ["users"]
    users = changes["users"]
    assert (users.before, users.after) == ("colleague@company.example.jp, researcher@company.example.jp",
                                           "newcomer@company.example.jp, researcher@company.example.jp")
    assert (users.added, users.removed) == (["newcomer@company.example.jp (training 2026-04-01)"],
                                            ["colleague@company.example.jp"])
    client.force_login(steward)
    html = client.get(reverse("access:amendment_detail", args=[amendment.pk])).content.decode()
    assert "<ins>+ newcomer@company.example.jp (training 2026-04-01)</ins>" in html
    assert "<del>− colleague@company.example.jp</del>" in html
    api = client.get(reverse("api-access-amendment-changes", args=[amendment.pk]), **_auth(steward))
    assert api.status_code == 200
    assert [row["key"] for row in api.json() if row["changed"]] == ["users"]
    assert client.get(reverse("api-access-amendment-changes", args=[amendment.pk]),
                      **_auth(UserFactory())).status_code == 404
