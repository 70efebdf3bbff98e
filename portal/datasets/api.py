"""The catalogue over the API: datasets, releases and statistics are public; manifests need sign-in.

A manifest lists a release's files (path, size, checksum, type, modality, study date, annotation)
to any signed-in user; the pseudonymous subject IDs only to holders of an active grant on that
release. Download links come with the data-access issue: until then ``link`` is always null and
the response says ``links_available: false``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.vocabulary import Modality
from portal.datasets.catalogue_selectors import (
    CatalogueFilters,
    catalogue_dataset,
    catalogue_search,
)
from portal.datasets.models import (
    AnnotationGranularity,
    Dataset,
    DatasetRelease,
    DatasetStatus,
    ReleaseFile,
)
from portal.datasets.statistics import cached_catalogue_statistics, statistics_as_data
from portal.lib import hooks

# --- Query parameters -----------------------------------------------------------------------------


class CatalogueQuerySerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200,
                              help_text="Words that must all appear in the title, description, body part or disease areas.")
    society = serializers.SlugField(required=False, allow_blank=True, help_text="A society's slug.")
    modality = serializers.ChoiceField(choices=Modality.choices, required=False, allow_blank=True)
    granularity = serializers.ChoiceField(choices=AnnotationGranularity.choices, required=False,
                                          allow_blank=True, help_text="Annotation granularity.")
    commercial = serializers.BooleanField(required=False, default=False,
                                          help_text="Only datasets whose access tier allows commercial use.")

    def filters(self) -> CatalogueFilters:
        data = self.validated_data
        return CatalogueFilters(
            q=data.get("q", ""), society=data.get("society", ""), modality=data.get("modality", ""),
            granularity=data.get("granularity", ""), commercial=data.get("commercial", False),
        )


# --- Serializers ----------------------------------------------------------------------------------


class SocietyRefSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name_ja = serializers.CharField()
    name_en = serializers.CharField()


class CommitteeRefSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name_ja = serializers.CharField()
    name_en = serializers.CharField()


class ProtocolRefSerializer(serializers.Serializer):
    number = serializers.CharField(allow_null=True)
    committee = CommitteeRefSerializer()


class NoticeRefSerializer(serializers.Serializer):
    reference = serializers.CharField()
    title_ja = serializers.CharField()
    title_en = serializers.CharField()
    url = serializers.CharField()


class DatasetListSerializer(serializers.ModelSerializer):
    society = SocietyRefSerializer(read_only=True)
    disease_areas = serializers.ListField(child=serializers.CharField(), source="disease_area_list", read_only=True)
    commercial_use_allowed = serializers.BooleanField(read_only=True)
    case_count = serializers.IntegerField(source="listed_case_count", read_only=True,
                                          help_text="From the newest available release (declared until there is one).")
    image_count = serializers.IntegerField(source="listed_image_count", read_only=True,
                                           help_text="From the newest available release (declared until there is one).")
    newest_release_version = serializers.IntegerField(read_only=True, allow_null=True)
    newest_release_date = serializers.DateTimeField(read_only=True, allow_null=True)
    url = serializers.SerializerMethodField(help_text="The dataset's public catalogue page.")

    class Meta:
        model = Dataset
        fields = [
            "slug", "title_ja", "title_en", "description_ja", "description_en", "society", "modality",
            "body_part", "disease_areas", "annotation_granularity", "annotation_format", "case_count",
            "image_count", "access_tier", "commercial_use_allowed", "published_at",
            "newest_release_version", "newest_release_date", "url",
        ]
        read_only_fields = fields

    def get_url(self, dataset: Dataset) -> str:
        return reverse("catalogue:detail", args=[dataset.slug])


class ReleaseSerializer(serializers.ModelSerializer):
    # A plain string in the schema: a second enum named "status" collides with the protocols' one
    # (drf-spectacular W001) until SPECTACULAR_SETTINGS gains ENUM_NAME_OVERRIDES.
    status = serializers.CharField(read_only=True, help_text="available or withdrawn")
    manifest_url = serializers.SerializerMethodField(
        help_text="The file list (signed-in users; subject IDs only with an active grant)."
    )

    class Meta:
        model = DatasetRelease
        fields = [
            "id", "version", "status", "created_at", "case_count", "image_count", "file_count",
            "total_bytes", "excluded_subject_count", "earliest_study_date", "latest_study_date",
            "manifest_sha256", "notes_ja", "notes_en", "withdrawn_at", "manifest_url",
        ]
        read_only_fields = fields

    def get_manifest_url(self, release: DatasetRelease) -> str:
        return reverse("api-release-manifest", args=[release.pk])


class DatasetDetailSerializer(DatasetListSerializer):
    protocol = ProtocolRefSerializer(read_only=True)
    releases = serializers.SerializerMethodField()
    optout_notices = serializers.SerializerMethodField(help_text="The published opt-out notices covering it.")

    class Meta(DatasetListSerializer.Meta):
        fields = [
            *DatasetListSerializer.Meta.fields, "legal_status", "collection_start", "collection_end",
            "protocol", "releases", "optout_notices",
        ]
        read_only_fields = fields

    @extend_schema_field(ReleaseSerializer(many=True))
    def get_releases(self, dataset: Dataset) -> list[dict[str, Any]]:
        return ReleaseSerializer(dataset.releases.all(), many=True).data  # type: ignore[return-value]

    @extend_schema_field(NoticeRefSerializer(many=True))
    def get_optout_notices(self, dataset: Dataset) -> list[dict[str, str]]:
        notices = []
        # The published opt-out notices covering it, with their public pages (portal.optout).
        for notice, url in hooks.joined("dataset_public_notices", dataset=dataset):
            version = notice.current_version
            notices.append({
                "reference": notice.reference,
                "title_ja": version.title_ja if version else "",
                "title_en": version.title_en if version else "",
                "url": url,
            })
        return notices


class ManifestFileSerializer(serializers.ModelSerializer):
    subject_pseudonym = serializers.SerializerMethodField(
        help_text="Only for holders of an active grant on the release; null otherwise."
    )
    link = serializers.SerializerMethodField(
        help_text="A short-lived download link; null until download links are available."
    )

    class Meta:
        model = ReleaseFile
        fields = [
            "path", "size", "sha256", "media_type", "modality", "study_date", "annotation_path",
            "is_annotation", "subject_pseudonym", "link",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_subject_pseudonym(self, file: ReleaseFile) -> str | None:
        return file.subject_pseudonym if self.context.get("includes_subjects") else None

    @extend_schema_field(OpenApiTypes.URI)
    def get_link(self, file: ReleaseFile) -> str | None:
        return None


class StatisticsYearSerializer(serializers.Serializer):
    year = serializers.IntegerField(allow_null=True, help_text="Year of study; null when unknown.")
    images = serializers.IntegerField()
    cases = serializers.IntegerField()


class StatisticsSeriesSerializer(serializers.Serializer):
    label_ja = serializers.CharField()
    label_en = serializers.CharField()
    images = serializers.IntegerField()
    cases = serializers.IntegerField(help_text="Distinct pseudonymous subjects over all years.")
    by_year = StatisticsYearSerializer(many=True)


class SocietySeriesSerializer(StatisticsSeriesSerializer):
    society = serializers.SlugField()


class ModalitySeriesSerializer(StatisticsSeriesSerializer):
    modality = serializers.ChoiceField(choices=Modality.choices)


class StatisticsSerializer(serializers.Serializer):
    basis = serializers.CharField(help_text="What counts: the newest available release of each published dataset.")
    time_axis = serializers.CharField(help_text="Years are years of study date.")
    images = serializers.IntegerField()
    cases = serializers.IntegerField()
    by_society = SocietySeriesSerializer(many=True)
    by_modality = ModalitySeriesSerializer(many=True)


# --- Views ----------------------------------------------------------------------------------------


class DatasetList(generics.ListAPIView):
    """Published datasets (public), newest first, with the catalogue's search and filters."""

    permission_classes = [AllowAny]
    serializer_class = DatasetListSerializer

    def get_queryset(self) -> QuerySet[Dataset]:
        query = CatalogueQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return catalogue_search(query.filters())

    @extend_schema(parameters=[CatalogueQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class DatasetDetail(generics.RetrieveAPIView):
    """One published dataset (public) with its releases and covering opt-out notices."""

    permission_classes = [AllowAny]
    serializer_class = DatasetDetailSerializer
    lookup_field = "slug"
    queryset = Dataset.objects.none()  # for the schema; get_object reads through the catalogue

    def get_object(self) -> Dataset:
        dataset = catalogue_dataset(self.kwargs["slug"])
        if dataset.status != DatasetStatus.PUBLISHED:
            raise Http404
        return dataset


class DatasetReleaseList(generics.ListAPIView):
    """The releases of a published dataset (public), newest first; withdrawn ones say so."""

    permission_classes = [AllowAny]
    serializer_class = ReleaseSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[DatasetRelease]:
        if getattr(self, "swagger_fake_view", False):
            return DatasetRelease.objects.none()
        dataset = get_object_or_404(Dataset, slug=self.kwargs["slug"], status=DatasetStatus.PUBLISHED)
        return dataset.releases.order_by("-version")

    @extend_schema(parameters=[OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The dataset's slug.")])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ManifestPagination(CursorPagination):
    """Cursor pages by path: stable and cheap however many files a release holds."""

    ordering = "path"
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000
    header: dict[str, Any]

    def get_paginated_response(self, data: Any) -> Response:
        return Response({
            **self.header,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
            "results": data,
        })

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        base = super().get_paginated_response_schema(schema)
        base["properties"] = {
            "release": {"type": "integer"},
            "dataset": {"type": "string"},
            "version": {"type": "integer"},
            "status": {"type": "string", "description": "The release's status: available or withdrawn."},
            "manifest_sha256": {"type": "string"},
            "includes_subjects": {
                "type": "boolean",
                "description": "Whether subject_pseudonym is given (an active grant on the release).",
            },
            "links_available": {
                "type": "boolean",
                "description": "Whether download links are given; false until they are available.",
            },
            **base["properties"],
        }
        base["required"] = [*base.get("required", []), "release", "dataset", "version", "status",
                            "manifest_sha256", "includes_subjects", "links_available"]
        return base


class ReleaseManifest(generics.ListAPIView):
    """A release's files (signed-in users); subject IDs only under an active grant on the release."""

    serializer_class = ManifestFileSerializer
    pagination_class = ManifestPagination

    def get_queryset(self) -> QuerySet[ReleaseFile]:
        if getattr(self, "swagger_fake_view", False):
            return ReleaseFile.objects.none()
        return ReleaseFile.objects.filter(release=self.release)

    def get_serializer_context(self) -> dict[str, Any]:
        return super().get_serializer_context() | {"includes_subjects": self.includes_subjects}

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.release = get_object_or_404(
            DatasetRelease.objects.select_related("dataset"),
            pk=self.kwargs["pk"], dataset__status=DatasetStatus.PUBLISHED,
        )
        # The access app, above this one, answers (an active grant on the release).
        self.includes_subjects = any(
            hooks.run("release_subjects_visible", user=request.user, release=self.release)
        )
        self.paginator.header = {  # type: ignore[union-attr]
            "release": self.release.pk,
            "dataset": self.release.dataset.slug,
            "version": self.release.version,
            "status": self.release.status,
            "manifest_sha256": self.release.manifest_sha256,
            "includes_subjects": self.includes_subjects,
            "links_available": False,
        }
        return super().list(request, *args, **kwargs)

    @extend_schema(parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The release's id.")])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class CatalogueStatistics(APIView):
    """Images and cases by society and modality per year of study (public): the newest available
    release of each published dataset counts."""

    permission_classes = [AllowAny]

    @extend_schema(responses=StatisticsSerializer)
    def get(self, request: Request) -> Response:
        return Response(statistics_as_data(cached_catalogue_statistics()))
