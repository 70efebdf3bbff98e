"""Every endpoint under /api/v1/, gathered from the apps' ``api.py`` modules."""

from django.urls import include, path

urlpatterns = [
    path("", include("portal.accounts.api_urls")),
    path("", include("portal.societies.api_urls")),
    path("", include("portal.audit.api_urls")),
    path("", include("portal.notifications.api_urls")),
    path("", include("portal.ethics.api_urls")),
    path("", include("portal.datasets.api_urls")),
    path("", include("portal.datasets.manage_api_urls")),
    path("", include("portal.optout.api_urls")),
    path("", include("portal.linkage.api_urls")),
    path("", include("portal.access.api_urls")),
    path("", include("portal.deid.api_urls")),
    path("", include("portal.ai.api_urls")),
]
