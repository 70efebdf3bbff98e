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
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from portal.access.selectors import active_grants, grant_usability
from portal.accounts.models import User
from portal.ai.models import (
    RUN_PERMISSION,
    AIModel,
    InferenceItem,
    InferenceJob,
    ModelAccessRequest,
    ModelVersion,
    ProvenanceNotice,
)
from portal.ai.selectors import may_manage_model, may_run
from portal.ai.workflow import INFERENCE_JOB, request_transition, version_transition
from portal.anonymiser.photos import strip_photo
from portal.anonymiser.report import DeidError
from portal.audit.services import audit_record
from portal.core.vocabulary import Modality
from portal.datasets.models import DatasetRelease, ReleaseFile
from portal.datasets.selectors import may_manage_society
from portal.deid.services import portal_keys
from portal.lib.workflow import transition
from portal.notifications.services import notification_send
from portal.optout.selectors import excluded_pseudonyms
from portal.societies.models import Society, SocietyMembership
from portal.societies.selectors import member_users

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


# --- Models --------------------------------------------------------------------------------------


# The first path segments under /ai/ that are pages, not models (see portal/ai/urls.py).
RESERVED_SLUGS = frozenset({"jobs", "manage", "requests"})


def model_create(
    *, society: Society, slug: str, name_ja: str, name_en: str = "", task: str, modality: str,
    summary_ja: str = "", summary_en: str = "", open_to_grant_holders: bool = False, is_demo: bool = False,
    by: User,
) -> AIModel:
    """A new model (no version yet) of ``society``: its admins and the operator."""
    if by is None or not may_manage_society(by, society):
        raise PermissionDenied(_("Only an admin of the society or the platform operator can do this."))
    slug = (slug or "").strip().lower()
    errors: dict[str, str] = {}
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,79}", slug):
        errors["slug"] = _("Use 2 to 80 lower-case letters, digits and hyphens.")
    elif slug in RESERVED_SLUGS:
        errors["slug"] = _("This identifier is a page of the portal; choose another.")
    elif AIModel.objects.filter(slug=slug).exists():
        errors["slug"] = _("A model with this identifier already exists.")
    if not (name_ja or "").strip():
        errors["name_ja"] = _("Enter the name in Japanese.")
    if task not in AIModel.Task.values:
        errors["task"] = _("Choose the task.")
    if modality not in Modality.values:
        errors["modality"] = _("Choose the input modality.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        model = AIModel.objects.create(
            society=society, slug=slug, name_ja=name_ja.strip(), name_en=(name_en or "").strip(), task=task,
            modality=modality, summary_ja=(summary_ja or "").strip(), summary_en=(summary_en or "").strip(),
            open_to_grant_holders=bool(open_to_grant_holders), is_demo=bool(is_demo), created_by=by,
        )
        audit_record(action="ai.model_created", actor=by, target=model, details={
            "society": society.slug, "slug": slug, "task": task, "modality": modality,
            "open_to_grant_holders": model.open_to_grant_holders, "is_demo": model.is_demo,
        })
    return model


def model_update(*, model: AIModel, by: User, **fields: Any) -> AIModel:
    """Change the name, summary or ``open_to_grant_holders``; audited with the changed fields."""
    _require_manager(by, model)
    unknown = sorted(set(fields) - set(MODEL_EDITABLE))
    if unknown:
        raise ValidationError(_("These fields cannot be changed: %(names)s.") % {"names": ", ".join(unknown)})
    if "name_ja" in fields and not str(fields["name_ja"] or "").strip():
        raise ValidationError({"name_ja": _("Enter the name in Japanese.")})
    with transaction.atomic():
        locked = AIModel.objects.select_for_update().get(pk=model.pk)
        changed: dict[str, dict[str, Any]] = {}
        for name, value in fields.items():
            value = bool(value) if name == "open_to_grant_holders" else str(value or "").strip()
            if getattr(locked, name) != value:
                changed[name] = {"from": getattr(locked, name), "to": value}
                setattr(locked, name, value)
        if changed:
            locked.save(update_fields=sorted(changed))
            audit_record(action="ai.model_updated", actor=by, target=locked, details={"changed": changed})
    model.refresh_from_db()
    return model


# --- Versions ------------------------------------------------------------------------------------


def _validate_card(
    *, labels: Any, input_width: int, input_height: int, input_channels: int, input_mean: Any, input_std: Any,
    intended_use_ja: str, limitations_ja: str, training_data_ja: str, metrics: dict[str, Any],
    evaluation_set_size: Any,
) -> tuple[list[dict[str, str]], dict[str, float | None], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    clean_labels: list[dict[str, str]] = []
    if not isinstance(labels, (list, tuple)):
        fail("labels", _("Give the labels as a list."))
        labels = []
    for label in labels:
        if not isinstance(label, dict) or not str(label.get("code", "")).strip():
            fail("labels", _("Each label needs a code."))
            continue
        clean_labels.append({
            "code": str(label["code"]).strip(), "ja": str(label.get("ja") or "").strip(),
            "en": str(label.get("en") or "").strip(),
        })
    codes = [label["code"] for label in clean_labels]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        fail("labels", _("Label codes must be unique: %(codes)s.") % {"codes": ", ".join(duplicates)})
    if len(clean_labels) < 2 and "labels" not in errors:
        fail("labels", _("A classifier needs at least two labels."))
    for field, value in (("input_width", input_width), ("input_height", input_height)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 8192:
            fail(field, _("Enter a size between 1 and 8192 pixels."))
    if input_channels not in (1, 3):
        fail("input_channels", _("The input has 1 (greyscale) or 3 (RGB) channels."))
    for field, values in (("input_mean", input_mean), ("input_std", input_std)):
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            fail(field, _("Give one number per channel."))
            continue
        if input_channels in (1, 3) and len(numbers) != input_channels:
            fail(field, _("Give one number per channel (%(count)d).") % {"count": input_channels})
        if field == "input_std" and any(n <= 0 for n in numbers):
            fail(field, _("Each standard deviation must be greater than 0."))
    for field, value in (("intended_use_ja", intended_use_ja), ("limitations_ja", limitations_ja),
                         ("training_data_ja", training_data_ja)):
        if not (value or "").strip():
            fail(field, _("This field is required."))
    clean_metrics: dict[str, float | None] = {}
    unknown = sorted(set(metrics or {}) - set(METRIC_KEYS))
    if unknown:
        fail("metrics", _("Unknown metrics: %(names)s.") % {"names": ", ".join(unknown)})
    for key in METRIC_KEYS:
        value = (metrics or {}).get(key)
        if value is None or value == "":
            clean_metrics[key] = None
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = -1.0
        if not 0.0 <= number <= 1.0:
            fail("metrics", _("%(name)s must be between 0 and 1.") % {"name": key})
        clean_metrics[key] = number
    if not isinstance(evaluation_set_size, int) or isinstance(evaluation_set_size, bool) or evaluation_set_size < 1:
        fail("evaluation_set_size", _("Enter the number of images the metrics were measured on."))
    return clean_labels, clean_metrics, errors


def version_upload(
    *, model: AIModel, version: str, artefact: Any, labels: Sequence[dict[str, str]], input_width: int,
    input_height: int, input_channels: int, input_mean: Sequence[float], input_std: Sequence[float],
    intended_use_ja: str, intended_use_en: str = "", limitations_ja: str, limitations_en: str = "",
    training_data_ja: str, training_data_en: str = "", metrics: dict[str, Any], evaluation_set_size: int,
    training_releases: Iterable[DatasetRelease] = (), evaluation_releases: Iterable[DatasetRelease] = (),
    by: User,
) -> ModelVersion:
    """A draft version with its ONNX file, validated against its card (see the module notes)."""
    from portal.ai.onnx_model import ModelRefused, check_against_card, inspect_onnx

    _require_manager(by, model)
    version = (version or "").strip()
    clean_labels, clean_metrics, errors = _validate_card(
        labels=labels, input_width=input_width, input_height=input_height, input_channels=input_channels,
        input_mean=input_mean, input_std=input_std, intended_use_ja=intended_use_ja,
        limitations_ja=limitations_ja, training_data_ja=training_data_ja, metrics=metrics,
        evaluation_set_size=evaluation_set_size,
    )
    if not VERSION_PATTERN.match(version):
        errors.setdefault("version", []).append(
            _("Use up to 40 letters, digits, dots, hyphens and underscores, e.g. 1.0.0.")
        )
    elif model.versions.filter(version=version).exists():
        errors.setdefault("version", []).append(_("This model already has a version %(version)s.") % {
            "version": version})
    limit_mb = int(settings.PORTAL_AI_MAX_MODEL_MB)
    data: bytes | None = None
    sha = ""
    if artefact is None:
        errors.setdefault("artefact", []).append(_("Choose the ONNX file."))
    else:
        data, sha, size = _read_limited(artefact, _mb(limit_mb))
        if data is None:
            errors.setdefault("artefact", []).append(
                _("The ONNX file is %(size)s MB; at most %(limit)d MB is accepted.")
                % {"size": f"{size / 1024 / 1024:.1f}", "limit": limit_mb}
            )
        elif not data:
            errors.setdefault("artefact", []).append(_("The ONNX file is empty."))
            data = None
    facts = None
    if data is not None:
        try:
            facts = inspect_onnx(data)
            if "labels" not in errors and not {"input_width", "input_height", "input_channels"} & set(errors):
                check_against_card(facts, width=input_width, height=input_height, channels=input_channels,
                                   label_count=len(clean_labels))
        except ModelRefused as refusal:
            errors.setdefault("artefact", []).append(str(refusal))
    if errors:
        raise ValidationError(errors)
    assert data is not None and facts is not None
    training = list(training_releases)
    evaluation = list(evaluation_releases)
    key = f"ai/models/{model.slug}/{version}/{sha}.onnx"
    stored = ""
    try:
        with transaction.atomic():
            AIModel.objects.select_for_update().get(pk=model.pk)
            if model.versions.filter(version=version).exists():
                raise ValidationError({"version": [_("This model already has a version %(version)s.") % {
                    "version": version}]})
            if default_storage.exists(key):
                default_storage.delete(key)
            stored = default_storage.save(key, ContentFile(data))
            row = ModelVersion.objects.create(
                model=model, version=version, labels=clean_labels, input_width=input_width,
                input_height=input_height, input_channels=input_channels,
                input_mean=[float(v) for v in input_mean], input_std=[float(v) for v in input_std],
                intended_use_ja=intended_use_ja.strip(), intended_use_en=(intended_use_en or "").strip(),
                limitations_ja=limitations_ja.strip(), limitations_en=(limitations_en or "").strip(),
                training_data_ja=training_data_ja.strip(), training_data_en=(training_data_en or "").strip(),
                metric_auc=clean_metrics["auc"], metric_accuracy=clean_metrics["accuracy"],
                metric_sensitivity=clean_metrics["sensitivity"], metric_specificity=clean_metrics["specificity"],
                evaluation_set_size=evaluation_set_size, artefact_key=stored, artefact_sha256=sha,
                artefact_size=len(data), input_name=facts.input_name, output_name=facts.output_name,
                opset=facts.opset, created_by=by,
            )
            row.training_releases.set(training)
            row.evaluation_releases.set(evaluation)
            audit_record(action="ai.version_uploaded", actor=by, target=row, details={
                "model": model.slug, "version": version, "sha256": sha, "size": len(data),
                "labels": [label["code"] for label in clean_labels],
                "input": [input_channels, input_height, input_width], "metrics": clean_metrics,
                "evaluation_set_size": evaluation_set_size,
                "training_releases": sorted(str(r) for r in training),
                "evaluation_releases": sorted(str(r) for r in evaluation),
            })
    except BaseException:
        if stored:
            default_storage.delete(stored)
        raise
    return row


def version_publish(*, version: ModelVersion, by: User) -> ModelVersion:
    """A draft becomes runnable by everyone who may run the model."""
    _require_manager(by, version.model)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
        locked.published_at = timezone.now()
        locked.published_by = by
        source, target = version_transition(locked, "publish", extra_fields=("published_at", "published_by"))
        audit_record(action="ai.version_published", actor=by, target=locked, details={
            "model": locked.model.slug, "version": locked.version, "sha256": locked.artefact_sha256,
            "from": source, "to": target,
        })
    version.refresh_from_db()
    return version


def version_retire(*, version: ModelVersion, reason: str, by: User) -> ModelVersion:
    """No new job may use the version; its card and past results stay."""
    _require_manager(by, version.model)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the version is retired.")})
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
        locked.retired_at = timezone.now()
        locked.retired_by = by
        locked.retire_reason = reason
        source, target = version_transition(
            locked, "retire", extra_fields=("retired_at", "retired_by", "retire_reason")
        )
        audit_record(action="ai.version_retired", actor=by, target=locked, details={
            "model": locked.model.slug, "version": locked.version, "reason": reason, "from": source, "to": target,
        })
    version.refresh_from_db()
    return version


# --- Provenance ----------------------------------------------------------------------------------


def _versions_built_on(release_ids: Iterable[int]) -> list[tuple[ModelVersion, set[int], set[int]]]:
    """Versions trained or evaluated on any of these releases, with which (training, evaluation)."""
    ids = list(release_ids)
    if not ids:
        return []
    versions = (
        ModelVersion.objects.filter(Q(training_releases__in=ids) | Q(evaluation_releases__in=ids))
        .distinct().select_related("model").order_by("id")
    )
    found = []
    for version in versions:
        training = set(version.training_releases.filter(pk__in=ids).values_list("pk", flat=True))
        evaluation = set(version.evaluation_releases.filter(pk__in=ids).values_list("pk", flat=True))
        found.append((version, training, evaluation))
    return found


def _flag(
    *, version: ModelVersion, release: DatasetRelease, kind: str, details: dict[str, Any], uses: list[str],
    by: User | None,
) -> ProvenanceNotice:
    notice = ProvenanceNotice.objects.create(version=version, release=release, kind=kind, details=details)
    audit_record(
        action="ai.provenance_flagged", actor=by, actor_email="" if by is not None else "portal", target=version,
        details={"model": version.model.slug, "version": version.version, "release": str(release),
                 "kind": kind, "uses": uses, **details},
    )
    return notice


def _used_for(uses: list[str]) -> str:
    return ", ".join(str(USE_LABELS[use]) for use in uses)


def _uses(release_id: int, training: set[int], evaluation: set[int]) -> list[str]:
    return [name for name, ids in (("training", training), ("evaluation", evaluation)) if release_id in ids]


def provenance_release_withdrawn(*, release: DatasetRelease, by: User | None = None) -> list[ProvenanceNotice]:
    """A release a version was trained or evaluated on was withdrawn: notice on the card, admins told.

    Called inside ``portal.datasets.services.release_withdraw``'s transaction."""
    notices = []
    for version, training, evaluation in _versions_built_on([release.pk]):
        uses = _uses(release.pk, training, evaluation)
        notices.append(_flag(
            version=version, release=release, kind=ProvenanceNotice.Kind.RELEASE_WITHDRAWN,
            details={"reason": release.withdrawal_reason}, uses=uses, by=by,
        ))
        _send(
            _("A release model %(model)s %(version)s was built on was withdrawn") % {
                "model": version.model.slug, "version": version.version},
            _("Release %(release)s (%(uses)s) was withdrawn: %(reason)s") % {
                "release": str(release), "uses": _used_for(uses), "reason": release.withdrawal_reason},
            member_users(version.model.society_id, SocietyMembership.Role.ADMIN),
            _model_url(version.model),
        )
    return notices


def provenance_subjects_opted_out(
    *, releases: Iterable[DatasetRelease], reference: str, counts: dict[int, int], by: User | None = None,
) -> list[ProvenanceNotice]:
    """Subjects in releases a version was built on opted out: notice (reference and file count only).

    Called inside ``portal.optout.services.optout_request_record``'s transaction."""
    by_id = {release.pk: release for release in releases}
    notices = []
    for version, training, evaluation in _versions_built_on(by_id):
        for release_id in sorted(training | evaluation):
            release = by_id[release_id]
            uses = _uses(release_id, training, evaluation)
            files = int(counts.get(release_id, 0))
            notices.append(_flag(
                version=version, release=release, kind=ProvenanceNotice.Kind.SUBJECTS_OPTED_OUT,
                details={"reference": reference, "files": files}, uses=uses, by=by,
            ))
            _send(
                _("Subjects of a release model %(model)s %(version)s was built on opted out") % {
                    "model": version.model.slug, "version": version.version},
                _("Opt-out request %(reference)s concerns %(files)d files of release %(release)s (%(uses)s).") % {
                    "reference": reference, "files": files, "release": str(release), "uses": _used_for(uses)},
                member_users(version.model.society_id, SocietyMembership.Role.ADMIN),
                _model_url(version.model),
            )
    return notices


# --- Access requests -----------------------------------------------------------------------------


def access_request_submit(*, model: AIModel, user: User, purpose: str) -> ModelAccessRequest:
    """A light request to run ``model``, for its society's admins to decide."""
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied(_("Sign in to ask for access."))
    purpose = (purpose or "").strip()
    if not purpose:
        raise ValidationError({"purpose": _("Say what you want to use the model for.")})
    if not model.versions.filter(status=ModelVersion.Status.PUBLISHED).exists():
        raise ValidationError(_("This model has no published version yet."), code="no_version")
    if may_run(user, model):
        raise ValidationError(_("You may already run this model."), code="already")
    with transaction.atomic():
        AIModel.objects.select_for_update().get(pk=model.pk)
        if ModelAccessRequest.objects.filter(
            model=model, user=user, status__in=ModelAccessRequest.OPEN_STATUSES
        ).exists():
            raise ValidationError(_("You already have an open request for this model."), code="open")
        request = ModelAccessRequest.objects.create(model=model, user=user, purpose=purpose)
        audit_record(action="ai.access_requested", actor=user, target=request, details={
            "model": model.slug, "purpose": purpose,
        })
        _send(
            _("Request to run model %(model)s") % {"model": model.slug},
            _("%(user)s asks to run %(model)s:\n\n%(purpose)s") % {
                "user": user.email, "model": model.name_ja, "purpose": purpose},
            member_users(model.society_id, SocietyMembership.Role.ADMIN),
            "/ai/manage/requests/",
        )
    return request


def _locked_request(request: ModelAccessRequest) -> ModelAccessRequest:
    return ModelAccessRequest.objects.select_for_update().select_related("model", "user").get(pk=request.pk)


def access_request_decide(
    *, request: ModelAccessRequest, approve: bool, note: str = "", by: User
) -> ModelAccessRequest:
    """Approve (the run permission is assigned) or reject (a note is required) a submitted request."""
    from guardian.shortcuts import assign_perm

    _require_manager(by, request.model)
    note = (note or "").strip()
    if not approve and not note:
        raise ValidationError({"note": _("Say why the request is rejected.")})
    with transaction.atomic():
        locked = _locked_request(request)
        locked.decided_by = by
        locked.decided_at = timezone.now()
        locked.decision_note = note
        source, target = request_transition(
            locked, "approve" if approve else "reject", extra_fields=("decided_by", "decided_at", "decision_note")
        )
        if approve:
            assign_perm(RUN_PERMISSION, locked.user, locked.model)
        audit_record(action="ai.access_decided", actor=by, target=locked, details={
            "model": locked.model.slug, "user": locked.user.email, "approve": bool(approve), "note": note,
            "from": source, "to": target,
        })
        subject = (_("Your request to run %(model)s was approved") if approve
                   else _("Your request to run %(model)s was rejected")) % {"model": locked.model.slug}
        _send(subject, note, [locked.user], _model_url(locked.model))
    request.refresh_from_db()
    return request


def access_request_withdraw(*, request: ModelAccessRequest, by: User) -> ModelAccessRequest:
    """The requester takes back a request still waiting for a decision."""
    if getattr(by, "pk", None) != request.user_id:
        raise PermissionDenied(_("Only the requester can withdraw the request."))
    with transaction.atomic():
        locked = _locked_request(request)
        source, target = request_transition(locked, "withdraw")
        audit_record(action="ai.access_withdrawn", actor=by, target=locked, details={
            "model": locked.model.slug, "from": source, "to": target,
        })
    request.refresh_from_db()
    return request


def access_revoke(*, request: ModelAccessRequest, reason: str, by: User) -> ModelAccessRequest:
    """Take back an approved request's run permission (jobs already run keep their results)."""
    from guardian.shortcuts import remove_perm

    _require_manager(by, request.model)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why access is revoked.")})
    with transaction.atomic():
        locked = _locked_request(request)
        locked.decision_note = reason
        source, target = request_transition(locked, "revoke", extra_fields=("decision_note",))
        remove_perm(RUN_PERMISSION, locked.user, locked.model)
        audit_record(action="ai.access_revoked", actor=by, target=locked, details={
            "model": locked.model.slug, "user": locked.user.email, "reason": reason, "from": source, "to": target,
        })
        _send(
            _("Your access to model %(model)s was revoked") % {"model": locked.model.slug},
            reason, [locked.user], _model_url(locked.model),
        )
    request.refresh_from_db()
    return request


# --- Inference jobs: creating ------------------------------------------------------------------


def _check_version_runnable(version: ModelVersion, user: User) -> None:
    model = version.model
    if not may_run(user, model):
        raise PermissionDenied(_("You may not run this model."))
    if model.task not in AIModel.RUNNABLE_TASKS:
        raise ValidationError(
            _("The portal cannot run %(task)s models yet.") % {"task": AIModel.Task(model.task).label},
            code="task",
        )
    if version.status == ModelVersion.Status.RETIRED:
        raise ValidationError(
            _("This version was retired on %(date)s; choose a published version.")
            % {"date": formats.date_format(timezone.localtime(version.retired_at), "DATE_FORMAT")
               if version.retired_at else "?"},
            code="retired",
        )
    if version.status == ModelVersion.Status.DRAFT and not may_manage_model(user, model):
        raise ValidationError(_("This version is a draft; choose a published version."), code="draft")


def _release_files(user: User, picks: Sequence[int]) -> tuple[DatasetRelease, list[ReleaseFile]]:
    """The picked files, all of one release the user may use now; refused naming the first bad file."""
    ids = [int(pick) for pick in picks]
    files = {f.pk: f for f in ReleaseFile.objects.filter(pk__in=ids).select_related("release__dataset")}
    missing = [str(pk) for pk in ids if pk not in files]
    if missing:
        raise ValidationError({"release_files": [_("No such release file: %(ids)s.") % {"ids": ", ".join(missing)}]})
    ordered = [files[pk] for pk in ids]
    releases = {f.release_id for f in ordered}
    if len(releases) > 1:
        raise ValidationError({"release_files": [_("Pick the files of one release for one job.")]})
    release = ordered[0].release
    if release.status != DatasetRelease.Status.AVAILABLE:
        raise ValidationError({"release_files": [
            _("Release %(release)s was withdrawn; its files cannot be used.") % {"release": str(release)}]})
    grants = active_grants().filter(users=user, releases=release)
    if not any(grant_usability(grant, user).ok for grant in grants):
        raise ValidationError({"release_files": [
            _("You hold no grant in force for release %(release)s, so its file %(file)s cannot be used.")
            % {"release": str(release), "file": ordered[0].path}]})
    excluded = excluded_pseudonyms(dataset=release.dataset)
    for file in ordered:
        if file.is_annotation:
            raise ValidationError({"release_files": [
                _("%(file)s is an annotation file, not an image.") % {"file": file.path}]})
        if file.subject_pseudonym in excluded:
            raise ValidationError({"release_files": [
                _("%(file)s is of a subject who opted out; it may no longer be used.") % {"file": file.path}]})
    return release, ordered


def _upload_name(upload: Any) -> tuple[str, Any]:
    if isinstance(upload, tuple):
        name, content = upload
    else:
        name, content = getattr(upload, "name", "") or "", upload
    name = str(name).replace("\\", "/").rsplit("/", 1)[-1].strip() or _("(no name)")
    return name[:255], content


def _strip(kind: str, data: bytes, *, job_id: int) -> bytes:
    """The image without its metadata (``portal.deid``); DeidError when it cannot be stripped.

    DICOM goes through the Basic Profile with the portal's keys and an institution code of the job's
    own (``AIJOB<id>``): the stored copy's pseudonym and UIDs link nothing outside the job. An object
    without a PatientID (the Basic Profile needs one to pseudonymise) is given a placeholder first."""
    out = io.BytesIO()
    if kind == "dicom":
        # Imported here: pydicom stays off the start-up path of every process.
        from portal.anonymiser.dicom import Profile, deidentify_dicom

        profile = Profile(institution_code=f"AIJOB{job_id}")
        try:
            report = deidentify_dicom(io.BytesIO(data), out, profile=profile, keys=portal_keys())
        except DeidError as error:
            if "PatientID" not in error.reason:
                raise
            out = io.BytesIO()
            report = deidentify_dicom(io.BytesIO(_with_patient_id(data)), out, profile=profile, keys=portal_keys())
        if report.held_back:
            raise DeidError(_("The DICOM image may carry burned-in text that cannot be masked: %(reason)s")
                            % {"reason": report.reason})
    else:
        strip_photo(io.BytesIO(data), out)
    return out.getvalue()


def _with_patient_id(data: bytes) -> bytes:
    from pydicom import dcmread

    try:
        dataset = dcmread(io.BytesIO(data))
        dataset.PatientID = "UNKNOWN"
        out = io.BytesIO()
        dataset.save_as(out)
    except Exception as error:  # pydicom raises many kinds on malformed files
        raise DeidError(str(error)) from error
    return out.getvalue()


_EXTENSIONS = {"jpeg": "jpg", "png": "png", "dicom": "dcm"}


def _prepare_upload(job: InferenceJob, position: int, upload: Any, stored: list[str]) -> InferenceItem:
    from portal.ai.preprocess import ImageRefused, image_kind

    name, content = _upload_name(upload)
    limit_mb = int(settings.PORTAL_AI_MAX_IMAGE_MB)
    data, sha, size = _read_limited(content, _mb(limit_mb))
    item = InferenceItem(job=job, position=position, name=name, input_sha256=sha)
    if data is None:
        item.reason = _("The file is %(size)s MB; at most %(limit)d MB per image is accepted.") % {
            "size": f"{size / 1024 / 1024:.1f}", "limit": limit_mb}
    else:
        try:
            kind = image_kind(data)
            clean = _strip(kind, data, job_id=job.pk)
        except ImageRefused as refusal:
            item.reason = str(refusal)
        except DeidError as error:
            item.reason = _("The image's metadata could not be removed, so it was not stored: %(reason)s") % {
                "reason": error.reason}
        else:
            key = f"{job.storage_prefix}inputs/{position:05d}.{_EXTENSIONS[kind]}"
            if default_storage.exists(key):
                default_storage.delete(key)
            item.stored_key = default_storage.save(key, ContentFile(clean))
            stored.append(item.stored_key)
    if item.reason:
        item.status = InferenceItem.Status.FAILED
        item.processed_at = timezone.now()
    return item


def _queue_run(job_id: int) -> None:
    from portal.ai.tasks import run_job

    queue = getattr(settings, "PORTAL_AI_QUEUE", None) or None

    def send() -> None:
        if queue:
            run_job.apply_async((job_id,), queue=queue)
        else:
            run_job.delay(job_id)

    transaction.on_commit(send)


def inference_job_create(
    *, version: ModelVersion, user: User, uploads: Sequence[Any] = (), release_files: Sequence[Any] = (),
) -> InferenceJob:
    """A job over uploaded images (file objects with a name, or ``(name, bytes)``) or release files.

    Refusals (nothing written): no permission, a retired/draft version, a task the portal cannot
    run, no images, too many, both sources at once, a release file the user may not use. An upload
    that is not an image or cannot be stripped fails alone (item ``failed`` with the reason)."""
    _check_version_runnable(version, user)
    uploads = list(uploads or ())
    try:  # ids or ReleaseFile rows; the same file picked twice is run once
        release_files = list(dict.fromkeys(
            pick.pk if isinstance(pick, ReleaseFile) else int(pick) for pick in release_files or ()))
    except (TypeError, ValueError):
        raise ValidationError({"release_files": [_("Pick release files by their number.")]}) from None
    if uploads and release_files:
        raise ValidationError(_("Upload images or pick files of a release, not both."), code="mixed")
    count = len(uploads) + len(release_files)
    if not count:
        raise ValidationError(_("Choose at least one image."), code="empty")
    limit = int(settings.PORTAL_AI_MAX_IMAGES)
    if count > limit:
        raise ValidationError(
            _("%(count)d images were given; at most %(limit)d can be run in one job.") % {"count": count, "limit": limit},
            code="too_many",
        )
    release, files = (None, []) if not release_files else _release_files(user, release_files)
    source = InferenceJob.Source.RELEASE if files else InferenceJob.Source.UPLOAD
    stored: list[str] = []
    try:
        with transaction.atomic():
            job = InferenceJob.objects.create(user=user, version=version, source=source, release=release, total=count)
            if files:
                items = [
                    InferenceItem(job=job, position=n, name=f.path[-255:], input_sha256=f.sha256,
                                  stored_key=f.storage_key, release_file=f)
                    for n, f in enumerate(files, start=1)
                ]
            else:
                items = [_prepare_upload(job, n, upload, stored) for n, upload in enumerate(uploads, start=1)]
            InferenceItem.objects.bulk_create(items)
            failed = sum(1 for item in items if item.status == InferenceItem.Status.FAILED)
            if failed:
                job.failed = job.done = failed
                job.save(update_fields=["failed", "done"])
            audit_record(action="ai.job_created", actor=user, target=job, details={
                "model": version.model.slug, "version": version.version, "model_sha256": version.artefact_sha256,
                "inputs": [item.input_sha256 for item in items], "source": source,
                "release": str(release) if release else None, "refused_at_upload": failed,
            })
            _queue_run(job.pk)
    except BaseException:
        for key in stored:
            default_storage.delete(key)
        raise
    return job


# --- Inference jobs: running --------------------------------------------------------------------


def _load_session(version: ModelVersion) -> Any:
    from portal.ai.onnx_model import session_for

    def load() -> bytes:
        with default_storage.open(version.artefact_key, "rb") as handle:
            return handle.read()

    return session_for(version.artefact_sha256, load)


def _pipeline(
    session: Any, items: list[InferenceItem], to_tensor: Callable[[InferenceItem], Any], batch_size: int,
) -> Iterable[tuple[list[InferenceItem], list[Any]]]:
    """Batches of (items, per item: probabilities (K,) or the Exception that failed it), preparing
    the next batch while ONNX Runtime runs this one (``portal.ai.inference.run_pipeline``)."""
    from portal.ai.inference import run_pipeline

    for pairs in run_pipeline(session, items, to_tensor, batch_size):
        yield [item for item, _outcome in pairs], [outcome for _item, outcome in pairs]


def _reason(error: BaseException) -> str:
    from portal.ai.preprocess import ImageRefused

    if isinstance(error, ImageRefused):
        return str(error)
    if isinstance(error, OSError):
        return _("The stored image could not be read: %(error)s") % {"error": error}
    return _("The image could not be processed: %(error)s") % {"error": f"{type(error).__name__}: {error}"}


def _thumbnail(image: Any) -> bytes:
    thumbnail = image.convert("L") if image.mode == "F" else image.copy()
    thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    out = io.BytesIO()
    thumbnail.save(out, format="PNG")
    return out.getvalue()


def _recount(job_id: int) -> dict[str, int]:
    counts = dict(
        InferenceItem.objects.filter(job_id=job_id).values_list("status").annotate(n=Count("id")).order_by()
    )
    done = counts.get(InferenceItem.Status.SUCCEEDED, 0) + counts.get(InferenceItem.Status.FAILED, 0)
    return {"done": done, "failed": counts.get(InferenceItem.Status.FAILED, 0),
            "pending": counts.get(InferenceItem.Status.PENDING, 0)}


def _finish(job_id: int, *, error: str = "") -> None:
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update().select_related("version__model").get(pk=job_id)
        if job.status not in InferenceJob.ACTIVE_STATUSES:
            return
        if error:
            InferenceItem.objects.filter(job_id=job_id, status=InferenceItem.Status.PENDING).update(
                status=InferenceItem.Status.FAILED, reason=error, processed_at=timezone.now()
            )
        counts = _recount(job_id)
        if counts["pending"]:
            return
        outcome = ("fail" if error or counts["failed"] == job.total
                   else "finish_with_failures" if counts["failed"] else "finish")
        job.done, job.failed, job.error = counts["done"], counts["failed"], error
        job.finished_at = timezone.now()
        job.started_at = job.started_at or job.finished_at
        transition(job, INFERENCE_JOB, outcome, extra_fields=["done", "failed", "error", "finished_at", "started_at"])
        audit_record(action="ai.job_finished", actor=None, actor_email=WORKER, target=job, details={
            "user": job.user_id, "model": job.version.model.slug, "version": job.version.version,
            "status": job.status, "total": job.total, "succeeded": counts["done"] - counts["failed"],
            "failed": counts["failed"], "error": error,
        })


def inference_job_run(*, job_id: int) -> None:
    """Run the job's pending items through the model, batch by batch (see the module notes)."""
    from portal.ai.onnx_model import ModelRefused
    from portal.ai.preprocess import InputSpec, decode, image_to_tensor

    with transaction.atomic():
        job = InferenceJob.objects.select_for_update().select_related("version__model").filter(pk=job_id).first()
        if job is None or job.status not in InferenceJob.ACTIVE_STATUSES:
            return
        if job.status == InferenceJob.Status.PENDING:
            job.started_at = timezone.now()
            transition(job, INFERENCE_JOB, "start", extra_fields=["started_at"])
    version = job.version
    items = list(job.items.filter(status=InferenceItem.Status.PENDING).order_by("position"))
    if not items:
        _finish(job_id)
        return
    try:
        session = _load_session(version)
    except (ModelRefused, OSError) as error:
        logger.warning("AI job %s: the model could not be loaded: %s", job_id, error)
        _finish(job_id, error=_("The model could not be loaded: %(error)s") % {"error": error})
        return
    spec = InputSpec.from_version(version)
    codes = version.label_codes
    thumbnails: dict[int, bytes] = {}

    # Decoded once for both the tensor and the thumbnail (in H1's preprocessing threads).
    target = (max(spec.width, THUMBNAIL_SIZE), max(spec.height, THUMBNAIL_SIZE))

    def prepare(item: InferenceItem) -> Any:
        with default_storage.open(item.stored_key, "rb") as handle:
            data = handle.read()
        image = decode(data, target=target)
        tensor = image_to_tensor(image, spec)
        thumbnails[item.pk] = _thumbnail(image)
        return tensor

    batch_size = max(1, int(settings.PORTAL_AI_BATCH_SIZE))
    try:
        _run_batches(job, _pipeline(session, items, prepare, batch_size), codes, thumbnails)
    except Exception as error:  # ONNX Runtime failing on the model itself: the job fails, not loops
        logger.exception("AI job %s: the model failed while running", job_id)
        _finish(job_id, error=_("The model failed while running: %(error)s") % {
            "error": f"{type(error).__name__}: {error}"[:500]})
        return
    _finish(job_id)


def _run_batches(
    job: InferenceJob, batches: Iterable[tuple[list[InferenceItem], list[Any]]], codes: list[str],
    thumbnails: dict[int, bytes],
) -> None:
    """Record each batch's results and the job's progress in one transaction per batch."""
    import numpy as np

    job_id = job.pk
    for batch, outcomes in batches:
        now = timezone.now()
        for item, outcome in zip(batch, outcomes, strict=True):
            item.processed_at = now
            if isinstance(outcome, BaseException):
                item.status, item.reason = InferenceItem.Status.FAILED, _reason(outcome)
                continue
            row = np.asarray(outcome, dtype=float).reshape(-1)
            item.status = InferenceItem.Status.SUCCEEDED
            item.probabilities = {code: round(float(p), 6) for code, p in zip(codes, row, strict=False)}
            item.label = codes[int(np.argmax(row))] if len(row) else ""
            thumbnail = thumbnails.pop(item.pk, None)
            if thumbnail is not None:
                key = f"{job.storage_prefix}thumbnails/{item.position:05d}.png"
                if default_storage.exists(key):
                    default_storage.delete(key)
                item.thumbnail_key = default_storage.save(key, ContentFile(thumbnail))
        with transaction.atomic():
            InferenceItem.objects.bulk_update(
                batch, ["status", "reason", "label", "probabilities", "thumbnail_key", "processed_at"]
            )
            counts = _recount(job_id)
            InferenceJob.objects.filter(pk=job_id).update(done=counts["done"], failed=counts["failed"])


def inference_job_resume(*, job: InferenceJob) -> bool:
    """Queue an active job again (its worker died or its message was lost); audited."""
    with transaction.atomic():
        locked = InferenceJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in InferenceJob.ACTIVE_STATUSES:
            return False
        audit_record(action="ai.job_resumed", actor=None, actor_email=WORKER, target=locked, details={
            "done": locked.done, "total": locked.total,
        })
        _queue_run(locked.pk)
    return True


# --- Inference jobs: deleting their images -------------------------------------------------------


RETENTION = "ai-retention"  # the actor of deletions the retention rule makes
ENDED_STATUSES = tuple(s for s in InferenceJob.Status.values if s not in InferenceJob.ACTIVE_STATUSES)


# Items holding an image of the job's own: a thumbnail, or an uploaded copy. A release file's
# ``stored_key`` is the release's copy, which belongs to the release and is never deleted here.
HOLDS_IMAGES = Q(thumbnail_key__gt="") | Q(stored_key__gt="", release_file__isnull=True)


def _delete_after_commit(keys: list[str]) -> None:
    """Delete the files once the transaction that forgot them commits (a rollback loses nothing).

    A file that cannot be deleted is logged, not retried: no row points to it any more."""

    def delete() -> None:
        for key in keys:
            try:
                default_storage.delete(key)
            except Exception:  # one storage error must not keep the other files
                logger.exception("Could not delete the AI job image %s", key)

    if keys:
        transaction.on_commit(delete)


def _job_images_delete(*, job_id: int, by: User | None, reason: str, details: dict[str, Any]) -> InferenceJob:
    """Forget and delete the job's images under the job's lock; refuses an active or emptied job."""
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update().get(pk=job_id)
        if job.is_active:
            raise ValidationError(
                _("The job is still running; its images can be deleted when it has finished."), code="active")
        if job.images_deleted_at is not None:
            raise ValidationError(
                _("The images of this job were already deleted on %(date)s.")
                % {"date": formats.date_format(timezone.localtime(job.images_deleted_at), "DATETIME_FORMAT")},
                code="already_deleted",
            )
        items = list(InferenceItem.objects.filter(HOLDS_IMAGES, job_id=job.pk).order_by("position"))
        if not items:
            raise ValidationError(_("This job has no stored images to delete."), code="no_images")
        prefix = job.storage_prefix
        inputs = [i.stored_key for i in items if i.stored_key and i.release_file_id is None]
        thumbnails = [i.thumbnail_key for i in items if i.thumbnail_key]
        # Only what the job stored itself, under its own prefix: never a release's file.
        keys = [key for key in (*inputs, *thumbnails) if key.startswith(prefix)]
        InferenceItem.objects.filter(job_id=job.pk).update(stored_key="", thumbnail_key="")
        job.images_deleted_at = timezone.now()
        job.save(update_fields=["images_deleted_at"])
        audit_record(
            action="ai.job_images_deleted", actor=by, actor_email="" if by else RETENTION, target=job,
            details={"reason": reason, "inputs_deleted": len(inputs), "thumbnails_deleted": len(thumbnails),
                     "release_files_kept": sum(1 for i in items if i.release_file_id is not None), **details},
        )
        _delete_after_commit(keys)
    return job


def retention_days() -> int:
    """Days a job's images are kept after it ended (``PORTAL_AI_INPUT_RETENTION_DAYS``; 0: until deleted)."""
    return max(int(getattr(settings, "PORTAL_AI_INPUT_RETENTION_DAYS", 30)), 0)


def inference_job_images_delete(*, job: InferenceJob, by: User) -> InferenceJob:
    """Delete the job's stored images: the uploaded (stripped) copies and every thumbnail.

    Only the job's runner may; not while it runs. The results stay (label, probabilities, the
    inputs' SHA-256), so the job can still be reported and matched to the original files; files of
    a release stay with the release. The files go after the commit. A second call is refused: there
    is nothing left to delete."""
    if by is None or not getattr(by, "is_authenticated", False) or by.pk != job.user_id:
        raise PermissionDenied(_("Only the person who ran the job can delete its images."))
    deleted = _job_images_delete(job_id=job.pk, by=by, reason="owner", details={})
    job.images_deleted_at = deleted.images_deleted_at
    return deleted


def inference_images_purge(*, now: datetime | None = None) -> int:
    """Delete the images of jobs that ended more than ``PORTAL_AI_INPUT_RETENTION_DAYS`` ago (0: keep).

    One transaction per job, audited with the reason "retention"; returns the number of jobs."""
    days = retention_days()
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    with_images = InferenceItem.objects.filter(HOLDS_IMAGES, job_id=OuterRef("pk"))
    due = (
        InferenceJob.objects.filter(status__in=ENDED_STATUSES, images_deleted_at__isnull=True)
        .filter(Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff))
        .filter(Exists(with_images))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    purged = 0
    for job_id in list(due):
        try:
            _job_images_delete(job_id=job_id, by=None, reason="retention", details={"retention_days": days})
        except ValidationError:  # deleted or emptied meanwhile by its runner
            continue
        except Exception:  # one job's trouble must not keep the others' images
            logger.exception("Could not delete the images of AI job %s", job_id)
            continue
        purged += 1
    return purged
