"""Reads about extensions and changes of users (延長・変更申請)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from portal.access.models import GrantAmendment
from portal.accounts.models import User
from portal.accounts.roles import Role, has_role
from portal.societies.models import SocietyMembership


def amendments_awaiting_decision(user: User | object) -> QuerySet[GrantAmendment]:
    """Requests awaiting a decision by ``user``: those of the societies they steward or administer
    (every one for the platform operator), oldest first, in one query."""
    if not getattr(user, "is_authenticated", False):
        return GrantAmendment.objects.none()
    base = GrantAmendment.objects.filter(status=GrantAmendment.Status.SUBMITTED).select_related(
        "grant__society", "grant__access_request__organization", "requested_by",
    ).order_by("created_at", "id")
    if has_role(user, Role.OPERATOR):
        return base
    societies = SocietyMembership.objects.filter(
        user_id=user.pk, role__in=["steward", "admin"]  # type: ignore[union-attr]
    ).values("society_id")
    return base.filter(grant__society_id__in=societies)


def amendments_visible_to(user: User | object) -> QuerySet[GrantAmendment]:
    """Requests ``user`` may read: their application's (applicant, principal investigator), their
    societies' (steward, administrator), every one for the operator."""
    if not getattr(user, "is_authenticated", False):
        return GrantAmendment.objects.none()
    base = GrantAmendment.objects.select_related(
        "grant__society", "grant__access_request", "requested_by", "decided_by",
    )
    if has_role(user, Role.OPERATOR):
        return base
    societies = SocietyMembership.objects.filter(
        user_id=user.pk, role__in=["steward", "admin"]  # type: ignore[union-attr]
    ).values("society_id")
    return base.filter(
        Q(grant__access_request__applicant=user) | Q(grant__access_request__principal_investigator=user)
        | Q(grant__society_id__in=societies)
    ).distinct()
