"""What the AI API answers: models, versions, provenance notices, access requests and jobs."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.ai.api._common import _demo_notice
from portal.ai.models import (
    AIModel,
    InferenceItem,
    InferenceJob,
    ModelAccessRequest,
    ModelVersion,
    ProvenanceNotice,
)
from portal.ai.selectors import jobs_of, may_manage_model, may_run, versions_visible_to
from portal.datasets.models import DatasetRelease


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


