"""Views of inference jobs and their results."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.ai import services
from portal.ai.api._common import _calling
from portal.ai.api.inputs import InferenceJobCreateSerializer
from portal.ai.api.serializers import InferenceJobDetailSerializer, InferenceJobSerializer, _jobs
from portal.ai.models import InferenceJob
from portal.ai.results import results_csv, results_json
from portal.ai.selectors import may_run, models_visible_to, versions_visible_to


def _uploads(request: Request) -> list[Any]:
    return [*request.FILES.getlist("files"), *request.FILES.getlist("files[]")]


def _release_file_ids(request: Request) -> list[Any]:
    data = request.data
    if hasattr(data, "getlist"):
        return [*data.getlist("release_files"), *data.getlist("release_files[]")]
    value = data.get("release_files") or []
    return list(value) if isinstance(value, list) else [value]


def _release_file_picks(ids: Iterable[Any]) -> list[int]:
    try:
        return [int(i) for i in ids]
    except (TypeError, ValueError):
        raise ValidationError({"release_files": [_("Give the files as numeric ids.")]}) from None


class InferenceJobListCreate(generics.ListAPIView):
    """The caller's inference jobs; POST starts one (multipart: uploads or release files)."""

    serializer_class = InferenceJobSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self) -> QuerySet[InferenceJob]:
        return _jobs(self.request.user)

    @extend_schema(
        request={"multipart/form-data": InferenceJobCreateSerializer},
        responses={201: InferenceJobDetailSerializer, 400: OpenApiResponse(description="The refusals by field."),
                   403: OpenApiResponse(description="The caller may not run the model.")},
    )
    def post(self, request: Request) -> Response:
        slug = request.data.get("model") or ""
        wanted = request.data.get("version") or ""
        if not slug or not wanted:
            errors = {name: [_("This field is required.")] for name, value in
                      (("model", slug), ("version", wanted)) if not value}
            raise ValidationError(errors)
        model = models_visible_to(request.user).filter(slug=slug).first()
        if model is None:
            raise ValidationError({"model": [_("No such model.")]})
        if not may_run(request.user, model):
            raise PermissionDenied(_("You may not run this model. Ask for access on its card first."))
        version = versions_visible_to(request.user, model).filter(version=wanted).first()
        if version is None:
            raise ValidationError({"version": [_("This model has no version %(version)s.") % {"version": wanted}]})
        version.model = model
        job = _calling(
            services.inference_job_create, version=version, user=request.user,
            uploads=_uploads(request), release_files=_release_file_picks(_release_file_ids(request)),
        )
        job = _jobs(request.user).prefetch_related("items").get(pk=job.pk)
        return Response(InferenceJobDetailSerializer(job).data, status=status.HTTP_201_CREATED)


class InferenceJobDetail(APIView):
    """One of the caller's jobs with its progress and per-image results; 404 for others' jobs."""

    @extend_schema(responses=InferenceJobDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        job = get_object_or_404(_jobs(request.user).prefetch_related("items"), pk=pk)
        return Response(InferenceJobDetailSerializer(job).data)


class InferenceJobImagesDelete(APIView):
    """Delete the job's stored images (uploaded copies, thumbnails); the results are kept.

    The job's runner only (404 for anybody else); 400 while the job runs or when its images are
    already gone. Answers the job, with ``images_deleted_at`` set."""

    @extend_schema(request=None, responses={
        200: InferenceJobDetailSerializer,
        400: OpenApiResponse(description="The job is still running, or its images were already deleted."),
    })
    def post(self, request: Request, pk: int) -> Response:
        job = get_object_or_404(_jobs(request.user), pk=pk)
        _calling(services.inference_job_images_delete, job=job, by=request.user)
        job = _jobs(request.user).prefetch_related("items").get(pk=job.pk)
        return Response(InferenceJobDetailSerializer(job).data)


class _CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        # Only errors come through here: the results themselves are returned as they are.
        return json.dumps(data, ensure_ascii=False).encode()


class InferenceJobResultsCSV(APIView):
    """The results as CSV (UTF-8 with BOM, as downloaded from the job page)."""

    renderer_classes = [JSONRenderer, _CSVRenderer]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, pk: int) -> HttpResponse:
        job = get_object_or_404(_jobs(request.user), pk=pk)
        response = HttpResponse(results_csv(job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="ai-job-{job.pk}-results.csv"'
        return response


class InferenceJobResultsJSON(APIView):
    """The results as the JSON document downloaded from the job page."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, pk: int) -> Response:
        job = get_object_or_404(_jobs(request.user), pk=pk)
        response = Response(results_json(job))
        response["Content-Disposition"] = f'attachment; filename="ai-job-{job.pk}-results.json"'
        return response
