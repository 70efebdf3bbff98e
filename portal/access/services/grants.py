"""Grants: created (by the operator, or at the last countersignature of an application), paused and
resumed from what they rest on, extended to a newer release, revoked, ended and expired.

What a named user may download is never stored apart from the grant: pages, links and the API
read it live from the grants in force (``portal.access.selectors.grant_usability``), so ending,
expiring, revoking or pausing a grant takes effect at once. A revoked grant records when, by whom
and why (``revoked_at``, ``revoked_by``, ``revoke_reason``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.access.models import AccessRequest, Grant
from portal.access.selectors import grant_agreement, grant_lapses
from portal.access.services.records import provision_record_create, usage_reports_schedule
from portal.access.workflow import GRANT
from portal.accounts.models import User
from portal.accounts.roles import Role, has_role
from portal.agreements.selectors import agreement_needs_resign
from portal.audit.services import audit_record
from portal.datasets.models import DatasetRelease
from portal.lib.numbering import create_numbered
from portal.lib.workflow import transition
from portal.societies.models import Society, SocietyMembership


def _grant_prefix() -> str:
    return f"G-{timezone.localdate().year}-"


def grant_create(
    *, users: Iterable[User], releases: Iterable[DatasetRelease], expires_at: datetime, by: User
) -> Grant:
    """Grant named users access to releases until ``expires_at`` (platform operator only)."""
    if not has_role(by, Role.OPERATOR):
        raise PermissionDenied(_("Only the platform operator can create grants."))
    users = list(users)
    releases = list(releases)
    if not users:
        raise ValidationError({"users": _("Name at least one user.")})
    if not releases:
        raise ValidationError({"releases": _("Choose at least one release.")})
    if expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry must be in the future.")})
    unavailable = [str(r) for r in releases if r.status != DatasetRelease.Status.AVAILABLE]
    if unavailable:
        raise ValidationError(
            {"releases": _("These releases were withdrawn: %(names)s") % {"names": ", ".join(unavailable)}}
        )
    def create(reference: str) -> Grant:
        grant = Grant.objects.create(reference=reference, expires_at=expires_at, created_by=by)
        grant.users.set(users)
        grant.releases.set(releases)
        audit_record(
            action="access.grant_created", actor=by, target=grant,
            details={
                "users": sorted(u.email for u in users),
                "releases": sorted(str(r) for r in releases),
                "expires_at": expires_at.isoformat(),
            },
        )
        return grant

    return create_numbered(Grant, _grant_prefix(), create, digits=5)


# --- Issue 5: the lifecycle of a grant ------------------------------------------------------------

_LIVE = (Grant.Status.ACTIVE, Grant.Status.PAUSED)


def _society_roles(user: User, society_id: int | None) -> set[str]:
    if society_id is None:
        return set()
    return set(
        SocietyMembership.objects.filter(user_id=user.pk, society_id=society_id).values_list("role", flat=True)
    )


def _locked(grant: Grant) -> Grant:
    return Grant.objects.select_for_update().get(pk=grant.pk)


def _period_end(request: AccessRequest) -> datetime:
    """The end of the application's last day, in Japan time."""
    end = datetime.combine(request.period_end + timedelta(days=1), time.min)  # type: ignore[operator]
    return timezone.make_aware(end)


def _reports_start(grant: Grant, *, custodian: str = "provider") -> None:
    """The provision record (提供記録), with its custodian (保管者), and the usage reports owed."""
    provision_record_create(grant=grant, custodian=custodian)
    usage_reports_schedule(grant=grant)


def grant_start(*, access_request: AccessRequest, society: Society, by: User,
                record_custodian: str = "provider") -> Grant:
    """Start the grant of one society of an application: its named users × its requested releases
    of that society, from now to the end of the application's period. ``record_custodian`` keeps
    the provision record: the provider (the society) or, by its delegation, the recipient."""
    if not (has_role(by, Role.OPERATOR) or "admin" in _society_roles(by, society.pk)):
        raise PermissionDenied(_("Only an administrator of the society can start its grant."))
    if Grant.objects.filter(access_request=access_request, society=society, status__in=_LIVE).exists():
        raise ValidationError(_("This application already has a grant of this society in force."))
    if access_request.period_end is None:
        raise ValidationError({"period_end": _("The application has no end of its period of use.")})
    expires_at = _period_end(access_request)
    if expires_at <= timezone.now():
        raise ValidationError({"period_end": _("The application's period of use has already ended.")})
    releases = list(
        access_request.releases.filter(dataset__society=society, status=DatasetRelease.Status.AVAILABLE)
        .select_related("dataset")
    )
    users = [named.user for named in access_request.named_users.select_related("user").order_by("id")]
    if not releases:
        raise ValidationError({"releases": _("The application requests no available release of this society.")})
    if not users:
        raise ValidationError({"users": _("The application names no user.")})
    def create(reference: str) -> Grant:
        grant = Grant.objects.create(
            reference=reference, access_request=access_request, society=society,
            expires_at=expires_at, created_by=by,
        )
        grant.users.set(users)
        grant.releases.set(releases)
        _reports_start(grant, custodian=record_custodian)
        audit_record(
            action="access.grant_started", actor=by, target=grant,
            details={
                "access_request": access_request.reference or access_request.pk,
                "society": society.slug if hasattr(society, "slug") else society.pk,
                "users": sorted(u.email for u in users),
                "releases": sorted(str(r) for r in releases),
                "expires_at": expires_at.isoformat(),
            },
        )
        return grant

    return create_numbered(Grant, _grant_prefix(), create, digits=5)


def _close(grant: Grant, *, move: str, action: str, by: User | None, details: dict,  # type: ignore[type-arg]
           extra_fields: tuple[str, ...] = ()) -> Grant:
    grant.ended_at = timezone.now()
    transition(grant, GRANT, move, extra_fields=["ended_at", *extra_fields])
    audit_record(action=action, actor=by, target=grant, details=details)
    return grant


def grant_revoke(*, grant: Grant, reason: str, by: User) -> Grant:
    """Revoke a grant (a steward or administrator of its society, or the operator): links stop now."""
    roles = _society_roles(by, grant.society_id)
    if not (has_role(by, Role.OPERATOR) or roles & {"steward", "admin"}):
        raise PermissionDenied(_("Only a data steward of the society can revoke its grants."))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for revoking the grant.")})
    with transaction.atomic():
        locked = _locked(grant)
        if locked.status not in _LIVE:
            raise ValidationError(_("The grant is no longer in force."))
        locked.revoked_at = timezone.now()
        locked.revoked_by = by
        locked.revoke_reason = reason
        _close(locked, move="revoke", action="access.grant_revoked", by=by, details={"reason": reason},
               extra_fields=("revoked_at", "revoked_by", "revoke_reason"))
    grant.refresh_from_db()
    return grant


def grant_end(*, grant: Grant, by: User) -> Grant:
    """End a grant when its use has ended (the end-of-use report accepted); idempotent."""
    roles = _society_roles(by, grant.society_id)
    if not (has_role(by, Role.OPERATOR) or roles & {"steward", "admin", "access_committee"}):
        raise PermissionDenied(_("Only the society can end its grants."))
    with transaction.atomic():
        locked = _locked(grant)
        if locked.status in _LIVE:
            _close(locked, move="end", action="access.grant_ended", by=by, details={})
    grant.refresh_from_db()
    return grant


def grant_expire_due(*, now: datetime | None = None) -> int:
    """Expire every grant in force whose period is over (beat); a rerun expires nothing new."""
    now = now or timezone.now()
    count = 0
    for pk in Grant.objects.filter(status__in=_LIVE, expires_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            locked = Grant.objects.select_for_update().get(pk=pk)
            if locked.status not in _LIVE or locked.expires_at > now:
                continue
            _close(locked, move="expire", action="access.grant_expired", by=None,
                   details={"expires_at": locked.expires_at.isoformat()})
            count += 1
    return count


def grant_refresh(*, grant: Grant) -> Grant:
    """Pause the grant when what it rests on lapsed, resume it when all holds again (audited)."""
    with transaction.atomic():
        locked = _locked(grant)
        if locked.status not in _LIVE:
            return locked
        reasons = [str(r) for r in grant_lapses(locked)]
        if reasons and (locked.status != Grant.Status.PAUSED or locked.paused_reasons != reasons):
            locked.paused_reasons = reasons
            transition(locked, GRANT, "pause", extra_fields=["paused_reasons"])
            audit_record(action="access.grant_paused", actor=None, target=locked, details={"reasons": reasons})
        elif not reasons and locked.status == Grant.Status.PAUSED:
            locked.paused_reasons = []
            transition(locked, GRANT, "resume", extra_fields=["paused_reasons"])
            audit_record(action="access.grant_resumed", actor=None, target=locked, details={})
    return locked


def grant_refresh_all() -> int:
    """Refresh every grant in force (beat); returns how many changed state."""
    changed = 0
    for grant in Grant.objects.filter(status__in=_LIVE).order_by("id"):
        before = (grant.status, list(grant.paused_reasons))
        after = grant_refresh(grant=grant)
        changed += (after.status, list(after.paused_reasons)) != before
    return changed


def grant_extend_to_release(*, grant: Grant, release: DatasetRelease, by: User) -> Grant:
    """Add a newer release of a dataset the grant holds (an administrator of the society), when the
    society's agreement terms are unchanged; otherwise the company applies again."""
    if not (has_role(by, Role.OPERATOR) or "admin" in _society_roles(by, grant.society_id)):
        raise PermissionDenied(_("Only an administrator of the society can extend its grants."))
    with transaction.atomic():
        locked = _locked(grant)
        if locked.status not in _LIVE:
            raise ValidationError(_("The grant is no longer in force."))
        held = list(locked.releases.all())
        same_dataset = [r for r in held if r.dataset_id == release.dataset_id]
        if release.status != DatasetRelease.Status.AVAILABLE:
            raise ValidationError({"release": _("The release was withdrawn.")})
        if not same_dataset or release.version <= max(r.version for r in same_dataset):
            raise ValidationError({"release": _("Choose a newer release of a dataset the grant holds.")})
        agreement = grant_agreement(locked)
        if agreement is None or agreement_needs_resign(agreement):
            raise ValidationError(
                _("The society's agreement has changed since it was signed: the company must apply again.")
            )
        locked.releases.add(release)
        audit_record(action="access.grant_extended", actor=by, target=locked,
                     details={"release": str(release), "agreement_version": agreement.template_version_id})
    grant.refresh_from_db()
    return grant
