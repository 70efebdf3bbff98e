from django.urls import path

from portal.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("new/", views.dataset_create, name="create"),
    path("<int:pk>/", views.dataset_detail, name="detail"),
    path("<int:pk>/edit/", views.dataset_edit, name="edit"),
    path("<int:pk>/publish/", views.dataset_publish, name="publish"),
    path("<int:pk>/withdraw/", views.dataset_withdraw, name="withdraw"),
    path("<int:pk>/releases/new/", views.release_upload, name="release_upload"),
    path("<int:pk>/releases/manifest-example.csv", views.manifest_example, name="manifest_example"),
    path("releases/<int:pk>/", views.release_detail, name="release_detail"),
    path("releases/<int:pk>/withdraw/", views.release_withdraw, name="release_withdraw"),
]
