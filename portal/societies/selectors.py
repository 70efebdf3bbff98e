from __future__ import annotations

from django.db.models import QuerySet

from portal.societies.models import Society


def society_list_public() -> QuerySet[Society]:
    return Society.objects.order_by("kind", "id")
