"""Warnings before a grant, or what it rests on, lapses (90, 60 and 30 days before by default,
``PORTAL_LAPSE_WARNING_DAYS``).

What lapses: the grant itself (its expiry), the approval period of each ethics protocol it rests
on (the application's and each dataset's: ``Protocol.approved_until``), and the yearly
re-attestation of the security self-assessment (an annual usage report re-attests it; the grant
pauses a year after the last one), and each named user's research-ethics training
(``PORTAL_ETHICS_TRAINING_VALID_DAYS`` after its date; only that user is stopped when it lapses).

Who is told: the holders (the applicant and the grant's named users) and the stewards (情報管理者)
of the grant's society, in the portal and by mail through ``portal.access.notifications``; about a
named user's training, that user, the applicant and the stewards.

Each warning is inserted as a ``LapseWarning`` row before its message is queued; the unique
constraint on (grant, kind, subject, lapses_on, days_before) makes a rerun, or two beat workers at
once, send nothing twice. Only the nearest threshold not yet passed is sent: a grant first seen 45
days before it expires gets the 60-day warning, not the 90-day one as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.access.models import Grant, LapseWarning, UsageReport
from portal.access.notifications import notify_people
from portal.access.selectors import SECURITY_REATTEST_DAYS, training_lapses_on
from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.societies.models import SocietyMembership

_LIVE = (Grant.Status.ACTIVE, Grant.Status.PAUSED)


@dataclass(frozen=True)
class Lapse:
    """Something a grant rests on and the first day it no longer holds."""

    grant: Grant
    kind: str
    lapses_on: date
    subject: str = ""  # which protocol (its number) or named user (e-mail), where a grant rests on several
    label: str = ""  # how the message names it
    person: User | None = None  # the named user whose training lapses


def thresholds() -> list[int]:
    """The days before a lapse at which people are warned, nearest first (e.g. [30, 60, 90])."""
    return sorted(set(settings.PORTAL_LAPSE_WARNING_DAYS))


def threshold_for(days_left: int) -> int | None:
    """The warning due with ``days_left`` days to go: the nearest threshold not yet passed."""
    if days_left <= 0:
        return None
    return next((days for days in thresholds() if days >= days_left), None)


def grant_upcoming_lapses(grant: Grant) -> list[Lapse]:
    """Each lapse date of the grant and of what it rests on (past ones included)."""
    lapses = [Lapse(grant, LapseWarning.Kind.GRANT_EXPIRY, timezone.localdate(grant.expires_at))]
    request = grant.access_request
    protocols = []
    if request is not None and request.ethics_protocol is not None:
        protocols.append(request.ethics_protocol)
    protocols += [release.dataset.protocol for release in grant.releases.all()]
    seen: set[int] = set()
    for protocol in protocols:
        if protocol.pk in seen or protocol.approved_until is None:
            continue
        seen.add(protocol.pk)
        subject = protocol.number or f"#{protocol.pk}"
        lapses.append(Lapse(grant, LapseWarning.Kind.PROTOCOL_APPROVAL, protocol.approved_until + timedelta(days=1),
                            subject=subject, label=subject))
    if request is not None:
        latest = request.security_answers.aggregate(latest=Max("answered_at"))["latest"]
        if latest is not None:
            lapses.append(Lapse(grant, LapseWarning.Kind.SECURITY_REATTESTATION,
                                timezone.localdate(latest + timedelta(days=SECURITY_REATTEST_DAYS))))
        holders = {user.pk for user in grant.users.all()}
        for named in sorted(request.named_users.all(), key=lambda row: row.user.email):
            lapses_on = training_lapses_on(named)
            if named.user_id not in holders or not named.ethics_training or lapses_on is None:
                continue
            # Each user is warned about separately; the e-mail fits the column (else the id does).
            subject = named.user.email if len(named.user.email) <= 100 else f"user#{named.user_id}"
            lapses.append(Lapse(grant, LapseWarning.Kind.ETHICS_TRAINING, lapses_on, subject=subject,
                                label=named.user.email, person=named.user))
    return lapses


def lapse_warnings_due(*, today: date, now: datetime) -> list[tuple[Lapse, int]]:
    """Every (lapse, days before) that deserves a warning today, sent or not."""
    due: list[tuple[Lapse, int]] = []
    grants = (
        Grant.objects.filter(status__in=_LIVE, expires_at__gt=now)
        .select_related("access_request__ethics_protocol")
        .prefetch_related("releases__dataset__protocol", "users", "access_request__named_users__user")
        .order_by("pk")
    )
    for grant in grants:
        for lapse in grant_upcoming_lapses(grant):
            days = threshold_for((lapse.lapses_on - today).days)
            if days is not None:
                due.append((lapse, days))
    return due


def lapse_recipients(grant: Grant, person: User | None = None) -> list[User]:
    """The grant's holders (applicant, named users) and its society's stewards, active, by e-mail;
    with ``person`` (whose training lapses), that user, the applicant and the stewards."""
    people: dict[int, User] = {}
    request = grant.access_request
    if request is not None:
        people[request.applicant.pk] = request.applicant
    for user in [person] if person is not None else grant.users.all():
        people[user.pk] = user
    if grant.society_id is not None:
        for membership in SocietyMembership.objects.filter(
            society_id=grant.society_id, role=SocietyMembership.Role.STEWARD
        ).select_related("user"):
            people[membership.user.pk] = membership.user
    return sorted((u for u in people.values() if u.is_active), key=lambda u: u.email)


def _extension_link(grant: Grant) -> str:
    return settings.PORTAL_BASE_URL + reverse("access:amendment_create", args=[grant.pk]) + "?extend=1"


def _message(lapse: Lapse) -> tuple[str, str]:
    grant = lapse.grant
    day = lapse.lapses_on.isoformat()
    last_day = (lapse.lapses_on - timedelta(days=1)).isoformat()
    base = settings.PORTAL_BASE_URL
    if lapse.kind == LapseWarning.Kind.GRANT_EXPIRY:
        subject = _("Grant %(grant)s ends: its last day of use is %(date)s") % {
            "grant": grant.reference, "date": last_day}
        detail = _("To go on using the data, the applicant or the principal investigator can ask for an "
                   "extension, already filled in from the grant (same users and purpose):")
        links = [_extension_link(grant)]
    elif lapse.kind == LapseWarning.Kind.PROTOCOL_APPROVAL:
        subject = _("The ethics approval of protocol %(protocol)s, on which grant %(grant)s rests, ends on %(date)s") % {
            "protocol": lapse.label, "grant": grant.reference, "date": last_day}
        detail = _("The grant pauses when the approval period ends, until the approval is renewed.")
        links = []
    elif lapse.kind == LapseWarning.Kind.ETHICS_TRAINING:
        subject = _("The research-ethics training of %(user)s, a named user of grant %(grant)s, holds until "
                    "%(date)s") % {"user": lapse.label, "grant": grant.reference, "date": last_day}
        detail = _("After that day %(user)s gets no download links until the date of a renewed training is "
                   "recorded on the grant's page, by that user or by the applicant or principal investigator:") % {
            "user": lapse.label}
        links = []
    else:
        subject = _("The yearly security re-attestation of grant %(grant)s lapses on %(date)s") % {
            "grant": grant.reference, "date": day}
        detail = _("Submit the annual usage report, which re-attests the security self-assessment; otherwise the "
                   "grant pauses on that day.")
        report = (UsageReport.objects.filter(grant=grant, kind=UsageReport.Kind.ANNUAL,
                                             status=UsageReport.Status.DUE).order_by("due_on").first())
        links = [base + reverse("access:report_detail", args=[report.pk])] if report else []
    title = grant.access_request.title if grant.access_request_id else ""  # type: ignore[union-attr]
    body = "\n\n".join(line for line in [
        f"{grant.reference} {title}".strip(), str(detail), *links,
        base + reverse("access:grant_detail", args=[grant.pk]),
    ] if line)
    return subject, body


def lapse_warning_send(*, lapse: Lapse, days_before: int) -> LapseWarning | None:
    """Record and send one warning unless it was sent before; returns the record, or None then.

    Insert first, send on commit: the unique constraint, not a read, decides whether it goes out.
    """
    people = lapse_recipients(lapse.grant, lapse.person)
    recipients = [user.email for user in people]
    try:
        with transaction.atomic():
            warning = LapseWarning.objects.create(
                grant=lapse.grant, kind=lapse.kind, subject=lapse.subject, lapses_on=lapse.lapses_on,
                days_before=days_before, recipients=recipients,
            )
            audit_record(
                action="access.lapse_warning_sent", actor=None, actor_email="system", target=lapse.grant,
                details={"kind": lapse.kind, "subject": lapse.subject, "lapses_on": lapse.lapses_on.isoformat(),
                         "days_before": days_before, "recipients": recipients},
            )
            # Written in the portal's language, whoever's request the worker served before.
            with translation.override(settings.LANGUAGE_CODE):
                subject, body = _message(lapse)
                notify_people(people, subject, body, reverse("access:grant_detail", args=[lapse.grant.pk]))
    except IntegrityError:
        return None  # already sent: the unique constraint is the memory
    return warning


def lapse_warnings_send(*, today: date | None = None, now: datetime | None = None) -> list[LapseWarning]:
    """Send every warning due today that was not sent before; safe to run any number of times."""
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    sent: list[LapseWarning] = []
    for lapse, days in lapse_warnings_due(today=today, now=now):
        warning = lapse_warning_send(lapse=lapse, days_before=days)
        if warning is not None:
            sent.append(warning)
    return sent
