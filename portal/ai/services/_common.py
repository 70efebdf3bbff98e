"""Shared helpers and constants of the AI services."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from portal.accounts.models import User
from portal.ai.models import AIModel
from portal.ai.selectors import may_manage_model
from portal.notifications.services import notification_send

logger = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
METRIC_KEYS = ("auc", "accuracy", "sensitivity", "specificity")
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
MODEL_EDITABLE = ("name_ja", "name_en", "summary_ja", "summary_en", "open_to_grant_holders")
WORKER = "ai-worker"
THUMBNAIL_SIZE = 128
# What a version used a release for, in its owners' e-mail ("training" alone means ethics training).
USE_LABELS = {"training": pgettext_lazy("release used for", "training"),
              "evaluation": pgettext_lazy("release used for", "evaluation")}


# --- Helpers -------------------------------------------------------------------------------------


def _require_manager(user: Any, model: AIModel) -> None:
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False) \
            or not may_manage_model(user, model):
        raise PermissionDenied(_("Only an admin of the model's society or the platform operator can do this."))


def _send(subject: str, body: str, recipients: Iterable[User], url: str = "") -> None:
    notification_send(recipients=recipients, area=_("AI models"), subject=subject, body=body, url=url)


def _model_url(model: AIModel) -> str:
    return f"/ai/{model.slug}/"


def _read_limited(source: Any, limit: int) -> tuple[bytes | None, str, int]:
    """(bytes or None when over ``limit``, sha256 of everything, size) of bytes or a file object."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return (data if len(data) <= limit else None), hashlib.sha256(data).hexdigest(), len(data)
    if hasattr(source, "seek"):
        with contextlib.suppress(OSError, ValueError):
            source.seek(0)
    digest, size, parts = hashlib.sha256(), 0, []
    while chunk := source.read(READ_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if size <= limit:
            parts.append(chunk)
        else:
            parts = []
    return (b"".join(parts) if size <= limit else None), digest.hexdigest(), size


def _mb(value: int) -> int:
    return value * 1024 * 1024


def _queue_run(job_id: int) -> None:
    from portal.ai.tasks import run_job

    queue = getattr(settings, "PORTAL_AI_QUEUE", None) or None

    def send() -> None:
        if queue:
            run_job.apply_async((job_id,), queue=queue)
        else:
            run_job.delay(job_id)

    transaction.on_commit(send)
