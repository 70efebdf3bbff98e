"""Grants: created (by the operator, or at the last countersignature of an application), paused and
resumed from what they rest on, extended to a newer release, revoked, ended and expired.

While a grant is in force each named user holds django-guardian's ``datasets.download_release`` on
each of its releases; the permission goes when the grant ends, expires, is revoked or paused.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.access.models import AccessRequest, Grant
from portal.accounts.models import User
from portal.accounts.roles import Role, has_role
from portal.audit.services import audit_record
from portal.datasets.models import DatasetRelease
from portal.lib.numbering import create_numbered
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

PERMISSION = "datasets.download_release"
_LIVE = (Grant.Status.ACTIVE, Grant.Status.PAUSED)


def _society_roles(user: User, society_id: int | None) -> set[str]:
    if society_id is None:
        return set()
    return set(
        SocietyMembership.objects.filter(user_id=user.pk, society_id=society_id).values_list("role", flat=True)
    )


def _perms_assign(grant: Grant) -> None:
    from guardian.shortcuts import assign_perm

    releases = list(grant.releases.filter(status=DatasetRelease.Status.AVAILABLE))
    for user in grant.users.all():
        for release in releases:
            assign_perm(PERMISSION, user, release)


def _perms_remove(grant: Grant, *, releases: Iterable[DatasetRelease] | None = None) -> None:
    """Take the permission back, except where another grant in force still gives it."""
    from guardian.shortcuts import remove_perm

    releases = list(releases if releases is not None else grant.releases.all())
    for user in grant.users.all():
        for release in releases:
            still_held = Grant.objects.filter(
                status=Grant.Status.ACTIVE, users=user, releases=release, expires_at__gt=timezone.now()
            ).exclude(pk=grant.pk).exists()
            if not still_held:
                remove_perm(PERMISSION, user, release)


def _locked(grant: Grant) -> Grant:
    return Grant.objects.select_for_update().get(pk=grant.pk)


def _period_end(request: AccessRequest) -> datetime:
    """The end of the application's last day, in Japan time."""
    end = datetime.combine(request.period_end + timedelta(days=1), time.min)  # type: ignore[operator]
    return timezone.make_aware(end)


def _reports_start(grant: Grant, *, custodian: str = "provider") -> None:
    """The provision record (提供記録), with its custodian (保管者), and the usage reports owed."""
    from portal.access.services.reports import provision_record_create, usage_reports_schedule

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
        _perms_assign(grant)
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


def _close(grant: Grant, *, status: str, action: str, by: User | None, details: dict) -> Grant:  # type: ignore[type-arg]
    grant.status = status
    grant.ended_at = timezone.now()
    grant.save(update_fields=["status", "ended_at"])
    _perms_remove(grant)
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
        _close(locked, status=Grant.Status.REVOKED, action="access.grant_revoked", by=by,
               details={"reason": reason})
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
            _close(locked, status=Grant.Status.ENDED, action="access.grant_ended", by=by, details={})
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
            _close(locked, status=Grant.Status.EXPIRED, action="access.grant_expired", by=None,
                   details={"expires_at": locked.expires_at.isoformat()})
            count += 1
    return count


def grant_refresh(*, grant: Grant) -> Grant:
    """Pause the grant when what it rests on lapsed, resume it when all holds again (audited)."""
    from portal.access.selectors import grant_lapses

    with transaction.atomic():
        locked = _locked(grant)
        if locked.status not in _LIVE:
            return locked
        reasons = [str(r) for r in grant_lapses(locked)]
        if reasons and (locked.status != Grant.Status.PAUSED or locked.paused_reasons != reasons):
            was_active = locked.status == Grant.Status.ACTIVE
            locked.status = Grant.Status.PAUSED
            locked.paused_reasons = reasons
            locked.save(update_fields=["status", "paused_reasons"])
            if was_active:
                _perms_remove(locked)
            audit_record(action="access.grant_paused", actor=None, target=locked, details={"reasons": reasons})
        elif not reasons and locked.status == Grant.Status.PAUSED:
            locked.status = Grant.Status.ACTIVE
            locked.paused_reasons = []
            locked.save(update_fields=["status", "paused_reasons"])
            _perms_assign(locked)
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
    from portal.access.selectors import _agreement_needs_resign, grant_agreement

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
        if agreement is None or _agreement_needs_resign(agreement):
            raise ValidationError(
                _("The society's agreement has changed since it was signed: the company must apply again.")
            )
        locked.releases.add(release)
        if locked.status == Grant.Status.ACTIVE:
            from guardian.shortcuts import assign_perm

            for user in locked.users.all():
                assign_perm(PERMISSION, user, release)
        audit_record(action="access.grant_extended", actor=by, target=locked,
                     details={"release": str(release), "agreement_version": agreement.template_version_id})
    grant.refresh_from_db()
    return grant
