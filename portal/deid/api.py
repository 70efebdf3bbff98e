"""Anonymisation jobs over the API: the jobs of the societies the caller administers, and the job
page's actions (cancel, resume, build the release, review a held-back file) with the page's check
(``portal.deid.views._job``: 404 for outsiders, 403 for members without the right)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api import call_service
from portal.deid import services
from portal.deid.models import DeidFileResult, DeidJob
from portal.deid.selectors import jobs_visible_to
from portal.deid.views import _job as managed_job


class DeidJobSerializer(serializers.ModelSerializer):
    society = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = DeidJob
        fields = ("id", "society", "dataset", "source_kind", "options", "status", "total", "done",
                  "held_back", "failed", "created_at", "started_at", "finished_at", "report")
        read_only_fields = fields


class _Pages(CursorPagination):
    ordering = "-id"
    page_size = 50


class DeidJobList(generics.ListAPIView):
    serializer_class = DeidJobSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = _Pages

    def get_queryset(self) -> QuerySet[DeidJob]:
        return jobs_visible_to(self.request.user)


class DeidJobDetail(generics.RetrieveAPIView):
    serializer_class = DeidJobSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> QuerySet[DeidJob]:
        return jobs_visible_to(self.request.user)


# --- The job page's actions (same checks, same services) --------------------------------------


class DeidReleaseInputSerializer(serializers.Serializer):
    notes_ja = serializers.CharField(required=False, allow_blank=True, default="")
    notes_en = serializers.CharField(required=False, allow_blank=True, default="")
    include_partial = serializers.BooleanField(
        required=False, default=False, help_text="Release only the files that succeeded, leaving out the failed ones.")


class DeidFileReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[("no_burned_in_text", "No burned-in text: process and release it"),
                                                ("withhold", "Keep it held back")])
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class DeidReleaseResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()


def _job_state(pk: int) -> Response:
    return Response(DeidJobSerializer(DeidJob.objects.select_related("society", "dataset").get(pk=pk)).data)


class DeidJobCancel(APIView):
    """Cancel a running job."""

    @extend_schema(request=None, responses=DeidJobSerializer)
    def post(self, request: Request, pk: int) -> Response:
        job = managed_job(request, pk)  # type: ignore[arg-type]
        call_service(services.deid_job_cancel, job=job, by=request.user)
        return _job_state(pk)


class DeidJobResume(APIView):
    """Queue again the files still missing."""

    @extend_schema(request=None, responses=DeidJobSerializer)
    def post(self, request: Request, pk: int) -> Response:
        job = managed_job(request, pk)  # type: ignore[arg-type]
        call_service(services.deid_job_resume, job=job, by=request.user)
        return _job_state(pk)


class DeidJobRelease(APIView):
    """Build the dataset's release from the job's files (problems are answered file by file, 400)."""

    @extend_schema(request=DeidReleaseInputSerializer, responses={201: DeidReleaseResultSerializer})
    def post(self, request: Request, pk: int) -> Response:
        job = managed_job(request, pk)  # type: ignore[arg-type]
        parsed = DeidReleaseInputSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        release = call_service(services.deid_job_build_release, job=job, by=request.user, **parsed.validated_data)
        return Response({"id": release.pk, "version": release.version}, status=201)


class DeidFileReview(APIView):
    """A society admin's decision on one held-back file."""

    @extend_schema(request=DeidFileReviewSerializer, responses=DeidJobSerializer)
    def post(self, request: Request, pk: int, result_pk: int) -> Response:
        job = managed_job(request, pk)  # type: ignore[arg-type]
        result = get_object_or_404(DeidFileResult, pk=result_pk, job=job)
        parsed = DeidFileReviewSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(services.deid_file_review, result=result, by=request.user, **parsed.validated_data)
        return _job_state(pk)
