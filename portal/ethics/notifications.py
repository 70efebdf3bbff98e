"""Messages to the people a protocol's progress concerns: inbox now, e-mail after the commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.ethics.models import CommitteeMembership, Protocol, Review
from portal.notifications.services import notification_send


def _send(protocol: Protocol, subject: str, detail: str, recipients: Iterable[User]) -> None:
    notification_send(
        recipients=recipients, area=_("Ethics review"), subject=subject, body=_body(protocol, detail),
        url=_url(protocol),
    )


def _url(protocol: Protocol) -> str:
    return f"/ethics/protocols/{protocol.pk}/"


def _body(protocol: Protocol, detail: str) -> str:
    title = protocol.versions.order_by("-number").first()
    title_text = title.items.filter(key="title").values_list("body", flat=True).first() if title else ""
    lines = [f"{protocol.number or ''} {title_text or ''}".strip(), (detail or "").strip()]
    return "\n\n".join(line for line in lines if line)


def notify_applicant(protocol: Protocol, subject: str, detail: str) -> None:
    _send(protocol, subject, detail, [protocol.principal_investigator])


def notify_secretariat(protocol: Protocol, subject: str) -> None:
    users = User.objects.filter(
        committee_memberships__committee_id=protocol.committee_id, committee_memberships__active=True,
        committee_memberships__role__in=[CommitteeMembership.Role.SECRETARIAT, CommitteeMembership.Role.CHAIR],
    ).distinct().order_by("pk")
    _send(protocol, subject, "", users)


def notify_members(review: Review, subject: str) -> None:
    users = User.objects.filter(
        committee_memberships__assignments__review=review,
        committee_memberships__assignments__recused=False,
    ).distinct().order_by("pk")
    _send(review.version.protocol, subject, "", users)


def notify_all_members(protocol: Protocol, subject: str, detail: str) -> None:
    users = User.objects.filter(
        committee_memberships__committee_id=protocol.committee_id, committee_memberships__active=True,
    ).distinct().order_by("pk")
    _send(protocol, subject, detail, users)
