from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import shared_task

from portal.audit.verify import verify_chain


@shared_task(name="audit.verify_chain", time_limit=3600, soft_time_limit=3540)
def verify_chain_task() -> dict[str, Any]:
    """Walk the audit chain in a worker; read-only, so running it twice is harmless."""
    return asdict(verify_chain())
