"""Pages of the hosted AI models, under /ai/ (namespace ``ai``)."""

from django.urls import path

from portal.ai import views

app_name = "ai"
urlpatterns = [
    path("", views.model_list, name="model_list"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/progress/", views.job_progress, name="job_progress"),
    path("jobs/<int:pk>/results.csv", views.job_results_csv, name="job_results_csv"),
    path("jobs/<int:pk>/results.json", views.job_results_json, name="job_results_json"),
    path("jobs/<int:pk>/thumbnails/<int:position>.png", views.thumbnail, name="thumbnail"),
    path("jobs/<int:pk>/images/delete/", views.job_images_delete, name="job_images_delete"),
    path("manage/", views.manage, name="manage"),
    path("manage/new/", views.model_create, name="model_create"),
    path("manage/requests/", views.request_list, name="request_list"),
    path("manage/requests/<int:pk>/decide/", views.request_decide, name="request_decide"),
    path("manage/requests/<int:pk>/revoke/", views.request_revoke, name="request_revoke"),
    path("manage/<slug:slug>/edit/", views.model_edit, name="model_edit"),
    path("manage/<slug:slug>/versions/new/", views.version_upload, name="version_upload"),
    path("manage/<slug:slug>/v/<str:version>/publish/", views.version_publish, name="version_publish"),
    path("manage/<slug:slug>/v/<str:version>/retire/", views.version_retire, name="version_retire"),
    path("requests/<int:pk>/withdraw/", views.request_withdraw, name="request_withdraw"),
    path("<slug:slug>/", views.model_detail, name="model_detail"),
    path("<slug:slug>/request/", views.access_request, name="access_request"),
    path("<slug:slug>/samples/<slug:label>.png", views.demo_sample, name="demo_sample"),
    path("<slug:slug>/v/<str:version>/", views.version_detail, name="version_detail"),
    path("<slug:slug>/v/<str:version>/run/", views.run, name="run"),
]
