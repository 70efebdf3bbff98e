"""Changes to societies and their memberships, each audited in its own transaction."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from portal.accounts.models import Organization, User
from portal.audit.services import audit_record
from portal.societies.models import Society, SocietyMembership

PROFILE_FIELDS = (
    "name_ja",
    "name_en",
    "image_types_ja",
    "image_types_en",
    "description_ja",
    "description_en",
    "website",
)


def society_membership_add(
    *, society: Society, user: User, role: str, by: User | None
) -> SocietyMembership:
    if role not in SocietyMembership.Role.values:
        raise ValidationError({"role": _("Unknown role.")})
    if not user.is_active:
        raise ValidationError({"user": _("An inactive account cannot join a society.")})
    with transaction.atomic():
        membership, created = SocietyMembership.objects.get_or_create(
            society=society, user=user, role=role
        )
        if created:
            audit_record(
                action="societies.membership_added",
                actor=by,
                target=membership,
                details={"society": society.slug, "user": user.email, "role": role},
            )
    return membership


def society_membership_remove(*, membership: SocietyMembership, by: User | None) -> None:
    with transaction.atomic():
        audit_record(
            action="societies.membership_removed",
            actor=by,
            target=membership,
            details={
                "society": membership.society.slug,
                "user": membership.user.email,
                "role": membership.role,
            },
        )
        membership.delete()


def society_create(
    *,
    slug: str,
    name_ja: str,
    name_en: str,
    kind: str,
    by: User | None,
    organization: Organization | None = None,
    **profile: str,
) -> Society:
    with transaction.atomic():
        society = Society(
            slug=slug,
            name_ja=name_ja,
            name_en=name_en,
            kind=kind,
            organization=organization,
            **profile,
        )
        society.full_clean()
        society.save()
        audit_record(
            action="societies.society_created", actor=by, target=society, details={"slug": slug}
        )
    return society


def society_update_profile(*, society: Society, by: User | None, **fields: str) -> Society:
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise ValidationError(
            _("These fields cannot be changed: %(fields)s") % {"fields": ", ".join(sorted(unknown))}
        )
    with transaction.atomic():
        society = Society.objects.select_for_update().get(pk=society.pk)
        changed = {name: value for name, value in fields.items() if getattr(society, name) != value}
        for name, value in changed.items():
            setattr(society, name, value)
        society.full_clean()
        society.save()
        if changed:
            audit_record(
                action="societies.profile_updated",
                actor=by,
                target=society,
                details={"fields": sorted(changed)},
            )
    return society
