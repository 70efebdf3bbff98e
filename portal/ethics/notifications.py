"""E-mail to the people a protocol's progress concerns, sent after the transaction commits."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _

from portal.ethics.models import CommitteeMembership, Protocol, Review
from portal.lib.mail import mail_after_commit


def _send(subject: str, body: str, recipients: list[str]) -> None:
    mail_after_commit(area=_("Ethics review"), subject=subject, body=body, recipients=recipients)


def _link(protocol: Protocol) -> str:
    return f"{settings.PORTAL_BASE_URL}/ethics/protocols/{protocol.pk}/"


def _body(protocol: Protocol, detail: str) -> str:
    title = protocol.versions.order_by("-number").first()
    title_text = title.items.filter(key="title").values_list("body", flat=True).first() if title else ""
    lines = [f"{protocol.number or ''} {title_text or ''}".strip(), detail.strip(), _link(protocol)]
    return "\n\n".join(line for line in lines if line)


def notify_applicant(protocol: Protocol, subject: str, detail: str) -> None:
    _send(subject, _body(protocol, detail), [protocol.principal_investigator.email])


def notify_secretariat(protocol: Protocol, subject: str) -> None:
    emails = protocol.committee.memberships.filter(
        active=True, role__in=[CommitteeMembership.Role.SECRETARIAT, CommitteeMembership.Role.CHAIR]
    ).values_list("user__email", flat=True)
    _send(subject, _body(protocol, ""), list(emails))


def notify_members(review: Review, subject: str) -> None:
    emails = review.assignments.filter(recused=False).values_list("member__user__email", flat=True)
    _send(subject, _body(review.version.protocol, ""), list(emails))


def notify_all_members(protocol: Protocol, subject: str, detail: str) -> None:
    emails = protocol.committee.memberships.filter(active=True).values_list("user__email", flat=True)
    _send(subject, _body(protocol, detail), list(emails))
