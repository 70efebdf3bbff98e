"""Hosted AI models over the API, under /api/v1/ai/: the same rules as the pages.

Reads go through ``portal.ai.selectors`` (who sees which model, version and job; ``may_run`` is the
object permission ``ai.run_aimodel`` the pages ask too); writes call ``portal.ai.services`` and turn
their refusals into API errors: ``ValidationError`` → 400 with the messages by field,
``PermissionDenied`` → 403 with the service's message. Models and jobs the caller may not see
answer 404. Wherever a demo model appears, ``demo_notice`` carries ``DEMO_NOTICE`` (else null).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.ai import services
from portal.ai.models import (
    DEMO_NOTICE,
    AIModel,
    InferenceItem,
    InferenceJob,
    ModelAccessRequest,
    ModelVersion,
    ProvenanceNotice,
)
from portal.ai.results import results_csv, results_json
from portal.ai.selectors import (
    jobs_of,
    may_manage_model,
    may_run,
    models_visible_to,
    runnable_model_ids,
    versions_visible_to,
)
from portal.datasets.models import DatasetRelease
from portal.datasets.selectors import is_operator, managed_society_ids

T = TypeVar("T")

# Refusal → API error ------------------------------------------------------------------------


def _calling(service: Callable[..., T], **kwargs: Any) -> T:
    """Call a service; its refusals become a 400 with the messages by field, or a 403."""
    try:
        return service(**kwargs)
    except DjangoPermissionDenied as refusal:
        raise PermissionDenied(str(refusal) or None) from refusal
    except DjangoValidationError as refusal:
        if hasattr(refusal, "error_dict"):
            errors = {
                ("non_field_errors" if field == NON_FIELD_ERRORS else field): messages
                for field, messages in refusal.message_dict.items()
            }
        else:
            errors = {"non_field_errors": refusal.messages}
        raise ValidationError(errors) from refusal


def _demo_notice(model: AIModel) -> str | None:
    return str(DEMO_NOTICE) if model.is_demo else None


# Lookups: what the caller may not see answers 404 -------------------------------------------


def _model_or_404(user: Any, slug: str) -> AIModel:
    return get_object_or_404(models_visible_to(user).select_related("society"), slug=slug)


def _version_or_404(user: Any, model: AIModel, version: str) -> ModelVersion:
    version_obj = get_object_or_404(versions_visible_to(user, model), version=version)
    version_obj.model = model
    return version_obj


# Serializers --------------------------------------------------------------------------------


class AILabelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    code = serializers.CharField()
    ja = serializers.CharField()
    en = serializers.CharField(required=False, allow_blank=True)


class AIReleaseRefSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    # A plain string, as in the catalogue API (another enum named "status" would collide).
    status = serializers.CharField(read_only=True, help_text="available or withdrawn")

    class Meta:
        model = DatasetRelease
        fields = ["id", "dataset", "version", "status"]
        read_only_fields = fields


class ProvenanceNoticeSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    release = AIReleaseRefSerializer(read_only=True)
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = ProvenanceNotice
        fields = ["kind", "kind_display", "release", "details", "created_at"]
        read_only_fields = fields


class AIMetricsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    auc = serializers.FloatField(source="metric_auc", allow_null=True)
    accuracy = serializers.FloatField(source="metric_accuracy", allow_null=True)
    sensitivity = serializers.FloatField(source="metric_sensitivity", allow_null=True)
    specificity = serializers.FloatField(source="metric_specificity", allow_null=True)
    evaluation_set_size = serializers.IntegerField(help_text="Images in the held-out evaluation set.")


class ModelVersionSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """One version's card: labels, input specification, use and limits, metrics, provenance."""

    model = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    labels = serializers.SerializerMethodField()
    intended_use = serializers.CharField(read_only=True)
    limitations = serializers.CharField(read_only=True)
    training_data = serializers.CharField(read_only=True)
    metrics = AIMetricsSerializer(source="*", read_only=True)
    training_releases = AIReleaseRefSerializer(many=True, read_only=True)
    evaluation_releases = AIReleaseRefSerializer(many=True, read_only=True)
    provenance_notices = ProvenanceNoticeSerializer(many=True, read_only=True)
    is_runnable = serializers.BooleanField(read_only=True)
    demo_notice = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "model", "version", "status", "is_runnable", "demo_notice", "labels", "input_width",
            "input_height", "input_channels", "input_mean", "input_std", "input_name", "output_name",
            "opset", "intended_use", "intended_use_ja", "intended_use_en", "limitations",
            "limitations_ja", "limitations_en", "training_data", "training_data_ja", "training_data_en",
            "metrics", "training_releases", "evaluation_releases", "provenance_notices",
            "artefact_sha256", "artefact_size", "created_at", "published_at", "retired_at",
            "retire_reason",
        ]
        read_only_fields = fields

    @extend_schema_field(AILabelSerializer(many=True))
    def get_labels(self, version: ModelVersion) -> list[dict[str, str]]:
        return [
            {"code": label["code"], "ja": label.get("ja", ""), "en": label.get("en", "")}
            for label in version.labels
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_demo_notice(self, version: ModelVersion) -> str | None:
        return _demo_notice(version.model)


def _card_versions(queryset: QuerySet[ModelVersion]) -> QuerySet[ModelVersion]:
    return queryset.prefetch_related(
        "training_releases__dataset", "evaluation_releases__dataset",
        Prefetch("provenance_notices", ProvenanceNotice.objects.select_related("release__dataset")),
    )


class AIModelListSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    society = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    name = serializers.CharField(read_only=True)
    summary = serializers.CharField(read_only=True)
    demo_notice = serializers.SerializerMethodField()
    may_run = serializers.SerializerMethodField(
        help_text="Whether the caller may run the model (the same answer as on the pages)."
    )
    published_versions = serializers.SerializerMethodField(help_text="Runnable versions, newest first.")

    class Meta:
        model = AIModel
        fields = ["slug", "society", "name", "name_ja", "name_en", "task", "modality", "summary",
                  "summary_ja", "summary_en", "is_demo", "demo_notice", "open_to_grant_holders",
                  "may_run", "published_versions"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_demo_notice(self, model: AIModel) -> str | None:
        return _demo_notice(model)

    def get_may_run(self, model: AIModel) -> bool:
        return model.pk in self.context["runnable_ids"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_published_versions(self, model: AIModel) -> list[str]:
        return [v.version for v in model.versions.all() if v.status == ModelVersion.Status.PUBLISHED]


class AIModelAccessRequestSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    model = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    user = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = ModelAccessRequest
        fields = ["id", "model", "user", "purpose", "status", "created_at", "decided_at", "decision_note"]
        read_only_fields = fields


class AIModelDetailSerializer(AIModelListSerializer):
    """The model card: every version the caller may see, provenance notices, ``may_run``."""

    versions = serializers.SerializerMethodField()
    may_manage = serializers.SerializerMethodField(help_text="Society admins and the operator.")
    my_access_request = serializers.SerializerMethodField(help_text="The caller's newest request, if any.")

    class Meta(AIModelListSerializer.Meta):
        fields = [*AIModelListSerializer.Meta.fields, "may_manage", "my_access_request", "versions",
                  "created_at"]
        read_only_fields = fields

    def get_may_run(self, model: AIModel) -> bool:
        return may_run(self.context["request"].user, model)

    def get_may_manage(self, model: AIModel) -> bool:
        return may_manage_model(self.context["request"].user, model)

    @extend_schema_field(AIModelAccessRequestSerializer(allow_null=True))
    def get_my_access_request(self, model: AIModel) -> dict[str, Any] | None:
        user = self.context["request"].user
        if not user.is_authenticated:
            return None
        mine = model.access_requests.filter(user=user).first()
        return AIModelAccessRequestSerializer(mine).data if mine else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_published_versions(self, model: AIModel) -> list[str]:
        return list(
            model.versions.filter(status=ModelVersion.Status.PUBLISHED).values_list("version", flat=True)
        )

    @extend_schema_field(ModelVersionSerializer(many=True))
    def get_versions(self, model: AIModel) -> list[dict[str, Any]]:
        versions = list(_card_versions(versions_visible_to(self.context["request"].user, model)))
        for version in versions:
            version.model = model
        return ModelVersionSerializer(versions, many=True, context=self.context).data


class InferenceItemSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    label_name = serializers.SerializerMethodField(help_text="The label in the caller's language.")
    probabilities = serializers.SerializerMethodField(help_text="{label code: probability}, in the card's order.")
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = InferenceItem
        fields = ["position", "name", "input_sha256", "status", "label", "label_name", "probabilities",
                  "reason", "processed_at", "thumbnail_url"]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.FloatField()))
    def get_probabilities(self, item: InferenceItem) -> dict[str, float]:
        # PostgreSQL's jsonb does not keep the keys' order; the card's labels give it.
        stored = item.probabilities or {}
        return {code: stored[code] for code in item.job.version.label_codes if code in stored}

    def get_label_name(self, item: InferenceItem) -> str:
        return item.job.version.label_name(item.label) if item.label else ""

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_thumbnail_url(self, item: InferenceItem) -> str | None:
        if not item.thumbnail_key:
            return None
        return reverse("ai:thumbnail", args=[item.job_id, item.position])


class InferenceJobSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    model = serializers.CharField(source="version.model.slug", read_only=True)
    version = serializers.CharField(source="version.version", read_only=True)
    model_sha256 = serializers.CharField(source="version.artefact_sha256", read_only=True)
    is_demo = serializers.BooleanField(source="version.model.is_demo", read_only=True)
    demo_notice = serializers.SerializerMethodField()
    percent = serializers.IntegerField(read_only=True)
    release = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = InferenceJob
        fields = ["id", "model", "version", "model_sha256", "is_demo", "demo_notice", "source",
                  "release", "status", "total", "done", "failed", "percent", "error", "created_at",
                  "started_at", "finished_at", "images_deleted_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_demo_notice(self, job: InferenceJob) -> str | None:
        return _demo_notice(job.version.model)


class InferenceJobDetailSerializer(InferenceJobSerializer):
    items = InferenceItemSerializer(many=True, read_only=True)
    results_csv = serializers.SerializerMethodField()
    results_json = serializers.SerializerMethodField()

    class Meta(InferenceJobSerializer.Meta):
        fields = [*InferenceJobSerializer.Meta.fields, "results_csv", "results_json", "items"]
        read_only_fields = fields

    def get_results_csv(self, job: InferenceJob) -> str:
        return reverse("api-ai-job-results-csv", args=[job.pk])

    def get_results_json(self, job: InferenceJob) -> str:
        return reverse("api-ai-job-results-json", args=[job.pk])


def _jobs(user: Any) -> QuerySet[InferenceJob]:
    return jobs_of(user).select_related("version__model")


# Input serializers (requests) ---------------------------------------------------------------


class VersionUploadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A new version: the ONNX file and its card (multipart; lists as repeated fields or JSON)."""

    version = serializers.CharField(max_length=40)
    artefact = serializers.FileField(help_text="The ONNX file.")
    labels = serializers.JSONField(
        help_text='In the order of the model\'s output: [{"code": "stomach", "ja": "胃", "en": "Stomach"}, …]'
    )
    input_width = serializers.IntegerField(min_value=1)
    input_height = serializers.IntegerField(min_value=1)
    input_channels = serializers.IntegerField(min_value=1)
    input_mean = serializers.ListField(child=serializers.FloatField(), allow_empty=False)
    input_std = serializers.ListField(child=serializers.FloatField(), allow_empty=False)
    intended_use_ja = serializers.CharField()
    intended_use_en = serializers.CharField(required=False, allow_blank=True, default="")
    limitations_ja = serializers.CharField()
    limitations_en = serializers.CharField(required=False, allow_blank=True, default="")
    training_data_ja = serializers.CharField()
    training_data_en = serializers.CharField(required=False, allow_blank=True, default="")
    metric_auc = serializers.FloatField(required=False, allow_null=True, default=None)
    metric_accuracy = serializers.FloatField(required=False, allow_null=True, default=None)
    metric_sensitivity = serializers.FloatField(required=False, allow_null=True, default=None)
    metric_specificity = serializers.FloatField(required=False, allow_null=True, default=None)
    evaluation_set_size = serializers.IntegerField(min_value=1)
    training_releases = serializers.PrimaryKeyRelatedField(
        queryset=DatasetRelease.objects.all(), many=True, required=False
    )
    evaluation_releases = serializers.PrimaryKeyRelatedField(
        queryset=DatasetRelease.objects.all(), many=True, required=False
    )

    _LISTS = ("input_mean", "input_std", "training_releases", "evaluation_releases")

    def to_internal_value(self, data: Any) -> Any:
        # Multipart clients send the lists as one JSON text ("[0.5, 0.5, 0.5]") or as repeated fields.
        if isinstance(data, QueryDict):
            # A shallow copy: QueryDict.copy() deep-copies, which the uploaded file does not survive.
            parsed = QueryDict(mutable=True)
            for name in data:
                values = data.getlist(name)
                if (name in self._LISTS and len(values) == 1 and isinstance(values[0], str)
                        and values[0].lstrip().startswith("[")):
                    with contextlib.suppress(ValueError):  # else the field reports the bad value
                        values = json.loads(values[0])
                parsed.setlist(name, values)
            data = parsed
        return super().to_internal_value(data)


class VersionRetireSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField(help_text="Why the version may no longer be run.")


class AccessRequestCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    purpose = serializers.CharField(help_text="What the model will be used for.")


class AccessRequestDecisionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    approve = serializers.BooleanField()
    note = serializers.CharField(required=False, allow_blank=True, default="",
                                 help_text="Required when rejecting.")


class AccessRevokeSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField(help_text="Why the right to run the model is taken back.")


class InferenceJobCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    model = serializers.SlugField(help_text="The model's identifier (slug).")
    version = serializers.CharField()
    files = serializers.ListField(
        child=serializers.FileField(), required=False, help_text="Images to upload (JPEG, PNG, DICOM)."
    )
    release_files = serializers.ListField(
        child=serializers.IntegerField(), required=False,
        help_text="Ids of files of a release the caller holds a grant for (instead of uploads).",
    )


# Views --------------------------------------------------------------------------------------


class AIModelList(generics.ListAPIView):
    """The models the caller may see, with ``may_run`` for each (public, like the models page)."""

    serializer_class = AIModelListSerializer
    permission_classes = [AllowAny]

    def get_queryset(self) -> QuerySet[AIModel]:
        return (
            models_visible_to(self.request.user)
            .select_related("society")
            .prefetch_related("versions")
            .order_by("society_id", "slug")
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        assert page is not None  # the API always pages lists
        context = {**self.get_serializer_context(), "runnable_ids": runnable_model_ids(request.user, list(page))}
        return self.get_paginated_response(self.serializer_class(page, many=True, context=context).data)


class AIModelDetail(APIView):
    """The model card (public, like the card page); 404 for a model the caller may not see."""

    permission_classes = [AllowAny]

    @extend_schema(responses=AIModelDetailSerializer)
    def get(self, request: Request, slug: str) -> Response:
        model = _model_or_404(request.user, slug)
        return Response(AIModelDetailSerializer(model, context={"request": request}).data)


class ModelVersionCreate(APIView):
    """Upload a new version (draft) of a model: its society's admins and the operator."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": VersionUploadSerializer},
                   responses={201: ModelVersionSerializer})
    def post(self, request: Request, slug: str) -> Response:
        model = _model_or_404(request.user, slug)
        if not may_manage_model(request.user, model):
            raise PermissionDenied(_("Only the admins of the model's society may upload versions."))
        form = VersionUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        metrics = {
            name: data[f"metric_{name}"]
            for name in ("auc", "accuracy", "sensitivity", "specificity")
            if data[f"metric_{name}"] is not None
        }
        version = _calling(
            services.version_upload,
            model=model, version=data["version"], artefact=data["artefact"], labels=data["labels"],
            input_width=data["input_width"], input_height=data["input_height"],
            input_channels=data["input_channels"], input_mean=data["input_mean"],
            input_std=data["input_std"], intended_use_ja=data["intended_use_ja"],
            intended_use_en=data["intended_use_en"], limitations_ja=data["limitations_ja"],
            limitations_en=data["limitations_en"], training_data_ja=data["training_data_ja"],
            training_data_en=data["training_data_en"], metrics=metrics,
            evaluation_set_size=data["evaluation_set_size"],
            training_releases=data.get("training_releases", []),
            evaluation_releases=data.get("evaluation_releases", []), by=request.user,
        )
        version = _card_versions(ModelVersion.objects.filter(pk=version.pk)).get()
        version.model = model
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class ModelVersionDetail(APIView):
    """One version's card (public; drafts only for the model's managers)."""

    permission_classes = [AllowAny]

    @extend_schema(responses=ModelVersionSerializer)
    def get(self, request: Request, slug: str, version: str) -> Response:
        model = _model_or_404(request.user, slug)
        found = get_object_or_404(_card_versions(versions_visible_to(request.user, model)), version=version)
        found.model = model
        return Response(ModelVersionSerializer(found).data)


class ModelVersionPublish(APIView):
    """Publish a draft version: from now on it may be run."""

    @extend_schema(request=None, responses=ModelVersionSerializer)
    def post(self, request: Request, slug: str, version: str) -> Response:
        model = _model_or_404(request.user, slug)
        found = _version_or_404(request.user, model, version)
        _calling(services.version_publish, version=found, by=request.user)
        return _version_response(model, found.pk)


class ModelVersionRetire(APIView):
    """Retire a version: it stays on the card but may no longer be run."""

    @extend_schema(request=VersionRetireSerializer, responses=ModelVersionSerializer)
    def post(self, request: Request, slug: str, version: str) -> Response:
        model = _model_or_404(request.user, slug)
        found = _version_or_404(request.user, model, version)
        form = VersionRetireSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        _calling(services.version_retire, version=found, reason=form.validated_data["reason"], by=request.user)
        return _version_response(model, found.pk)


def _version_response(model: AIModel, pk: int) -> Response:
    version = _card_versions(ModelVersion.objects.filter(pk=pk)).get()
    version.model = model
    return Response(ModelVersionSerializer(version).data)


class ModelAccessRequestCreate(APIView):
    """Ask to run a model (a light request a society admin decides)."""

    @extend_schema(request=AccessRequestCreateSerializer, responses={201: AIModelAccessRequestSerializer})
    def post(self, request: Request, slug: str) -> Response:
        model = _model_or_404(request.user, slug)
        form = AccessRequestCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        created = _calling(
            services.access_request_submit, model=model, user=request.user,
            purpose=form.validated_data["purpose"],
        )
        return Response(AIModelAccessRequestSerializer(created).data, status=status.HTTP_201_CREATED)


def _requests_decidable_by(user: Any) -> QuerySet[ModelAccessRequest]:
    if is_operator(user):
        return ModelAccessRequest.objects.all()
    return ModelAccessRequest.objects.filter(model__society_id__in=managed_society_ids(user))


class ModelAccessRequestList(generics.ListAPIView):
    """The caller's own requests; with ``?to_decide=1`` the submitted requests they may decide."""

    serializer_class = AIModelAccessRequestSerializer

    @extend_schema(parameters=[OpenApiParameter(
        "to_decide", OpenApiTypes.BOOL,
        description="Requests waiting for the caller's decision (society admins, operator).",
    )])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[ModelAccessRequest]:
        user = self.request.user
        if self.request.query_params.get("to_decide") in {"1", "true", "yes"}:
            requests = _requests_decidable_by(user).filter(status=ModelAccessRequest.Status.SUBMITTED)
        else:
            requests = ModelAccessRequest.objects.filter(user=user)  # type: ignore[misc]
        return requests.select_related("model", "user").order_by("-created_at", "-id")


def _access_request_or_404(user: Any, pk: int) -> ModelAccessRequest:
    """The caller's own requests and those they may decide; any other answers 404."""
    visible = ModelAccessRequest.objects.filter(
        Q(user=user) | Q(pk__in=_requests_decidable_by(user).values("pk"))
    )
    return get_object_or_404(visible.select_related("model", "user"), pk=pk)


class ModelAccessRequestDecision(APIView):
    """Approve or reject a submitted request (admins of the model's society)."""

    @extend_schema(request=AccessRequestDecisionSerializer, responses=AIModelAccessRequestSerializer)
    def post(self, request: Request, pk: int) -> Response:
        access_request = _access_request_or_404(request.user, pk)
        form = AccessRequestDecisionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        decided = _calling(
            services.access_request_decide, request=access_request,
            approve=form.validated_data["approve"], note=form.validated_data["note"], by=request.user,
        )
        return Response(AIModelAccessRequestSerializer(decided).data)


class ModelAccessRequestWithdraw(APIView):
    """The requester takes back a request still waiting for a decision."""

    @extend_schema(request=None, responses=AIModelAccessRequestSerializer)
    def post(self, request: Request, pk: int) -> Response:
        access_request = _access_request_or_404(request.user, pk)
        withdrawn = _calling(services.access_request_withdraw, request=access_request, by=request.user)
        return Response(AIModelAccessRequestSerializer(withdrawn).data)


class ModelAccessRequestRevoke(APIView):
    """Take back an approved request's right to run the model (admins of the model's society)."""

    @extend_schema(request=AccessRevokeSerializer, responses=AIModelAccessRequestSerializer)
    def post(self, request: Request, pk: int) -> Response:
        access_request = _access_request_or_404(request.user, pk)
        form = AccessRevokeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        revoked = _calling(
            services.access_revoke, request=access_request, reason=form.validated_data["reason"],
            by=request.user,
        )
        return Response(AIModelAccessRequestSerializer(revoked).data)


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
