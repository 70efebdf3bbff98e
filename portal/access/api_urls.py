"""Data-access endpoints under /api/v1/: applications, grants, manifests and links."""

from portal.access import grant_api_urls, request_api_urls

urlpatterns = [*request_api_urls.urlpatterns, *grant_api_urls.urlpatterns]
