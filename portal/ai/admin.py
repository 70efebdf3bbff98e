"""Read-only admin views of the hosted models (changes go through the services and pages)."""

from __future__ import annotations

from django.contrib import admin

from portal.ai.models import (
    AIModel,
    InferenceItem,
    InferenceJob,
    ModelAccessRequest,
    ModelVersion,
    ProvenanceNotice,
)
from portal.core.admin_readonly import ReadOnlyAdmin


@admin.register(AIModel)
class AIModelAdmin(ReadOnlyAdmin):
    list_display = ("slug", "society", "task", "modality", "open_to_grant_holders", "is_demo", "created_at")
    list_filter = ("task", "modality", "is_demo", "open_to_grant_holders")
    list_select_related = ("society",)
    search_fields = ("slug", "name_ja", "name_en")


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("model", "version", "status", "artefact_sha256", "evaluation_set_size", "created_at")
    list_filter = ("status",)
    list_select_related = ("model",)
    search_fields = ("model__slug", "version", "artefact_sha256")


@admin.register(ProvenanceNotice)
class ProvenanceNoticeAdmin(ReadOnlyAdmin):
    list_display = ("version", "release", "kind", "created_at")
    list_filter = ("kind",)
    list_select_related = ("version__model", "release__dataset")


@admin.register(ModelAccessRequest)
class ModelAccessRequestAdmin(ReadOnlyAdmin):
    list_display = ("model", "user", "status", "created_at", "decided_by", "decided_at")
    list_filter = ("status",)
    list_select_related = ("model", "user", "decided_by")


@admin.register(InferenceJob)
class InferenceJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "version", "source", "status", "done", "total", "failed", "created_at", "images_deleted_at")
    list_filter = ("status", "source")
    list_select_related = ("user", "version__model")


@admin.register(InferenceItem)
class InferenceItemAdmin(ReadOnlyAdmin):
    list_display = ("job", "position", "name", "status", "label")
    list_filter = ("status",)
    search_fields = ("input_sha256",)
