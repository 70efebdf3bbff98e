"""Hosted AI models: registering models and versions, access, provenance, and inference jobs.

Every service is keyword-only, checks who may act, validates, saves and audits inside one
transaction, and sends its e-mail after the commit. Refusals raise ``ValidationError`` (a field
dict where one field is to blame) or ``PermissionDenied`` and change nothing.

Decisions:

- An ONNX file is stored at ``ai/models/<slug>/<version>/<sha256>.onnx`` and removed again if the
  transaction that records it fails. It is inspected with ONNX Runtime and checked against the card
  before anything is written.
- Uploaded images are stripped of their metadata (``portal.deid``) before they are stored, under
  ``ai/jobs/<job id>/inputs/<position>.<kind>``: the uploaded file name is kept on the result row
  only (the user's own page), never in a storage key. The SHA-256 recorded and audited is the one of
  the original bytes, so the user can match a result to the file they sent.
- An upload that is not an image, is too large, or cannot be stripped fails alone, at once, with
  the reason; the job goes on with the others. A DICOM object the anonymiser would hold back for
  burned-in text fails too: it is not stored.
- Release files are run from the release's stored (already anonymised) copy. All picked files must
  belong to one available release on which the user holds a grant usable now, and none may be of a
  subject who opted out: otherwise the whole job is refused, naming the file.
- Images do not stay: the runner may delete a finished job's images (``inference_job_images_delete``)
  and ``inference_images_purge`` (beat) deletes them ``PORTAL_AI_INPUT_RETENTION_DAYS`` after the job
  ended. Deleted: the stripped uploaded copies and every thumbnail; kept: the results and the inputs'
  SHA-256, and a release's files (they belong to the release). The rows forget the keys in the
  audited transaction; the files go after its commit, so a rollback loses nothing.
- ``inference_job_run`` is idempotent: it processes the items still pending, in batches, and writes
  each batch's results and the job's counters (recounted from the items) in one transaction, so a
  redelivered task (acks late) continues where the last one stopped.

The package holds one module per section: ``model_registry``, ``versions``, ``provenance``,
``access_requests``, ``jobs_create``, ``jobs_run`` and ``jobs_images``; this module re-exports their
public names so ``from portal.ai import services`` keeps working. Patch a name where it is used
(e.g. ``portal.ai.services.versions.audit_record``), not here.
"""

from __future__ import annotations

from portal.ai.services._common import (
    METRIC_KEYS,
    MODEL_EDITABLE,
    READ_CHUNK,
    THUMBNAIL_SIZE,
    USE_LABELS,
    VERSION_PATTERN,
    WORKER,
)
from portal.ai.services.access_requests import (
    access_request_decide,
    access_request_submit,
    access_request_withdraw,
    access_revoke,
)
from portal.ai.services.jobs_create import inference_job_create
from portal.ai.services.jobs_images import (
    ENDED_STATUSES,
    HOLDS_IMAGES,
    RETENTION,
    inference_images_purge,
    inference_job_images_delete,
    retention_days,
)
from portal.ai.services.jobs_run import inference_job_resume, inference_job_run
from portal.ai.services.model_registry import RESERVED_SLUGS, model_create, model_update
from portal.ai.services.provenance import (
    provenance_release_withdrawn,
    provenance_subjects_opted_out,
)
from portal.ai.services.versions import version_publish, version_retire, version_upload

__all__ = [
    "ENDED_STATUSES",
    "HOLDS_IMAGES",
    "METRIC_KEYS",
    "MODEL_EDITABLE",
    "READ_CHUNK",
    "RESERVED_SLUGS",
    "RETENTION",
    "THUMBNAIL_SIZE",
    "USE_LABELS",
    "VERSION_PATTERN",
    "WORKER",
    "access_request_decide",
    "access_request_submit",
    "access_request_withdraw",
    "access_revoke",
    "inference_images_purge",
    "inference_job_create",
    "inference_job_images_delete",
    "inference_job_resume",
    "inference_job_run",
    "model_create",
    "model_update",
    "provenance_release_withdrawn",
    "provenance_subjects_opted_out",
    "retention_days",
    "version_publish",
    "version_retire",
    "version_upload",
]
