from django.urls import path

from portal.linkage.api import LinkageApprovalGrant, LinkageApprovalRevoke, MatchList

urlpatterns = [
    path("linkage/matches/", MatchList.as_view(), name="api-linkage-match-list"),
    path("linkage/approvals/", LinkageApprovalGrant.as_view(), name="api-linkage-approval-grant"),
    path("linkage/approvals/<int:pk>/revoke/", LinkageApprovalRevoke.as_view(), name="api-linkage-approval-revoke"),
]
