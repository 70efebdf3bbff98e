"""Factories for hosted AI models, written straight to the tables, with a real demo ONNX file.

``demo_trained(kind)`` trains the demo model once per test process (a few seconds) and keeps it;
``published_version`` stores its ONNX file in the default storage like the services do.
"""

from __future__ import annotations

import hashlib

import factory
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from factory.django import DjangoModelFactory

from portal.ai.models import AIModel, ModelVersion
from tests.factories import SocietyFactory


def demo_trained(kind: str = "endoscopy-organ"):  # type: ignore[no-untyped-def]
    """The demo model ``kind`` ("endoscopy-organ" or "pathology-tile"), trained once and kept."""
    from portal.ai.demo import trained_demo_model

    return trained_demo_model(kind)


class AIModelFactory(DjangoModelFactory):
    class Meta:
        model = AIModel

    society = factory.SubFactory(SocietyFactory)
    slug = factory.Sequence(lambda n: f"model-{n}")
    name_ja = factory.Sequence(lambda n: f"試験用モデル{n}")
    name_en = factory.Sequence(lambda n: f"Test model {n}")
    task = AIModel.Task.CLASSIFICATION
    modality = "endoscopy"
    summary_ja = "試験用の分類モデル"
    open_to_grant_holders = False
    is_demo = True


def published_version(model: AIModel | None = None, *, kind: str = "endoscopy-organ", version: str = "1.0.0",
                      status: str = ModelVersion.Status.PUBLISHED, **overrides) -> ModelVersion:  # type: ignore[no-untyped-def]
    """A version of ``model`` (a new one by default) carrying the demo model ``kind``'s ONNX file."""
    model = model or AIModelFactory()
    trained = demo_trained(kind)
    sha = hashlib.sha256(trained.onnx).hexdigest()
    key = default_storage.save(f"ai/models/{model.slug}/{version}/{sha}.onnx", ContentFile(trained.onnx))
    fields = {
        "model": model, "version": version, "status": status, "labels": trained.labels,
        "input_width": trained.input_width, "input_height": trained.input_height,
        "input_channels": trained.input_channels, "input_mean": trained.input_mean,
        "input_std": trained.input_std, "intended_use_ja": "試験", "limitations_ja": "試験",
        "training_data_ja": "合成画像", "metric_auc": trained.metrics.get("auc"),
        "metric_accuracy": trained.metrics.get("accuracy"),
        "metric_sensitivity": trained.metrics.get("sensitivity"),
        "metric_specificity": trained.metrics.get("specificity"),
        "evaluation_set_size": trained.evaluation_set_size, "artefact_key": key, "artefact_sha256": sha,
        "artefact_size": len(trained.onnx), "input_name": trained.input_name,
        "output_name": trained.output_name, "opset": trained.opset,
        "published_at": timezone.now() if status != ModelVersion.Status.DRAFT else None,
        "retired_at": timezone.now() if status == ModelVersion.Status.RETIRED else None,
    }
    fields.update(overrides)
    return ModelVersion.objects.create(**fields)
