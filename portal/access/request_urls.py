"""Data-access application pages (namespace ``access``; included by ``portal/access/urls.py``)."""

from django.urls import path

from portal.access import request_views as views

urlpatterns = [
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_create, name="request_create"),
    path("requests/<int:pk>/", views.request_detail, name="request_detail"),
    path("requests/<int:pk>/edit/", views.request_edit, name="request_edit"),
    path("requests/<int:pk>/submit/", views.request_submit, name="request_submit"),
    path("requests/<int:pk>/withdraw/", views.request_withdraw, name="request_withdraw"),
    path("requests/<int:pk>/comment/", views.request_comment, name="request_comment"),
    path("requests/<int:pk>/sign/", views.request_sign, name="request_sign"),
    path("steward/", views.steward_queue, name="steward_queue"),
    path("steward/requests/<int:pk>/<int:society_id>/", views.steward_review, name="steward_review"),
    path("steward/requests/<int:pk>/<int:society_id>/screen/", views.steward_screen, name="steward_screen"),
    path("steward/requests/<int:pk>/<int:society_id>/return/", views.steward_return, name="steward_return"),
    path("steward/requests/<int:pk>/<int:society_id>/revoke/", views.steward_revoke, name="steward_revoke"),
    path("steward/requests/<int:pk>/<int:society_id>/countersign/", views.steward_countersign,
         name="steward_countersign"),
    path("committee/", views.committee_inbox_view, name="committee_inbox"),
    path("committee/requests/<int:pk>/<int:society_id>/", views.committee_review, name="committee_review"),
    path("committee/requests/<int:pk>/<int:society_id>/vote/", views.committee_vote, name="committee_vote"),
    path("committee/requests/<int:pk>/<int:society_id>/decide/", views.committee_decide, name="committee_decide"),
]

from portal.access import amendment_views  # noqa: E402

urlpatterns += [
    path("grants/<int:pk>/amendments/new/", amendment_views.amendment_create, name="amendment_create"),
    path("amendments/<int:pk>/", amendment_views.amendment_detail, name="amendment_detail"),
    path("amendments/<int:pk>/decide/", amendment_views.amendment_decide, name="amendment_decide"),
]
