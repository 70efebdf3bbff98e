from __future__ import annotations

from django.db.models import QuerySet

from portal.accounts.models import User
from portal.societies.models import Society


def society_list_public() -> QuerySet[Society]:
    return Society.objects.order_by("kind", "id")


def member_users(society: Society | int | None, *roles: str) -> list[User]:
    """The active members of the society holding any of ``roles``, each once, in id order."""
    if society is None:
        return []
    society_id = society if isinstance(society, int) else society.pk
    return list(
        User.objects.filter(
            is_active=True, society_memberships__society_id=society_id, society_memberships__role__in=roles
        ).distinct().order_by("pk")
    )
