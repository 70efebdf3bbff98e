from __future__ import annotations

from django.db.models import QuerySet

from portal.societies.models import Society, SocietyMembership


def society_list_public() -> QuerySet[Society]:
    return Society.objects.order_by("kind", "id")


def member_emails(society: Society | int, *roles: str) -> list[str]:
    """The e-mail addresses of the society's members holding any of ``roles`` (e.g. "admin")."""
    society_id = society if isinstance(society, int) else society.pk
    return list(
        SocietyMembership.objects.filter(society_id=society_id, role__in=roles).values_list("user__email", flat=True)
    )
