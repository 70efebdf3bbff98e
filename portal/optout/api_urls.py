from django.urls import path

from portal.optout import manage_api as manage
from portal.optout.api import NoticeDetail, NoticeList, Statistics

urlpatterns = [
    path("optout/notices/", NoticeList.as_view(), name="api-optout-notice-list"),
    path("optout/notices/<str:reference>/", NoticeDetail.as_view(), name="api-optout-notice-detail"),
    path("optout/statistics/", Statistics.as_view(), name="api-optout-statistics"),
    # Every action of the management pages (portal/optout/urls.py), with the same checks.
    path("optout/manage/notices/", manage.NoticeCreate.as_view(), name="api-optout-notice-create"),
    path("optout/manage/notices/<int:pk>/draft/", manage.NoticeDraft.as_view(), name="api-optout-notice-draft"),
    path("optout/manage/notices/<int:pk>/publish/", manage.NoticePublish.as_view(),
         name="api-optout-notice-publish"),
    path("optout/manage/notices/<int:pk>/new-version/", manage.NoticeNewVersion.as_view(),
         name="api-optout-notice-new-version"),
    path("optout/manage/notices/<int:pk>/withdraw/", manage.NoticeWithdraw.as_view(),
         name="api-optout-notice-withdraw"),
    path("optout/requests/", manage.RequestRecord.as_view(), name="api-optout-request-record"),
    path("optout/requests/<str:reference>/notify/", manage.RequestNotify.as_view(),
         name="api-optout-request-notify"),
    path("optout/requests/<str:reference>/close/", manage.RequestClose.as_view(), name="api-optout-request-close"),
    path("optout/deletions/<int:pk>/confirm/", manage.DeletionConfirm.as_view(),
         name="api-optout-deletion-confirm"),
]
