"""Messages to the people an application's progress concerns: inbox now, e-mail after the commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from portal.access.models import AccessRequest, Grant
from portal.accounts.models import User
from portal.notifications.services import notification_send
from portal.societies.models import Society, SocietyMembership
from portal.societies.selectors import member_users


def _send(subject: str, body: str, recipients: Iterable[User | None], url: str = "") -> None:
    notification_send(recipients=recipients, area=_("Data access"), subject=subject, body=body, url=url)


def _url(access_request: AccessRequest) -> str:
    return f"/access/requests/{access_request.pk}/"


def _body(access_request: AccessRequest, detail: str = "") -> str:
    lines = [f"{access_request.reference or ''} {access_request.title}".strip(), detail.strip()]
    return "\n\n".join(line for line in lines if line)


def _notify(access_request: AccessRequest, subject: str, recipients: Iterable[User | None], detail: str = "") -> None:
    _send(subject, _body(access_request, detail), recipients, _url(access_request))


def notify_applicant(access_request: AccessRequest, subject: str, detail: str = "") -> None:
    _notify(access_request, subject, [access_request.applicant, access_request.principal_investigator], detail)


def notify_signatory(access_request: AccessRequest, subject: str) -> None:
    if access_request.signatory_id:
        _notify(access_request, subject, [access_request.signatory])


def notify_stewards(access_request: AccessRequest, society: Society | int, subject: str) -> None:
    _notify(access_request, subject, member_users(society, SocietyMembership.Role.STEWARD))


def notify_committee(access_request: AccessRequest, society: Society | int, subject: str) -> None:
    _notify(access_request, subject, member_users(society, SocietyMembership.Role.ACCESS_COMMITTEE))


def notify_people(users: Iterable[User], subject: str, body: str, url: str = "") -> None:
    """A message to named people (users), e.g. a grant's holders and its society's stewards."""
    _send(subject, body, users, url)


def notify_grant_stewards(grant: Grant, subject: str, detail: str = "") -> None:
    """A message to the data stewards (情報管理者) of the grant's society, linking to the grant's page."""
    title = grant.access_request.title if grant.access_request_id else ""  # type: ignore[union-attr]
    lines = [f"{grant.reference} {title}".strip(), detail.strip()]
    _send(subject, "\n\n".join(line for line in lines if line),
          member_users(grant.society_id, SocietyMembership.Role.STEWARD), f"/access/grants/{grant.pk}/")
