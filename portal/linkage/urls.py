from django.urls import path

from portal.linkage import views

app_name = "linkage"

urlpatterns = [
    path("", views.search, name="search"),
    path("export.csv", views.export, name="export"),
    path("approvals/", views.approval_list, name="approval_list"),
    path("approvals/new/", views.approval_grant, name="approval_grant"),
    path("approvals/<int:pk>/revoke/", views.approval_revoke, name="approval_revoke"),
]
