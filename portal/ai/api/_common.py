"""Turning a service's refusal into an API error, and the lookups that answer 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from rest_framework.exceptions import PermissionDenied, ValidationError

from portal.ai.models import DEMO_NOTICE, AIModel, ModelVersion
from portal.ai.selectors import models_visible_to, versions_visible_to

T = TypeVar("T")

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


def _model_or_404(user: Any, slug: str) -> AIModel:
    return get_object_or_404(models_visible_to(user).select_related("society"), slug=slug)


def _version_or_404(user: Any, model: AIModel, version: str) -> ModelVersion:
    version_obj = get_object_or_404(versions_visible_to(user, model), version=version)
    version_obj.model = model
    return version_obj


