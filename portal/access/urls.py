"""Data-access pages under /access/ (namespace ``access``), gathered from their three areas."""

from portal.access import grant_urls, report_urls, request_urls

app_name = "access"

urlpatterns = [*request_urls.urlpatterns, *grant_urls.urlpatterns, *report_urls.urlpatterns]
