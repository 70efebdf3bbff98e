"""The hash of an audit event: plain Python, shared by the service, the verifier and the bench."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


def normalise_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Return details exactly as they will read back from the JSON column."""
    return json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder))


def event_hash(
    *,
    prev_hash: str,
    event_id: int,
    created_at: datetime,
    actor_id: int | None,
    actor_email: str,
    ip: str | None,
    action: str,
    target_type: str,
    target_id: str,
    target_repr: str,
    details: dict[str, Any],
    request_id: str,
) -> str:
    content = {
        "id": event_id,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor_email": actor_email,
        "ip": ip,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "target_repr": target_repr,
        "details": details,
        "request_id": request_id,
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()
