"""E-mail to the people an application's progress concerns, sent after the transaction commits."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils.translation import gettext as _

from portal.access.models import AccessRequest
from portal.societies.models import Society, SocietyMembership


def _send(subject: str, body: str, recipients: Iterable[str]) -> None:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return
    full_subject = f"[{_('Data access')}] {subject}"
    transaction.on_commit(
        lambda: send_mail(full_subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    )


def _body(access_request: AccessRequest, detail: str = "") -> str:
    link = f"{settings.PORTAL_BASE_URL}/access/requests/{access_request.pk}/"
    lines = [f"{access_request.reference or ''} {access_request.title}".strip(), detail.strip(), link]
    return "\n\n".join(line for line in lines if line)


def _society_emails(society: Society | int, *roles: str) -> list[str]:
    society_id = society if isinstance(society, int) else society.pk
    return list(
        SocietyMembership.objects.filter(society_id=society_id, role__in=roles).values_list("user__email", flat=True)
    )


def notify_applicant(access_request: AccessRequest, subject: str, detail: str = "") -> None:
    emails = [access_request.applicant.email, access_request.principal_investigator.email]
    _send(subject, _body(access_request, detail), emails)


def notify_signatory(access_request: AccessRequest, subject: str) -> None:
    if access_request.signatory_id:
        _send(subject, _body(access_request), [access_request.signatory.email])


def notify_stewards(access_request: AccessRequest, society: Society | int, subject: str) -> None:
    _send(subject, _body(access_request), _society_emails(society, SocietyMembership.Role.STEWARD))


def notify_committee(access_request: AccessRequest, society: Society | int, subject: str) -> None:
    _send(subject, _body(access_request), _society_emails(society, SocietyMembership.Role.ACCESS_COMMITTEE))


def notify_society_admins(access_request: AccessRequest, society: Society | int, subject: str) -> None:
    _send(subject, _body(access_request), _society_emails(society, SocietyMembership.Role.ADMIN))
