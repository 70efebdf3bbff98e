"""Notifications over the API, under /api/v1/notifications/ (see ``portal.notifications.api``)."""

from django.urls import path

from portal.notifications import api

urlpatterns = [
    path("notifications/", api.NotificationList.as_view(), name="api-notification-list"),
    path("notifications/unread-count/", api.NotificationUnreadCount.as_view(), name="api-notification-unread-count"),
    path("notifications/read-all/", api.NotificationMarkAllRead.as_view(), name="api-notification-read-all"),
    path("notifications/<int:pk>/", api.NotificationDetail.as_view(), name="api-notification-detail"),
    path("notifications/<int:pk>/read/", api.NotificationMarkRead.as_view(), name="api-notification-read"),
]
