"""API-wide pieces: the error format shared by every endpoint."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


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
