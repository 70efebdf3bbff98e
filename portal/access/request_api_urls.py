from django.urls import path

from portal.access import request_actions_api as actions

R = "access/requests/<int:pk>/"
S = R + "societies/<int:society_id>/"

urlpatterns = [
    path("access/requests/", actions.AccessRequestListCreate.as_view(), name="api-access-request-list"),
    path(R, actions.AccessRequestDetailUpdate.as_view(), name="api-access-request-detail"),
    # Every action of the application pages (portal/access/request_urls.py), with the same checks.
    path(R + "submit/", actions.AccessRequestSubmit.as_view(), name="api-access-request-submit"),
    path(R + "withdraw/", actions.AccessRequestWithdraw.as_view(), name="api-access-request-withdraw"),
    path(R + "comments/", actions.AccessRequestComment.as_view(), name="api-access-request-comment"),
    path(R + "sign/", actions.AccessRequestSign.as_view(), name="api-access-request-sign"),
    path(S + "screen/", actions.AccessRequestScreen.as_view(), name="api-access-request-screen"),
    path(S + "return/", actions.AccessRequestReturn.as_view(), name="api-access-request-return"),
    path(S + "revoke/", actions.AccessRequestRevoke.as_view(), name="api-access-request-revoke"),
    path(S + "vote/", actions.AccessRequestVote.as_view(), name="api-access-request-vote"),
    path(S + "decide/", actions.AccessRequestDecide.as_view(), name="api-access-request-decide"),
    path(S + "countersign/", actions.AccessRequestCountersign.as_view(), name="api-access-request-countersign"),
]
