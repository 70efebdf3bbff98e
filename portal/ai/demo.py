"""Demo AI models: the two prototypes trained on synthetic images, registered, published and opened.

``register_demo_models()`` (the ``train_demo_models`` command) trains both models of
``portal.ai.demo_models`` and registers each through the services as an admin of its society (or
the operator), with ``is_demo=True``, its card from the training run and, as provenance, the
society's newest available release where one exists; then publishes it. A model whose version
carries an ONNX file with the same SHA-256 is skipped, so running it again changes nothing.

``seed_demo_ai()`` (called at the end of ``portal.demo.seed.seed_demo``) does the same, then lets
the demo company run the endoscopy model through its JGES grant (``open_to_grant_holders``) and the
pathology model through an approved light request; the hospital researcher's request waits.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from portal.accounts.models import OrganizationMembership, User
from portal.ai import services
from portal.ai.models import AIModel, ModelVersion
from portal.datasets.models import DatasetRelease
from portal.societies.models import Society, SocietyMembership

DEMO_VERSION = "1.0.0"
COMPANY = "company@demo.example.jp"
RESEARCHER = "researcher@demo.example.jp"
PATHOLOGY_ADMIN = "society-admin@demo.example.jp"


@dataclass
class Registered:
    slug: str
    version: str
    sha256: str
    created: bool
    metrics: dict[str, float]
    evaluation_set_size: int
    training_set_size: int


def _operator() -> User | None:
    staff = User.objects.filter(is_staff=True, is_active=True).order_by("id").first()
    if staff is not None:
        return staff
    membership = (
        OrganizationMembership.objects.filter(role=OrganizationMembership.Role.OPERATOR, user__is_active=True)
        .select_related("user").order_by("id").first()
    )
    return membership.user if membership else None


def _acting_user(society: Society) -> User | None:
    membership = (
        SocietyMembership.objects.filter(society=society, role=SocietyMembership.Role.ADMIN, user__is_active=True)
        .select_related("user").order_by("id").first()
    )
    return membership.user if membership else _operator()


def _register(trained: Any) -> Registered | None:
    society = Society.objects.filter(slug=trained.society_slug).first()
    if society is None:
        return None
    by = _acting_user(society)
    if by is None:
        return None
    sha = hashlib.sha256(trained.onnx).hexdigest()
    model = AIModel.objects.filter(slug=trained.slug).first()
    facts = {"metrics": dict(trained.metrics), "evaluation_set_size": trained.evaluation_set_size,
             "training_set_size": trained.training_set_size}
    if model is not None:
        existing = model.versions.filter(artefact_sha256=sha).first()
        if existing is not None:
            return Registered(slug=model.slug, version=existing.version, sha256=sha, created=False, **facts)
    else:
        model = services.model_create(
            society=society, slug=trained.slug, name_ja=trained.name_ja, name_en=trained.name_en,
            task=AIModel.Task.CLASSIFICATION, modality=trained.modality, summary_ja=trained.summary_ja,
            summary_en=trained.summary_en, is_demo=True, by=by,
        )
    version = DEMO_VERSION if not model.versions.exists() else f"{DEMO_VERSION}-{sha[:8]}"
    release = (
        DatasetRelease.objects.filter(dataset__society=society, status=DatasetRelease.Status.AVAILABLE)
        .order_by("-created_at", "-id").first()
    )
    releases = [release] if release is not None else []
    row = services.version_upload(
        model=model, version=version, artefact=trained.onnx, labels=list(trained.labels),
        input_width=trained.input_width, input_height=trained.input_height,
        input_channels=trained.input_channels, input_mean=list(trained.input_mean),
        input_std=list(trained.input_std), intended_use_ja=trained.intended_use_ja,
        intended_use_en=trained.intended_use_en, limitations_ja=trained.limitations_ja,
        limitations_en=trained.limitations_en, training_data_ja=trained.training_data_ja,
        training_data_en=trained.training_data_en, metrics=dict(trained.metrics),
        evaluation_set_size=trained.evaluation_set_size, training_releases=releases,
        evaluation_releases=releases, by=by,
    )
    services.version_publish(version=row, by=by)
    return Registered(slug=model.slug, version=row.version, sha256=sha, created=True, **facts)


@functools.cache
def trained_demo_model(kind: str, seed: int = 0) -> Any:
    """The demo model ``kind`` trained once per process (training is deterministic for a seed)."""
    from portal.ai.demo_models import DEMO_SPECS, train_demo_model

    return train_demo_model(DEMO_SPECS[kind], seed=seed)


def register_demo_models(*, seed: int = 0, kinds: tuple[str, ...] | None = None) -> list[Registered]:
    """Train and register the demo models (see the module notes); a society not there is skipped."""
    from portal.ai.demo_models import DEMO_SPECS

    registered = []
    for kind in kinds or tuple(DEMO_SPECS):
        result = _register(trained_demo_model(kind, seed))
        if result is not None:
            registered.append(result)
    return registered


def seed_demo_ai() -> list[Registered]:
    """The demo models, and who may run them (idempotent)."""
    from portal.ai.demo_models import DEMO_SPECS

    registered = register_demo_models()
    endoscopy = AIModel.objects.filter(slug=DEMO_SPECS["endoscopy-organ"].slug).first()
    if endoscopy is not None and not endoscopy.open_to_grant_holders:
        by = _acting_user(endoscopy.society)
        services.model_update(model=endoscopy, open_to_grant_holders=True, by=by)
    pathology = AIModel.objects.filter(slug=DEMO_SPECS["pathology-tile"].slug).first()
    company = User.objects.filter(email=COMPANY).first()
    researcher = User.objects.filter(email=RESEARCHER).first()
    admin = User.objects.filter(email=PATHOLOGY_ADMIN).first()
    if pathology is None or not pathology.versions.filter(status=ModelVersion.Status.PUBLISHED).exists():
        return registered
    if company is not None and admin is not None and not pathology.access_requests.filter(user=company).exists():
        request = services.access_request_submit(
            model=pathology, user=company,
            purpose="病理組織画像の異常検出AIを自社製品に組み込む前に、学会の試作モデルの挙動を確認したい。",
        )
        services.access_request_decide(request=request, approve=True, note="デモ用に承認します。", by=admin)
    if researcher is not None and not pathology.access_requests.filter(user=researcher).exists():
        services.access_request_submit(
            model=pathology, user=researcher,
            purpose="胃生検の病理画像を用いた共同研究の予備検討として、試作モデルを試用したい。",
        )
    return registered
