"""Reads about grants: who holds which release now."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db.models import Max, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.access.models import Grant, RequestUser
from portal.accounts.models import User
from portal.accounts.roles import Role, has_role
from portal.agreements.models import SignedAgreement
from portal.agreements.selectors import agreement_needs_resign
from portal.datasets.models import DatasetRelease
from portal.ethics.selectors import protocol_data_flow
from portal.optout.selectors import dataset_has_published_notice
from portal.societies.models import SocietyMembership


def active_grants(now=None) -> QuerySet[Grant]:  # type: ignore[no-untyped-def]
    """Grants in force at ``now``: active, started and not yet expired."""
    now = now or timezone.now()
    return Grant.objects.filter(status=Grant.Status.ACTIVE, starts_at__lte=now, expires_at__gt=now)


def active_grants_holding(release_ids: Iterable[int]) -> QuerySet[Grant]:
    """The grants in force now that include any of these releases (each grant once)."""
    ids = list(release_ids)
    if not ids:
        return Grant.objects.none()
    return active_grants().filter(releases__in=ids).distinct().order_by("id")


def user_has_active_grant_on(user: User | object, release: DatasetRelease) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return active_grants().filter(users=user, releases=release).exists()


# --- Whether a grant may be used now (issue 5) ----------------------------------------------------

SECURITY_REATTEST_DAYS = 365


@dataclass(frozen=True)
class Usability:
    """Whether a grant may be used now (and by ``user``), with every reason it may not."""

    ok: bool
    reasons: list[str] = field(default_factory=list)


def grant_agreement(grant: Grant):  # type: ignore[no-untyped-def]
    """The completed (countersigned) agreement the grant's society signed for the application."""
    if grant.access_request_id is None or grant.society_id is None:
        return None
    return (
        SignedAgreement.objects.filter(
            access_request_id=grant.access_request_id, society_id=grant.society_id,
            status=SignedAgreement.Status.COMPLETED,
        )
        .select_related("template_version__template__current_version")
        .order_by("-countersigned_at", "-id")
        .first()
    )


def grant_lapses(grant: Grant, *, today=None) -> list[str]:  # type: ignore[no-untyped-def]
    """What the grant rests on that has lapsed (why it pauses); empty when nothing has.

    Rests on: the application's ethics protocol, each dataset's protocol and published opt-out
    notice, at least one release still available, the society's agreement not needing re-signing,
    and the security self-assessment re-attested within a year.
    """
    today = today or timezone.localdate()
    reasons: list[str] = []
    releases = list(grant.releases.select_related("dataset__protocol").order_by("dataset_id", "version"))
    request = grant.access_request
    if request is not None and request.ethics_protocol_id is not None:
        flow = protocol_data_flow(request.ethics_protocol, today=today)
        if not flow.allowed:
            reasons.append(_("The application's ethics approval: %(reason)s") % {"reason": flow.reason})
    seen: set[int] = set()
    for release in releases:
        dataset = release.dataset
        if dataset.pk in seen:
            continue
        seen.add(dataset.pk)
        flow = protocol_data_flow(dataset.protocol, today=today)
        if not flow.allowed:
            reasons.append(
                _("The ethics approval of dataset %(dataset)s: %(reason)s")
                % {"dataset": dataset.slug, "reason": flow.reason}
            )
        if not dataset_has_published_notice(dataset):
            reasons.append(
                _("No published opt-out notice covers dataset %(dataset)s.") % {"dataset": dataset.slug}
            )
    if releases and all(r.status != DatasetRelease.Status.AVAILABLE for r in releases):
        reasons.append(_("Every release of the grant was withdrawn."))
    if request is not None:
        agreement = grant_agreement(grant)
        if agreement is None:
            reasons.append(_("The data-use agreement is not signed and countersigned."))
        elif agreement_needs_resign(agreement):
            reasons.append(_("The data-use agreement must be signed again (a new version)."))
        latest = request.security_answers.aggregate(latest=Max("answered_at"))["latest"]
        if latest is None or latest < timezone.now() - timedelta(days=SECURITY_REATTEST_DAYS):
            reasons.append(_("The security self-assessment was not re-attested within the last year."))
    return reasons


def training_lapses_on(named: RequestUser) -> date | None:
    """The first day a named user's research-ethics training no longer holds
    (``PORTAL_ETHICS_TRAINING_VALID_DAYS`` after its date); None when it does not lapse (the setting
    is 0, or no date was recorded: an application is not submitted without one)."""
    days = settings.PORTAL_ETHICS_TRAINING_VALID_DAYS
    if not days or named.ethics_training_date is None:
        return None
    return named.ethics_training_date + timedelta(days=days)


def grant_user_lapses(grant: Grant, user: User | object, *, today: date | None = None) -> list[str]:
    """Why ``user`` may not use the grant though it is in force (not named, no or lapsed ethics
    training). Only this user is concerned: the grant stays in force for the others."""
    if not getattr(user, "is_authenticated", False):
        return [_("Sign in as a named user of the grant.")]
    if not grant.users.filter(pk=user.pk).exists():  # type: ignore[union-attr]
        return [_("You are not a named user of this grant.")]
    if grant.access_request_id is not None:
        named = RequestUser.objects.filter(access_request_id=grant.access_request_id, user_id=user.pk).first()  # type: ignore[union-attr]
        if named is None or not named.ethics_training:
            return [_("Your research-ethics training is not recorded on the application.")]
        lapses_on = training_lapses_on(named)
        if lapses_on is not None and lapses_on <= (today or timezone.localdate()):
            return [_("Your research-ethics training of %(trained)s lapsed on %(lapsed)s. Take the training "
                      "again and record its new date on the grant's page.") % {
                "trained": named.ethics_training_date.isoformat(),  # type: ignore[union-attr]
                "lapsed": lapses_on.isoformat()}]
    return []


def grant_state_reasons(grant: Grant, *, now=None) -> list[str]:  # type: ignore[no-untyped-def]
    now = now or timezone.now()
    if grant.status == Grant.Status.REVOKED:
        return [_("The grant was revoked.")]
    if grant.status == Grant.Status.ENDED:
        return [_("The grant has ended.")]
    if grant.status == Grant.Status.EXPIRED or grant.expires_at <= now:
        return [_("The grant has expired.")]
    if grant.starts_at > now:
        return [_("The grant has not started yet.")]
    return []


def grant_usability(grant: Grant, user: User | object | None = None, *, now=None) -> Usability:  # type: ignore[no-untyped-def]
    """May the grant be used now (by ``user``)? Computed live from what it rests on.

    Used before issuing a link and again when it is used, so a lapse closes the gate at once,
    before ``grant_refresh`` records the pause.
    """
    reasons = grant_state_reasons(grant, now=now)
    if not reasons:
        reasons = grant_lapses(grant)
    if not reasons and user is not None:
        reasons = grant_user_lapses(grant, user, today=timezone.localdate(now) if now else None)
    return Usability(ok=not reasons, reasons=reasons)


def grants_of(user: User | object) -> QuerySet[Grant]:
    """The grants ``user`` is a named user of, and those of the societies they steward or administer."""
    if not getattr(user, "is_authenticated", False):
        return Grant.objects.none()
    base = Grant.objects.select_related("society", "access_request").prefetch_related(
        "releases__dataset"
    )
    if has_role(user, Role.OPERATOR):
        return base.order_by("-id")
    societies = SocietyMembership.objects.filter(user_id=user.pk, role__in=["admin", "steward"]).values(  # type: ignore[union-attr]
        "society_id"
    )
    return base.filter(Q(users=user) | Q(society_id__in=societies)).distinct().order_by("-id")


def grant_role(user: User | object, grant: Grant) -> set[str]:
    """What ``user`` is to the grant: "user" (named), "steward", "admin", "operator"."""
    if not getattr(user, "is_authenticated", False):
        return set()
    roles: set[str] = set()
    if grant.users.filter(pk=user.pk).exists():  # type: ignore[union-attr]
        roles.add("user")
    if grant.society_id is not None:
        roles |= set(
            SocietyMembership.objects.filter(
                user_id=user.pk, society_id=grant.society_id, role__in=["admin", "steward"]  # type: ignore[union-attr]
            ).values_list("role", flat=True)
        )
    if has_role(user, Role.OPERATOR):
        roles.add("operator")
    return roles
