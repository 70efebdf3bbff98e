from django.urls import path

from portal.deid.api import DeidJobDetail, DeidJobList

urlpatterns = [
    path("deid/jobs/", DeidJobList.as_view(), name="api-deid-job-list"),
    path("deid/jobs/<int:pk>/", DeidJobDetail.as_view(), name="api-deid-job-detail"),
]
