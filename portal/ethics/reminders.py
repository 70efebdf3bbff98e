"""Daily reminders to applicants: periodic report due, conditions left unanswered, approval expiring.

Each reminder is remembered in ``ReminderSent`` under (protocol, kind, due date), backed by a unique
constraint, so running the job twice on a day, or on two workers at once, issues nothing new. A new
due date (the next periodic report, an extended approval) is a new reminder. Issuing a reminder puts
it in the applicant's inbox; its e-mail copy is sent by the notifications' task, and recorded as
sent (on the notification) only once the mail server accepted it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.audit.services import audit_record
from portal.ethics.models import Decision, Protocol, ProtocolStatus, ReminderSent
from portal.notifications.services import notification_send

PERIODIC_REPORT_WINDOW = timedelta(days=30)
CONDITIONS_GRACE = timedelta(days=30)
EXPIRY_WINDOW = timedelta(days=60)

# Protocols under which research is (or may again be) running.
_RUNNING = [ProtocolStatus.ACTIVE, ProtocolStatus.AMENDMENT_REVIEW, ProtocolStatus.SUSPENDED]


@dataclass(frozen=True)
class Due:
    protocol: Protocol
    kind: str
    due_on: date


def _title(protocol: Protocol) -> str:
    version = protocol.versions.order_by("-number").first()
    if version is None:
        return ""
    return version.items.filter(key="title").values_list("body", flat=True).first() or ""


def reminders_due(*, today: date) -> list[Due]:
    """Everything that deserves a reminder today, sent or not."""
    due: list[Due] = []
    for protocol in Protocol.objects.filter(
        status__in=_RUNNING, periodic_report_due__isnull=False,
        periodic_report_due__lte=today + PERIODIC_REPORT_WINDOW,
    ).order_by("pk"):
        due.append(Due(protocol, ReminderSent.Kind.PERIODIC_REPORT, protocol.periodic_report_due))  # type: ignore[arg-type]
    for protocol in Protocol.objects.filter(
        status__in=_RUNNING, approved_until__isnull=False,
        approved_until__gte=today, approved_until__lte=today + EXPIRY_WINDOW,
    ).order_by("pk"):
        due.append(Due(protocol, ReminderSent.Kind.APPROVAL_EXPIRING, protocol.approved_until))  # type: ignore[arg-type]
    # "More than 30 days": decided before the start of the day 30 days ago, in Japan time.
    cutoff = timezone.make_aware(datetime.combine(today - CONDITIONS_GRACE, time.min))
    decisions = (
        Decision.objects.filter(
            outcome=Decision.Outcome.CONDITIONS, decided_at__lt=cutoff,
            review__version__protocol__status=ProtocolStatus.CONDITIONS,
        )
        .select_related("review__version__protocol")
        .order_by("review__version__protocol_id", "-decided_at")
    )
    seen: set[int] = set()
    for decision in decisions:
        protocol = decision.review.version.protocol
        if protocol.pk in seen:
            continue
        seen.add(protocol.pk)
        due.append(Due(protocol, ReminderSent.Kind.CONDITIONS_UNANSWERED, timezone.localdate(decision.decided_at)))
    return due


def _message(item: Due) -> tuple[str, str]:
    protocol = item.protocol
    subjects = {
        ReminderSent.Kind.PERIODIC_REPORT: _("A periodic report is due on %(date)s"),
        ReminderSent.Kind.APPROVAL_EXPIRING: _("The approval of your research ends on %(date)s"),
        ReminderSent.Kind.CONDITIONS_UNANSWERED: _("The committee's conditions of %(date)s are still unanswered"),
    }
    details = {
        ReminderSent.Kind.PERIODIC_REPORT: _("Submit the periodic report (status of the research) to the committee by the due date."),
        ReminderSent.Kind.APPROVAL_EXPIRING: _("Apply for continuation before the approval ends; no data may be used after it ends."),
        ReminderSent.Kind.CONDITIONS_UNANSWERED: _("The research cannot start until the conditions are answered and the chair has accepted the answer."),
    }
    subject = subjects[ReminderSent.Kind(item.kind)] % {"date": item.due_on.isoformat()}
    body = "\n\n".join(
        line for line in (f"{protocol.number or ''} {_title(protocol)}".strip(),
                          str(details[ReminderSent.Kind(item.kind)])) if line
    )
    return subject, body


def reminder_send(*, item: Due) -> ReminderSent | None:
    """Issue one reminder unless it was issued before; returns the record, or None if already issued.

    The record and the inbox message are written together; the e-mail goes out after the commit.
    """
    pi = item.protocol.principal_investigator
    recipients = [pi.email]
    try:
        with transaction.atomic():
            sent = ReminderSent.objects.create(
                protocol=item.protocol, kind=item.kind, due_on=item.due_on, recipients=recipients
            )
            with translation.override(settings.LANGUAGE_CODE):
                subject, body = _message(item)
                notices = notification_send(
                    recipients=[pi], area=_("Ethics review"), subject=subject, body=body,
                    url=f"/ethics/protocols/{item.protocol.pk}/",
                )
            sent.notification = notices[0] if notices else None
            sent.save(update_fields=["notification"])
            audit_record(
                action="ethics.reminder_issued", actor=None, actor_email="system", target=item.protocol,
                details={"kind": item.kind, "due_on": item.due_on.isoformat(), "recipients": recipients,
                         "notification": sent.notification_id},
            )
    except IntegrityError:
        return None  # already issued: the unique constraint is the memory
    return sent


def reminders_send(*, today: date | None = None) -> list[ReminderSent]:
    """Issue every reminder due today that has not been issued; safe to run any number of times."""
    today = today or timezone.localdate()
    due = reminders_due(today=today)
    already = set(
        ReminderSent.objects.filter(protocol_id__in={item.protocol.pk for item in due})
        .values_list("protocol_id", "kind", "due_on")
    )
    sent: list[ReminderSent] = []
    for item in due:
        if (item.protocol.pk, item.kind, item.due_on) in already:
            continue
        record = reminder_send(item=item)
        if record is not None:
            sent.append(record)
    return sent
