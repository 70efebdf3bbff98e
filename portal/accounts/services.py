"""Every change to accounts, memberships and API tokens: validated, saved and audited together."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from knox.models import AuthToken

from portal.accounts.models import Organization, OrganizationMembership, User
from portal.audit.services import audit_record

MAX_ACTIVE_TOKENS = 10


def organization_create(
    *, name_ja: str, name_en: str = "", kind: str, by: User | None
) -> Organization:
    if kind not in Organization.Kind.values:
        raise ValidationError({"kind": _("Unknown organisation kind.")})
    with transaction.atomic():
        organization = Organization(name_ja=name_ja, name_en=name_en, kind=kind)
        organization.full_clean()
        organization.save()
        audit_record(
            action="accounts.organization_created",
            actor=by,
            target=organization,
            details={"kind": kind},
        )
    return organization


def organization_membership_add(
    *, user: User, organization: Organization, role: str, title: str = "", by: User | None
) -> OrganizationMembership:
    if role not in OrganizationMembership.Role.values:
        raise ValidationError({"role": _("Unknown role.")})
    if (
        role == OrganizationMembership.Role.OPERATOR
        and organization.kind != Organization.Kind.OPERATOR
    ):
        raise ValidationError(
            {"role": _("Only members of the platform operator can hold the operator role.")}
        )
    with transaction.atomic():
        membership, created = OrganizationMembership.objects.get_or_create(
            user=user, organization=organization, role=role, defaults={"title": title}
        )
        if created:
            audit_record(
                action="accounts.membership_added",
                actor=by,
                target=membership,
                details={"user": user.email, "organization": organization.pk, "role": role},
            )
    return membership


def organization_membership_remove(*, membership: OrganizationMembership, by: User | None) -> None:
    with transaction.atomic():
        audit_record(
            action="accounts.membership_removed",
            actor=by,
            target=membership,
            details={
                "user": membership.user.email,
                "organization": membership.organization_id,
                "role": membership.role,
            },
        )
        membership.delete()


def user_update_profile(
    *, user: User, by: User, full_name: str | None = None, full_name_kana: str | None = None
) -> User:
    if by.pk != user.pk and not by.is_staff:
        raise ValidationError(_("You can only change your own profile."))
    changes = {
        name: value.strip()
        for name, value in (("full_name", full_name), ("full_name_kana", full_name_kana))
        if value is not None
    }
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        changed = {name: value for name, value in changes.items() if getattr(user, name) != value}
        for name, value in changed.items():
            setattr(user, name, value)
        user.full_clean(exclude=["password"])
        user.save(update_fields=list(changed) or None)
        if changed:
            audit_record(
                action="accounts.profile_updated",
                actor=by,
                target=user,
                details={"fields": sorted(changed)},
            )
    return user


def api_token_create(*, user: User, by: User) -> tuple[AuthToken, str]:
    """Create an API token for ``user``; the raw token is returned once and never stored."""
    if by.pk != user.pk:
        raise ValidationError(_("You can only create API tokens for yourself."))
    with transaction.atomic():
        # Lock the user row so that two simultaneous requests cannot both pass the limit.
        User.objects.select_for_update().filter(pk=user.pk).first()
        active = AuthToken.objects.filter(user=user).exclude(expiry__lt=timezone.now()).count()
        if active >= MAX_ACTIVE_TOKENS:
            raise ValidationError(
                _("You already have %(count)d active tokens; revoke one first.")
                % {"count": MAX_ACTIVE_TOKENS}
            )
        ttl: timedelta = settings.REST_KNOX["TOKEN_TTL"]
        instance, raw = AuthToken.objects.create(user=user, expiry=ttl)
        audit_record(
            action="accounts.api_token_created",
            actor=by,
            target=user,
            details={"token_key": instance.token_key, "expiry": instance.expiry},
        )
    return instance, raw


def api_token_revoke(*, user: User, token_key: str, by: User) -> None:
    with transaction.atomic():
        deleted, _unused = AuthToken.objects.filter(user=user, token_key=token_key).delete()
        if not deleted:
            raise ValidationError(_("That token does not exist or was already revoked."))
        audit_record(
            action="accounts.api_token_revoked",
            actor=by,
            target=user,
            details={"token_key": token_key},
        )
