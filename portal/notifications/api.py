"""A person's notifications over the API: their own only (anyone else's is a 404), newest first."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.notifications import services
from portal.notifications.models import Notification
from portal.notifications.selectors import (
    notification_get_for,
    notification_list_for,
    notification_unread_count,
)
from portal.notifications.services import portal_link


class NotificationSerializer(serializers.ModelSerializer):
    link = serializers.SerializerMethodField(help_text="The portal page the message is about (absolute URL).")
    is_read = serializers.BooleanField(read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "area", "subject", "body", "url", "link", "created_at", "read_at", "is_read",
                  "mail_status", "mail_sent_at"]
        read_only_fields = fields

    def get_link(self, notification: Notification) -> str:
        return portal_link(notification.url)


class NotificationList(generics.ListAPIView):
    """The signed-in person's notifications, newest first; ``?unread=true`` for the unread only."""

    serializer_class = NotificationSerializer

    @extend_schema(parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL, description="Unread only.")])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Notification]:
        unread_only = self.request.query_params.get("unread", "").lower() in {"1", "true", "yes"}
        return notification_list_for(self.request.user, unread_only=unread_only)  # type: ignore[arg-type]


class NotificationDetail(APIView):
    """One of the person's notifications (reading it here does not mark it read)."""

    @extend_schema(responses=NotificationSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(NotificationSerializer(notification_get_for(request.user, pk)).data)  # type: ignore[arg-type]


class NotificationMarkRead(APIView):
    """Mark one of the person's notifications read."""

    @extend_schema(request=None, responses=NotificationSerializer)
    def post(self, request: Request, pk: int) -> Response:
        notification = notification_get_for(request.user, pk)  # type: ignore[arg-type]
        services.notification_mark_read(notification=notification, by=request.user)  # type: ignore[arg-type]
        return Response(NotificationSerializer(notification).data)


class NotificationMarkAllRead(APIView):
    """Mark every unread notification of the person read."""

    @extend_schema(request=None, responses=inline_serializer("NotificationsMarked", {"marked": serializers.IntegerField()}))
    def post(self, request: Request) -> Response:
        return Response({"marked": services.notification_mark_all_read(by=request.user)})  # type: ignore[arg-type]


class NotificationUnreadCount(APIView):
    """How many of the person's notifications are unread."""

    @extend_schema(responses=inline_serializer("NotificationsUnread", {"unread": serializers.IntegerField()}))
    def get(self, request: Request) -> Response:
        return Response({"unread": notification_unread_count(request.user)})  # type: ignore[arg-type]
