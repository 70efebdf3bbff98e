"""Reads about grants: who holds which release now."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.utils import timezone

from portal.access.models import Grant
from portal.accounts.models import User
from portal.datasets.models import DatasetRelease


def active_grants(now=None) -> QuerySet[Grant]:  # type: ignore[no-untyped-def]
    """Grants in force at ``now``: active, started and not yet expired."""
    now = now or timezone.now()
    return Grant.objects.filter(status=Grant.Status.ACTIVE, starts_at__lte=now, expires_at__gt=now)


def active_grants_holding(release_ids: Iterable[int]) -> QuerySet[Grant]:
    """The grants in force now that include any of these releases (each grant once)."""
    ids = list(release_ids)
    if not ids:
        return Grant.objects.none()
    return active_grants().filter(releases__in=ids).distinct().order_by("id")


def user_has_active_grant_on(user: User | object, release: DatasetRelease) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return active_grants().filter(users=user, releases=release).exists()
