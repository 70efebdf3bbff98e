"""Reading the inbox: a person sees their own messages only."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from portal.accounts.models import User
from portal.notifications.models import Notification


def notification_list_for(user: User, *, unread_only: bool = False) -> QuerySet[Notification]:
    """``user``'s messages, newest first."""
    notifications = Notification.objects.filter(recipient_id=user.pk).order_by("-created_at", "-id")
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications


def notification_unread_count(user: User) -> int:
    """One COUNT over the partial index of unread messages."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(recipient_id=user.pk, read_at__isnull=True).count()


def notification_get_for(user: User, pk: int) -> Notification:
    """``user``'s own message ``pk``; anybody else's, or none, is a 404 (its existence is not told)."""
    try:
        return Notification.objects.get(pk=pk, recipient_id=user.pk)
    except Notification.DoesNotExist:
        raise Http404 from None
