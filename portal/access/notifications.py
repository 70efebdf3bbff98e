"""E-mail to the people an application's progress concerns, sent after the transaction commits."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.utils.translation import gettext as _

from portal.access.models import AccessRequest
from portal.lib.mail import mail_after_commit
from portal.societies.models import Society, SocietyMembership
from portal.societies.selectors import member_emails


def _send(subject: str, body: str, recipients: Iterable[str]) -> None:
    mail_after_commit(area=_("Data access"), subject=subject, body=body, recipients=recipients)


def _body(access_request: AccessRequest, detail: str = "") -> str:
    link = f"{settings.PORTAL_BASE_URL}/access/requests/{access_request.pk}/"
    lines = [f"{access_request.reference or ''} {access_request.title}".strip(), detail.strip(), link]
    return "\n\n".join(line for line in lines if line)


def notify_applicant(access_request: AccessRequest, subject: str, detail: str = "") -> None:
    emails = [access_request.applicant.email, access_request.principal_investigator.email]
    _send(subject, _body(access_request, detail), emails)


def notify_signatory(access_request: AccessRequest, subject: str) -> None:
    if access_request.signatory_id:
        _send(subject, _body(access_request), [access_request.signatory.email])


def notify_stewards(access_request: AccessRequest, society: Society | int, subject: str) -> None:
    _send(subject, _body(access_request), member_emails(society, SocietyMembership.Role.STEWARD))


def notify_committee(access_request: AccessRequest, society: Society | int, subject: str) -> None:
    _send(subject, _body(access_request), member_emails(society, SocietyMembership.Role.ACCESS_COMMITTEE))


def notify_society_admins(access_request: AccessRequest, society: Society | int, subject: str) -> None:
    _send(subject, _body(access_request), member_emails(society, SocietyMembership.Role.ADMIN))
