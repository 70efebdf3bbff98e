from django.urls import path

from portal.optout.api import NoticeDetail, NoticeList, Statistics

urlpatterns = [
    path("optout/notices/", NoticeList.as_view(), name="api-optout-notice-list"),
    path("optout/notices/<str:reference>/", NoticeDetail.as_view(), name="api-optout-notice-detail"),
    path("optout/statistics/", Statistics.as_view(), name="api-optout-statistics"),
]
