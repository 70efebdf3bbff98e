"""Hosted AI models over the API, under /api/v1/ai/ (see ``portal.ai.api``)."""

from django.urls import path

from portal.ai import api

urlpatterns = [
    path("ai/models/", api.AIModelList.as_view(), name="api-ai-model-list"),
    path("ai/models/<slug:slug>/", api.AIModelDetail.as_view(), name="api-ai-model-detail"),
    path("ai/models/<slug:slug>/versions/", api.ModelVersionCreate.as_view(), name="api-ai-version-create"),
    path("ai/models/<slug:slug>/versions/<str:version>/", api.ModelVersionDetail.as_view(),
         name="api-ai-version-detail"),
    path("ai/models/<slug:slug>/versions/<str:version>/publish/", api.ModelVersionPublish.as_view(),
         name="api-ai-version-publish"),
    path("ai/models/<slug:slug>/versions/<str:version>/retire/", api.ModelVersionRetire.as_view(),
         name="api-ai-version-retire"),
    path("ai/models/<slug:slug>/access-requests/", api.ModelAccessRequestCreate.as_view(),
         name="api-ai-access-request-create"),
    path("ai/access-requests/", api.ModelAccessRequestList.as_view(), name="api-ai-access-request-list"),
    path("ai/access-requests/<int:pk>/decision/", api.ModelAccessRequestDecision.as_view(),
         name="api-ai-access-request-decision"),
    path("ai/access-requests/<int:pk>/withdraw/", api.ModelAccessRequestWithdraw.as_view(),
         name="api-ai-access-request-withdraw"),
    path("ai/access-requests/<int:pk>/revoke/", api.ModelAccessRequestRevoke.as_view(),
         name="api-ai-access-request-revoke"),
    path("ai/jobs/", api.InferenceJobListCreate.as_view(), name="api-ai-job-list"),
    path("ai/jobs/<int:pk>/", api.InferenceJobDetail.as_view(), name="api-ai-job-detail"),
    path("ai/jobs/<int:pk>/images/delete/", api.InferenceJobImagesDelete.as_view(),
         name="api-ai-job-images-delete"),
    path("ai/jobs/<int:pk>/results.csv", api.InferenceJobResultsCSV.as_view(), name="api-ai-job-results-csv"),
    path("ai/jobs/<int:pk>/results.json", api.InferenceJobResultsJSON.as_view(),
         name="api-ai-job-results-json"),
]
