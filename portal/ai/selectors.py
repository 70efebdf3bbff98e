"""Reads about hosted models: who may run which, what a user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from guardian.core import ObjectPermissionChecker

from portal.access.selectors import active_grants
from portal.ai.models import RUN_PERMISSION, AIModel, InferenceJob, ModelVersion
from portal.datasets.models import DatasetRelease
from portal.datasets.selectors import is_operator, managed_society_ids


def grant_society_ids(user: object) -> set[int]:
    """Societies on whose datasets ``user`` holds a grant in force now (cached for the request)."""
    if not getattr(user, "is_authenticated", False):
        return set()
    cached: set[int] | None = getattr(user, "_portal_ai_grant_society_ids", None)
    if cached is None:
        cached = set(
            active_grants()
            .filter(users=user, releases__status=DatasetRelease.Status.AVAILABLE)
            .values_list("releases__dataset__society_id", flat=True)
            .distinct()
        )
        user._portal_ai_grant_society_ids = cached  # type: ignore[attr-defined]
    return cached


def may_manage_model(user: object, model: AIModel) -> bool:
    """The admins of the model's society and the platform operator."""
    return is_operator(user) or model.society_id in managed_society_ids(user)


def may_run_without_request(user: object, model: AIModel) -> bool:
    """Run rights that need no approved request (see ``portal.ai.permissions``)."""
    if may_manage_model(user, model):
        return True
    return model.open_to_grant_holders and model.society_id in grant_society_ids(user)


def may_run(user: object, model: AIModel) -> bool:
    """The one question pages and the API ask: the object permission ``ai.run_aimodel``."""
    has_perm = getattr(user, "has_perm", None)
    return bool(getattr(user, "is_authenticated", False) and has_perm and has_perm(RUN_PERMISSION, model))


def runnable_model_ids(user: Any, models: list[AIModel]) -> set[int]:
    """``may_run`` for a page of models in a fixed number of queries.

    The same two sources ``user.has_perm(RUN_PERMISSION, model)`` consults: django-guardian's
    assignments (approved requests), read for the whole page at once, and
    ``ModelAccessBackend``'s rule (managers; grant holders where the card allows), whose
    inputs the selectors cache on the user.
    """
    if not models or not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.is_superuser:
        return {model.pk for model in models}
    checker = ObjectPermissionChecker(user)
    checker.prefetch_perms(models)
    return {
        model.pk for model in models
        if checker.has_perm(RUN_PERMISSION, model) or may_run_without_request(user, model)
    }


def models_visible_to(user: object) -> QuerySet[AIModel]:
    """Models with a published or retired version for everyone; all of their own for the managers."""
    public = AIModel.objects.filter(
        versions__status__in=(ModelVersion.Status.PUBLISHED, ModelVersion.Status.RETIRED)
    )
    if is_operator(user):
        return AIModel.objects.all()
    managed = managed_society_ids(user)
    if managed:
        return AIModel.objects.filter(pk__in=public.values("pk")) | AIModel.objects.filter(society_id__in=managed)
    return AIModel.objects.filter(pk__in=public.values("pk"))


def versions_visible_to(user: object, model: AIModel) -> QuerySet[ModelVersion]:
    """Drafts only for the model's managers."""
    versions = model.versions.all()
    if may_manage_model(user, model):
        return versions
    return versions.exclude(status=ModelVersion.Status.DRAFT)


def jobs_of(user: object) -> QuerySet[InferenceJob]:
    """A user's own inference jobs (nobody else sees them, the operator included)."""
    if not getattr(user, "is_authenticated", False):
        return InferenceJob.objects.none()
    return InferenceJob.objects.filter(user=user)
