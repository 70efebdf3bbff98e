"""A job's results as rows, CSV (for Excel) and JSON: the same facts on the page, in files and the API.

Probabilities appear in the order of the card's labels. A demo model's results carry the demo
notice: CSV on its first line, JSON as ``demo_notice`` (null for other models).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from portal.ai.models import DEMO_NOTICE, InferenceItem, InferenceJob
from portal.lib.csvexport import csv_text


def _items(job: InferenceJob) -> list[InferenceItem]:
    cached = getattr(job, "_prefetched_objects_cache", {}).get("items")
    if cached is not None:
        return sorted(cached, key=lambda item: item.position)
    return list(job.items.order_by("position"))


def results_rows(job: InferenceJob) -> list[dict[str, Any]]:
    """One dict per image: position, file, input_sha256, status (code and label), label (code and
    localised name), probabilities {code: p} in the card's order, reason, whether it has a thumbnail."""
    version = job.version
    codes = version.label_codes
    rows = []
    for item in _items(job):
        probabilities = item.probabilities or {}
        rows.append({
            "position": item.position,
            "file": item.name,
            "input_sha256": item.input_sha256,
            "status": item.status,
            "status_label": str(InferenceItem.Status(item.status).label),
            "label": item.label,
            "label_name": version.label_name(item.label) if item.label else "",
            "probabilities": {code: probabilities[code] for code in codes if code in probabilities},
            "reason": item.reason,
            "has_thumbnail": bool(item.thumbnail_key),
        })
    return rows


def results_csv(job: InferenceJob) -> str:
    """UTF-8 text starting with a BOM (Excel reads it as UTF-8); the demo notice as its first line.
    File names are the uploader's: the one CSV writer neutralises any a spreadsheet would run."""
    version = job.version
    codes = version.label_codes
    rows: list[list[Any]] = []
    if version.model.is_demo:
        rows.append([str(DEMO_NOTICE)])
    rows.append(["position", "file", "input_sha256", "status", "label", "label_name",
                 *(f"p_{code}" for code in codes), "reason"])
    for row in results_rows(job):
        probabilities = row["probabilities"]
        rows.append([
            row["position"], row["file"], row["input_sha256"], row["status"], row["label"], row["label_name"],
            *(f"{probabilities[code]:.6f}" if code in probabilities else "" for code in codes), row["reason"],
        ])
    return csv_text(rows)


def results_json(job: InferenceJob) -> dict[str, Any]:
    """The job's facts, its model and version (with the ONNX file's SHA-256), and every item."""
    version = job.version
    model = version.model
    return {
        "job": job.pk,
        "status": job.status,
        "source": job.source,
        "release": str(job.release) if job.release_id else None,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "error": job.error,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "images_deleted_at": job.images_deleted_at.isoformat() if job.images_deleted_at else None,
        "model": {
            "slug": model.slug, "name": model.name, "version": version.version,
            "sha256": version.artefact_sha256, "labels": version.labels,
        },
        "demo_notice": str(DEMO_NOTICE) if model.is_demo else None,
        "items": [
            {key: value for key, value in row.items() if key not in ("status_label", "has_thumbnail")}
            for row in results_rows(job)
        ],
        "note": _("Probabilities are in the order of the model's labels."),
    }
