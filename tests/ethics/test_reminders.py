"""Daily reminders: each sent once per protocol, kind and due date, audited, and never twice."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.ethics import services
from portal.ethics.models import Decision, Protocol, ProtocolStatus, ReminderSent
from portal.ethics.reminders import reminders_send
from portal.ethics.tasks import send_reminders_task
from tests.ethics.test_services import _approve, _attend_all, _to_review
from tests.factories import OrganizationFactory, OrganizationMembershipFactory, UserFactory
from tests.factories.ethics import EthicsCommitteeFactory, full_committee


@pytest.fixture
def setting(db):  # type: ignore[no-untyped-def]
    university = OrganizationFactory(name_ja="研究大学", kind="university")
    committee = EthicsCommitteeFactory(institution=university, slug="irb")
    members = full_committee(committee)
    applicant = UserFactory(email="pi@example.ac.jp")
    OrganizationMembershipFactory(user=applicant, organization=university)
    head = UserFactory(email="head@example.ac.jp")
    OrganizationMembershipFactory(user=head, organization=university, role="head")
    return {"committee": committee, "members": members, "applicant": applicant, "head": head,
            "university": university}


def _active(setting, *, approved_days=365, report_in_days=None):  # type: ignore[no-untyped-def]
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    services.decision_record(
        review=review, outcome="approved", method="unanimous", reasons="妥当",
        approved_until=timezone.localdate() + timedelta(days=approved_days),
        by=setting["members"]["chair"].user,
    )
    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])
    if report_in_days is not None:
        Protocol.objects.filter(pk=protocol.pk).update(
            periodic_report_due=timezone.localdate() + timedelta(days=report_in_days))
    protocol.refresh_from_db()
    return protocol


def _run(capture, **kwargs):  # type: ignore[no-untyped-def]
    with capture(execute=True):
        return reminders_send(**kwargs)


def test_periodic_report_due_within_30_days_reminded_once(setting, django_capture_on_commit_callbacks):
    protocol = _active(setting, report_in_days=30)
    mail.outbox.clear()

    first = _run(django_capture_on_commit_callbacks)
    second = _run(django_capture_on_commit_callbacks)

    assert [(r.protocol_id, r.kind, r.due_on) for r in first] == [
        (protocol.pk, "periodic_report", protocol.periodic_report_due)]
    assert second == []
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["pi@example.ac.jp"]
    assert protocol.number in mail.outbox[0].body
    reminder = ReminderSent.objects.get()
    notification = reminder.notification
    assert (notification.recipient, notification.url, notification.mail_status) == (
        setting["applicant"], f"/ethics/protocols/{protocol.pk}/", "sent")
    assert reminder.mailed_at == notification.mail_sent_at is not None
    event = AuditEvent.objects.filter(action="ethics.reminder_issued").get()
    assert event.details == {"kind": "periodic_report", "due_on": protocol.periodic_report_due.isoformat(),
                             "recipients": ["pi@example.ac.jp"], "notification": notification.pk}
    assert event.actor_id is None


def test_periodic_report_due_later_not_reminded(setting, django_capture_on_commit_callbacks):
    _active(setting, report_in_days=31)
    mail.outbox.clear()

    assert _run(django_capture_on_commit_callbacks) == []
    assert mail.outbox == []
    assert ReminderSent.objects.count() == 0


def test_new_due_date_is_a_new_reminder(setting, django_capture_on_commit_callbacks):
    protocol = _active(setting, report_in_days=10)
    _run(django_capture_on_commit_callbacks)
    Protocol.objects.filter(pk=protocol.pk).update(periodic_report_due=timezone.localdate() + timedelta(days=20))
    mail.outbox.clear()

    again = _run(django_capture_on_commit_callbacks)

    assert [r.kind for r in again] == ["periodic_report"]
    assert len(mail.outbox) == 1


def test_approval_expiring_within_60_days_reminded_once(setting, django_capture_on_commit_callbacks):
    protocol = _active(setting, approved_days=60)
    mail.outbox.clear()

    first = _run(django_capture_on_commit_callbacks)
    second = _run(django_capture_on_commit_callbacks)

    assert [(r.kind, r.due_on) for r in first] == [("approval_expiring", protocol.approved_until)]
    assert second == []
    assert len(mail.outbox) == 1


def test_approval_expiring_later_or_protocol_closed_not_reminded(setting, django_capture_on_commit_callbacks):
    _active(setting, approved_days=61)
    closed = _active(setting, approved_days=10)
    Protocol.objects.filter(pk=closed.pk).update(
        status=ProtocolStatus.COMPLETED, ended_at=timezone.now(), end_report="終了"
    )
    mail.outbox.clear()

    assert _run(django_capture_on_commit_callbacks) == []
    assert mail.outbox == []


def _conditions(setting, days_ago):  # type: ignore[no-untyped-def]
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    decision = _approve(setting, review, outcome="conditions", conditions="説明文書の修正")
    Decision.objects.filter(pk=decision.pk).update(decided_at=timezone.now() - timedelta(days=days_ago))
    protocol.refresh_from_db()
    return protocol


def test_conditions_unanswered_over_30_days_reminded_once(setting, django_capture_on_commit_callbacks):
    protocol = _conditions(setting, days_ago=31)
    _conditions(setting, days_ago=29)
    mail.outbox.clear()

    first = _run(django_capture_on_commit_callbacks)
    second = _run(django_capture_on_commit_callbacks)

    assert [(r.protocol_id, r.kind) for r in first] == [(protocol.pk, "conditions_unanswered")]
    assert second == []
    assert len(mail.outbox) == 1


def test_conditions_answered_not_reminded(setting, django_capture_on_commit_callbacks):
    protocol = _conditions(setting, days_ago=40)
    services.conditions_answer(protocol=protocol, answer="修正しました", by=setting["applicant"])
    mail.outbox.clear()

    assert _run(django_capture_on_commit_callbacks) == []
    assert mail.outbox == []


def test_reminder_mail_is_japanese_by_default_language(setting, django_capture_on_commit_callbacks):
    _active(setting, report_in_days=5)
    mail.outbox.clear()

    with mock.patch("portal.ethics.reminders.translation.override") as override:
        override.return_value.__enter__.return_value = None
        _run(django_capture_on_commit_callbacks)

    override.assert_called_once_with(settings.LANGUAGE_CODE)


def test_task_runs_service_and_is_idempotent(setting, django_capture_on_commit_callbacks):
    _active(setting, approved_days=30, report_in_days=5)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert send_reminders_task.delay().get() == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert send_reminders_task.delay().get() == 0

    assert len(mail.outbox) == 2
    assert send_reminders_task.name == "ethics.send_reminders"


def test_beat_schedules_reminders_daily():
    entry = settings.CELERY_BEAT_SCHEDULE["ethics-reminders"]

    assert entry["task"] == "ethics.send_reminders"
    assert entry["schedule"].hour == {7}
