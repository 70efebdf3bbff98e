from django.urls import path

from portal.deid import views

app_name = "deid"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("new/", views.job_create, name="create"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/progress/", views.job_progress, name="progress"),
    path("<int:pk>/cancel/", views.job_cancel, name="cancel"),
    path("<int:pk>/resume/", views.job_resume, name="resume"),
    path("<int:pk>/release/", views.job_release, name="release"),
    path("<int:pk>/files/<int:result_pk>/review/", views.file_review, name="file_review"),
]
