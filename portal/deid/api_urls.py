from django.urls import path

from portal.deid.api import (
    DeidFileReview,
    DeidJobCancel,
    DeidJobDetail,
    DeidJobList,
    DeidJobRelease,
    DeidJobResume,
)

urlpatterns = [
    path("deid/jobs/", DeidJobList.as_view(), name="api-deid-job-list"),
    path("deid/jobs/<int:pk>/", DeidJobDetail.as_view(), name="api-deid-job-detail"),
    # The job page's actions (portal/deid/urls.py), with the same checks.
    path("deid/jobs/<int:pk>/cancel/", DeidJobCancel.as_view(), name="api-deid-job-cancel"),
    path("deid/jobs/<int:pk>/resume/", DeidJobResume.as_view(), name="api-deid-job-resume"),
    path("deid/jobs/<int:pk>/release/", DeidJobRelease.as_view(), name="api-deid-job-release"),
    path("deid/jobs/<int:pk>/files/<int:result_pk>/review/", DeidFileReview.as_view(),
         name="api-deid-file-review"),
]
