from django.urls import path

from portal.access.request_api import AccessRequestDetail, AccessRequestList

urlpatterns = [
    path("access/requests/", AccessRequestList.as_view(), name="api-access-request-list"),
    path("access/requests/<int:pk>/", AccessRequestDetail.as_view(), name="api-access-request-detail"),
]
