from django.urls import path

from portal.access import grant_actions_api as actions

# Every action of the grant, amendment and report pages (grant_urls.py, request_urls.py, report_urls.py).
urlpatterns = [
    path("access/grants/<int:pk>/revoke/", actions.GrantRevoke.as_view(), name="api-access-grant-revoke"),
    path("access/grants/<int:pk>/extend/", actions.GrantExtend.as_view(), name="api-access-grant-extend"),
    path("access/grants/<int:pk>/training/", actions.GrantTrainingRenew.as_view(), name="api-access-grant-training"),
    path("access/grants/<int:pk>/amendments/", actions.GrantAmendmentCreate.as_view(),
         name="api-access-amendment-create"),
    path("access/grants/<int:pk>/stop-report/", actions.UsageReportStop.as_view(), name="api-access-report-stop"),
    path("access/amendments/<int:pk>/decide/", actions.GrantAmendmentDecide.as_view(),
         name="api-access-amendment-decide"),
    path("access/reports/<int:pk>/submit/", actions.UsageReportSubmit.as_view(), name="api-access-report-submit"),
    path("access/reports/<int:pk>/confirm/", actions.UsageReportConfirm.as_view(), name="api-access-report-confirm"),
    path("access/reports/<int:pk>/accept/", actions.UsageReportAccept.as_view(), name="api-access-report-accept"),
]
