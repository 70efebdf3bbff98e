"""The management pages' actions (portal/datasets/urls.py) under /api/v1/manage/, with the same checks."""

from django.urls import path

from portal.datasets.manage_api import (
    DatasetCreate,
    DatasetEdit,
    DatasetPublish,
    DatasetWithdraw,
    ReleaseWithdraw,
)

urlpatterns = [
    path("manage/datasets/", DatasetCreate.as_view(), name="api-dataset-create"),
    path("manage/datasets/<int:pk>/", DatasetEdit.as_view(), name="api-dataset-edit"),
    path("manage/datasets/<int:pk>/publish/", DatasetPublish.as_view(), name="api-dataset-publish"),
    path("manage/datasets/<int:pk>/withdraw/", DatasetWithdraw.as_view(), name="api-dataset-withdraw"),
    path("manage/releases/<int:pk>/withdraw/", ReleaseWithdraw.as_view(), name="api-release-withdraw"),
]
