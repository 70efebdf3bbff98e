"""The demo models: synthetic images, deterministic training, honest held-out metrics, a valid ONNX file."""

from __future__ import annotations

import dataclasses
import hashlib
import io

import numpy as np
import onnx
import pytest
from PIL import Image

from portal.ai.demo_models import (
    DEMO_SPECS,
    classification_metrics,
    synthetic_image,
    synthetic_png,
    train_demo_model,
)
from portal.ai.inference import classify
from portal.ai.onnx_model import check_against_card, inspect_onnx, new_session
from portal.ai.preprocess import InputSpec, to_tensor
from tests.factories.ai import demo_trained

KINDS = ["endoscopy-organ", "pathology-tile"]


def test_demo_specs_name_the_labels_societies_and_modalities_of_the_prototypes():
    endoscopy, pathology = DEMO_SPECS["endoscopy-organ"], DEMO_SPECS["pathology-tile"]
    assert [(label["code"], label["ja"]) for label in endoscopy.labels] == [
        ("esophagus", "食道"), ("stomach", "胃"), ("duodenum", "十二指腸"),
    ]
    assert (endoscopy.society_slug, endoscopy.modality) == ("jges", "endoscopy")
    assert [(label["code"], label["ja"]) for label in pathology.labels] == [("normal", "正常"), ("abnormal", "異常")]
    assert (pathology.society_slug, pathology.modality) == ("jsp", "pathology_wsi")


@pytest.mark.parametrize("kind", KINDS)
def test_synthetic_image_is_rgb_uint8_bigger_than_the_input_and_seeded(kind):
    spec = DEMO_SPECS[kind]
    for label in spec.label_codes:
        image = synthetic_image(kind, label, np.random.default_rng(7))
        again = synthetic_image(kind, label, np.random.default_rng(7))
        other = synthetic_image(kind, label, np.random.default_rng(8))
        assert image.dtype == np.uint8
        assert image.ndim == 3 and image.shape[2] == 3
        assert 96 <= image.shape[0] <= 128 and 96 <= image.shape[1] <= 128
        assert np.array_equal(image, again)
        assert image.shape != other.shape or not np.array_equal(image, other)
        assert image.std() > 10  # a picture, not a flat colour


def test_synthetic_image_refuses_an_unknown_label():
    with pytest.raises(ValueError, match="no label 'colon'"):
        synthetic_image("endoscopy-organ", "colon", np.random.default_rng(0))


def test_synthetic_png_is_a_png_of_that_seed():
    data = synthetic_png("pathology-tile", "abnormal", seed=3)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), synthetic_image("pathology-tile", "abnormal", np.random.default_rng(3)))
    assert synthetic_png("pathology-tile", "abnormal", seed=3) == data


def test_no_single_pixel_separates_the_classes():
    # Every pixel position and channel, taken alone as a threshold, must misclassify some images.
    rng = np.random.default_rng(11)
    spec = InputSpec(64, 64, 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    tensors = {
        label: np.stack([to_tensor(_png(synthetic_image("pathology-tile", label, rng)), spec) for _ in range(40)])
        for label in ("normal", "abnormal")
    }
    normal, abnormal = tensors["normal"].reshape(40, -1), tensors["abnormal"].reshape(40, -1)
    separable = (normal.max(axis=0) < abnormal.min(axis=0)) | (abnormal.max(axis=0) < normal.min(axis=0))
    assert not separable.any()


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_training_is_deterministic_for_a_seed_and_differs_between_seeds():
    small = dataclasses.replace(DEMO_SPECS["pathology-tile"], training_set_size=90, evaluation_set_size=40)
    first, second = train_demo_model(small, seed=5), train_demo_model(small, seed=5)
    other = train_demo_model(small, seed=6)
    assert first.onnx == second.onnx
    assert first.metrics == second.metrics
    assert first.sha256 == hashlib.sha256(first.onnx).hexdigest()
    assert other.onnx != first.onnx


@pytest.mark.parametrize(("kind", "thresholds"), [
    ("endoscopy-organ", {"auc": 0.97, "accuracy": 0.9, "sensitivity": 0.9, "specificity": 0.93}),
    ("pathology-tile", {"auc": 0.95, "accuracy": 0.88, "sensitivity": 0.85, "specificity": 0.85}),
])
def test_held_out_metrics_are_high_and_measured(kind, thresholds):
    trained = demo_trained(kind)
    assert set(trained.metrics) == {"auc", "accuracy", "sensitivity", "specificity"}
    for name, minimum in thresholds.items():
        assert minimum <= trained.metrics[name] <= 1.0, (name, trained.metrics)
    assert trained.evaluation_set_size == 300
    assert trained.training_set_size == 600


@pytest.mark.parametrize("kind", KINDS)
def test_exported_model_passes_the_checker_inspect_and_the_card_check(kind):
    trained = demo_trained(kind)
    onnx.checker.check_model(onnx.load_model_from_string(trained.onnx), full_check=True)
    facts = inspect_onnx(trained.onnx)
    assert facts.input_name == trained.input_name == "image"
    assert facts.output_name == trained.output_name == "probabilities"
    assert facts.input_shape == [None, 3, trained.input_height, trained.input_width]
    assert facts.output_shape == [None, len(trained.labels)]
    assert facts.input_type == "tensor(float)"
    assert facts.opset == trained.opset
    assert facts.producer == "portal.ai.demo_models"
    check_against_card(facts, width=trained.input_width, height=trained.input_height,
                       channels=trained.input_channels, label_count=len(trained.labels))


@pytest.mark.parametrize("kind", KINDS)
def test_predictions_on_fresh_synthetic_pngs_are_mostly_right(kind):
    trained = demo_trained(kind)
    spec = InputSpec(trained.input_width, trained.input_height, trained.input_channels,
                     tuple(trained.input_mean), tuple(trained.input_std))
    codes = [label["code"] for label in trained.labels]
    truth = [codes[i % len(codes)] for i in range(60)]
    # Seeds far from the training generator's stream: images the model never saw.
    batch = np.stack([to_tensor(synthetic_png(kind, label, seed=10_000 + i), spec) for i, label in enumerate(truth)])
    probabilities = classify(new_session(trained.onnx), batch)
    assert probabilities.shape == (60, len(codes))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    right = sum(codes[row.argmax()] == label for row, label in zip(probabilities, truth, strict=True))
    assert right >= 51  # 85 %


@pytest.mark.parametrize("kind", KINDS)
def test_card_texts_say_demo_synthetic_not_for_clinical_use(kind):
    trained = demo_trained(kind)
    for field in ("intended_use", "limitations", "training_data"):
        assert "デモ用モデル（合成データ、臨床使用不可）" in getattr(trained, f"{field}_ja")
        assert "Demo model, synthetic data, not for clinical use" in getattr(trained, f"{field}_en")
    assert trained.society_slug == DEMO_SPECS[kind].society_slug
    assert len(trained.input_mean) == len(trained.input_std) == trained.input_channels == 3


def test_binary_metrics_take_abnormal_as_positive():
    targets = np.array([0, 0, 0, 1, 1, 1])  # 1 = abnormal
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    metrics = classification_metrics(probabilities, targets, positive=1)
    assert metrics == {"auc": pytest.approx(8 / 9, abs=1e-4), "accuracy": pytest.approx(4 / 6, abs=1e-4),
                       "sensitivity": pytest.approx(2 / 3, abs=1e-4), "specificity": pytest.approx(2 / 3, abs=1e-4)}


def test_multiclass_metrics_are_macro_one_vs_rest():
    targets = np.array([0, 1, 2, 2])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.1, 0.6, 0.3]])
    metrics = classification_metrics(probabilities, targets, positive=None)
    # Recall per class 1, 1, 0.5; specificity per class 1, 2/3, 1; AUC per class 1, 1, 1.
    assert metrics["accuracy"] == 0.75
    assert metrics["sensitivity"] == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-4)
    assert metrics["specificity"] == pytest.approx((1 + 2 / 3 + 1) / 3, abs=1e-4)
    assert metrics["auc"] == 1.0
