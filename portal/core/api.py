"""API-wide pieces: the error format shared by every endpoint, and services' refusals as API errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

T = TypeVar("T")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a machine-readable ``code`` next to the human ``detail``."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    codes = getattr(exc, "get_codes", lambda: None)()
    if isinstance(response.data, dict) and "detail" in response.data and isinstance(codes, str):
        response.data = {"detail": response.data["detail"], "code": codes}
    elif isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": "invalid", "code": "invalid", "errors": response.data}
    return response


class Conflict(APIException):
    """409: the workflow refuses the action in the object's present state."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = _("This cannot be done in the present state.")
    default_code = "conflict"


def refusal_to_api(refusal: Exception, *, conflicts: tuple[type[Exception], ...] = ()) -> APIException:
    """The API error for a service's refusal, with the service's own (translated) message.

    The caller's right to act in a role was already checked by the page's permission policy (403
    before the service is called), so what a service still refuses is "not now": 409 for a state
    the action does not apply to or a rule of the workflow, 403 for Django's ``PermissionDenied``
    raised by a service, 400 for bad input (``ValidationError``, messages by field). An app's own
    refusal family (``conflicts``) is 409 even where it is also a ``ValidationError``: the workflow
    engine's refusal, raised in that app's family (``portal.lib.workflow``).
    """
    if conflicts and isinstance(refusal, conflicts):
        return Conflict(str(refusal) or None)
    if isinstance(refusal, DjangoPermissionDenied):
        return PermissionDenied(str(refusal) or None)
    if isinstance(refusal, DjangoValidationError):
        if hasattr(refusal, "error_dict"):
            errors: Any = {
                ("non_field_errors" if field == NON_FIELD_ERRORS else field): messages
                for field, messages in refusal.message_dict.items()
            }
        else:
            errors = {"non_field_errors": refusal.messages}
        return ValidationError(errors)
    return Conflict(str(refusal) or None)


def call_service(service: Callable[..., T], *, refusals: tuple[type[Exception], ...] = (), **kwargs: Any) -> T:
    """Call one service; its refusals (``refusals``, Django's permission and validation errors)
    become API errors, and nothing it refused was saved (services are atomic)."""
    try:
        return service(**kwargs)
    except (DjangoPermissionDenied, DjangoValidationError, *refusals) as refusal:
        raise refusal_to_api(refusal, conflicts=refusals) from refusal
