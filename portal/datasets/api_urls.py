from django.urls import path

from portal.datasets.api import (
    CatalogueStatistics,
    DatasetDetail,
    DatasetList,
    DatasetReleaseList,
    ReleaseManifest,
)

urlpatterns = [
    path("datasets/", DatasetList.as_view(), name="api-dataset-list"),
    path("datasets/<slug:slug>/", DatasetDetail.as_view(), name="api-dataset-detail"),
    path("datasets/<slug:slug>/releases/", DatasetReleaseList.as_view(), name="api-dataset-release-list"),
    path("releases/<int:pk>/manifest/", ReleaseManifest.as_view(), name="api-release-manifest"),
    path("statistics/", CatalogueStatistics.as_view(), name="api-statistics"),
]
