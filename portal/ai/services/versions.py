"""Model versions: uploading an ONNX file with its card, publishing and retiring."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.ai.models import AIModel, ModelVersion
from portal.ai.services._common import VERSION_PATTERN, _mb, _read_limited, _require_manager
from portal.ai.services.cards import card_validate
from portal.ai.workflow import version_transition
from portal.audit.services import audit_record
from portal.datasets.models import DatasetRelease


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
    clean_labels, clean_metrics, errors = card_validate(
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


