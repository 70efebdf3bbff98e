"""Committees and their members."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from portal.accounts.models import Organization, User
from portal.audit.services import audit_record
from portal.ethics.models import (
    CommitteeMembership,
    EthicsCommittee,
)


def committee_create(
    *, slug: str, name_ja: str, name_en: str, institution: Organization, registration_number: str,
    rules_ja: str = "", rules_en: str = "", by: User | None,
) -> EthicsCommittee:
    with transaction.atomic():
        committee = EthicsCommittee(
            slug=slug, name_ja=name_ja, name_en=name_en, institution=institution,
            registration_number=registration_number, rules_ja=rules_ja, rules_en=rules_en,
        )
        committee.full_clean()
        committee.save()
        audit_record(action="ethics.committee_created", actor=by, target=committee, details={"slug": slug})
    return committee


def committee_member_add(
    *, committee: EthicsCommittee, user: User, role: str, category: str = "", is_external: bool = False,
    sex: str = "", affiliation: str = "", by: User | None,
) -> CommitteeMembership:
    with transaction.atomic():
        membership = CommitteeMembership(
            committee=committee, user=user, role=role, category=category, is_external=is_external,
            sex=sex, affiliation=affiliation,
        )
        if role != CommitteeMembership.Role.SECRETARIAT and not (category and sex):
            raise ValidationError(_("A voting member needs a category and a sex (for the quorum rules)."))
        membership.full_clean()
        membership.save()
        audit_record(
            action="ethics.committee_member_added", actor=by, target=membership,
            details={"committee": committee.slug, "user": user.email, "role": role},
        )
    return membership
