"""Data-access endpoints under /api/v1/: applications, grants, manifests and links, and every
action of the pages (applying, review, signing, amendments, usage reports)."""

from portal.access import grant_actions_api_urls, grant_api_urls, request_api_urls

urlpatterns = [*request_api_urls.urlpatterns, *grant_api_urls.urlpatterns, *grant_actions_api_urls.urlpatterns]
