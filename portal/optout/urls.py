from django.urls import path

from portal.optout import views

app_name = "optout"

urlpatterns = [
    path("notices/", views.notice_list, name="notice_list"),
    path("notices/new/", views.notice_create, name="notice_create"),
    path("notices/<int:pk>/", views.notice_detail, name="notice_detail"),
    path("notices/<int:pk>/edit/", views.notice_edit, name="notice_edit"),
    path("notices/<int:pk>/publish/", views.notice_publish, name="notice_publish"),
    path("notices/<int:pk>/new-version/", views.notice_new_version, name="notice_new_version"),
    path("notices/<int:pk>/withdraw/", views.notice_withdraw, name="notice_withdraw"),
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_create, name="request_create"),
    path("requests/<str:reference>/", views.request_detail, name="request_detail"),
    path("requests/<str:reference>/notify/", views.request_notify, name="request_notify"),
    path("requests/<str:reference>/close/", views.request_close, name="request_close"),
    path("deletions/", views.deletions, name="deletions"),
    path("deletions/<int:pk>/", views.deletion_confirm, name="deletion_confirm"),
]
