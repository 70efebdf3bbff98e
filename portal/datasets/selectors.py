"""Who may manage which datasets (the public catalogue's reads are in ``catalogue.py``)."""

from __future__ import annotations

from django.db.models import QuerySet

from portal.accounts.roles import Role, has_role
from portal.datasets.models import Dataset
from portal.societies.models import Society, SocietyMembership


def is_operator(user: object) -> bool:
    return has_role(user, Role.OPERATOR)


def managed_society_ids(user: object) -> set[int]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cached: set[int] | None = getattr(user, "_portal_admin_society_ids", None)
    if cached is None:
        cached = set(
            SocietyMembership.objects.filter(user=user, role="admin").values_list("society_id", flat=True)
        )
        user._portal_admin_society_ids = cached  # type: ignore[attr-defined]
    return cached


def may_manage_society(user: object, society: Society) -> bool:
    """Society admins of ``society`` and the platform operator manage its datasets."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return is_operator(user) or society.pk in managed_society_ids(user)


def societies_managed_by(user: object) -> QuerySet[Society]:
    if is_operator(user):
        return Society.objects.order_by("id")
    return Society.objects.filter(pk__in=managed_society_ids(user)).order_by("id")


def datasets_managed_by(user: object) -> QuerySet[Dataset]:
    """The datasets ``user`` may manage: their societies' (all of them for the operator)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return Dataset.objects.none()
    if is_operator(user):
        return Dataset.objects.all()
    return Dataset.objects.filter(society_id__in=managed_society_ids(user))


def may_see_managed_dataset(user: object) -> bool:
    """Whether the management pages exist for ``user`` at all (admins of some society, operator)."""
    return is_operator(user) or bool(managed_society_ids(user))
