"""ONNX files refused or accepted against their card, the session cache, and batched classification."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from django.utils import translation
from onnx import TensorProto, helper, numpy_helper

from portal.ai import onnx_model
from portal.ai.inference import as_probabilities, classify, classify_in_batches, run_pipeline
from portal.ai.onnx_model import (
    ModelRefused,
    OnnxFacts,
    check_against_card,
    inspect_onnx,
    new_session,
    session_for,
)
from portal.ai.preprocess import ImageRefused


def build_model(*, input_shape=("N", 3, 64, 64), labels=3, softmax=True, input_type=TensorProto.FLOAT,
                extra_input=False, extra_output=False, output_shape=None, weights=None) -> bytes:
    """A tiny classifier: mean of each channel → MatMul → (Softmax); shapes as asked."""
    channels = input_shape[1] if len(input_shape) == 4 else 3
    w = weights if weights is not None else np.arange(channels * labels, dtype=np.float32).reshape(channels, labels) / 10
    nodes, source = [], "image"
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT))
        source = "image_f"
    axes = list(range(2, len(input_shape)))
    nodes.append(helper.make_node("ReduceMean", [source, "axes"], ["means"], keepdims=0))
    nodes.append(helper.make_node("MatMul", ["means", "w"], ["scores" if softmax else "out"]))
    if softmax:
        nodes.append(helper.make_node("Softmax", ["scores"], ["out"], axis=1))
    inputs = [helper.make_tensor_value_info("image", input_type, list(input_shape))]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1]))
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, output_shape or [input_shape[0], labels])]
    if extra_output:
        nodes.append(helper.make_node("Identity", ["means"], ["features"]))
        outputs.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, [input_shape[0], channels]))
    graph = helper.make_graph(nodes, "test", inputs, outputs, [
        numpy_helper.from_array(np.asarray(axes, dtype=np.int64), name="axes"),
        numpy_helper.from_array(w, name="w"),
    ])
    model = helper.make_model(graph, producer_name="tests", opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model.SerializeToString()


def facts(**overrides) -> OnnxFacts:
    values = {"input_name": "image", "input_shape": [None, 3, 64, 64], "input_type": "tensor(float)",
              "output_name": "out", "output_shape": [None, 3], "opset": 18, "producer": "tests"}
    values.update(overrides)
    return OnnxFacts(**values)


CARD = {"width": 64, "height": 64, "channels": 3, "label_count": 3}


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _empty_cache():
    onnx_model.clear_sessions()
    yield
    onnx_model.clear_sessions()


# ---- inspect_onnx ----------------------------------------------------------------------------


def test_inspect_reads_the_single_input_and_output():
    result = inspect_onnx(build_model())
    assert result == OnnxFacts(input_name="image", input_shape=[None, 3, 64, 64], input_type="tensor(float)",
                               output_name="out", output_shape=[None, 3], opset=18, producer="tests")


@pytest.mark.parametrize("data", [b"", b"not an onnx file at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 64])
def test_inspect_refuses_what_is_not_onnx(data):
    with pytest.raises(ModelRefused, match=r"^This file is not an ONNX model: "):
        inspect_onnx(data)


def test_inspect_refusal_carries_onnx_runtimes_reason_without_its_prefix():
    with pytest.raises(ModelRefused) as refused:
        inspect_onnx(b"not an onnx file at all")
    assert str(refused.value) == "This file is not an ONNX model: Failed to load model because protobuf parsing failed."


def test_inspect_refuses_a_truncated_model():
    with pytest.raises(ModelRefused, match=r"^This file is not an ONNX model: "):
        inspect_onnx(build_model()[:-40])


def test_inspect_refuses_two_inputs():
    with pytest.raises(ModelRefused) as refused:
        inspect_onnx(build_model(extra_input=True))
    assert str(refused.value) == "The model has 2 inputs; the portal runs models with exactly one image input."


def test_inspect_refuses_two_outputs():
    with pytest.raises(ModelRefused) as refused:
        inspect_onnx(build_model(extra_output=True))
    assert str(refused.value).startswith("The model has 2 outputs;")


@pytest.mark.parametrize(("onnx_type", "name"), [(TensorProto.INT64, "tensor(int64)"), (TensorProto.UINT8, "tensor(uint8)")])
def test_inspect_refuses_a_non_float_input(onnx_type, name):
    with pytest.raises(ModelRefused) as refused:
        inspect_onnx(build_model(input_type=onnx_type))
    assert str(refused.value) == (
        f"The model's input image is of type {name}; the portal feeds images as floating-point tensors (tensor(float))."
    )


def test_inspect_refuses_an_input_that_is_not_rank_four():
    with pytest.raises(ModelRefused) as refused:
        inspect_onnx(build_model(input_shape=("N", 3, 64)))
    assert "has shape [?, 3, 64]; the portal needs four dimensions (N, C, H, W)" in str(refused.value)


# ---- check_against_card --------------------------------------------------------------------


def test_card_check_accepts_matching_and_dynamic_dimensions():
    check_against_card(inspect_onnx(build_model()), **CARD)
    check_against_card(facts(input_shape=[None, 3, None, None]), **CARD)
    check_against_card(facts(input_shape=[1, 3, 64, 64], output_shape=[1, 3]), **CARD)
    check_against_card(facts(output_shape=[None, 3, 1, 1]), **CARD)
    check_against_card(facts(output_shape=[]), **CARD)


def test_card_check_refuses_wrong_channels_naming_both_sides():
    wrong = inspect_onnx(build_model(input_shape=("N", 1, 64, 64)))
    with pytest.raises(ModelRefused) as refused:
        check_against_card(wrong, **CARD)
    assert str(refused.value) == (
        "The model's input [?, 1, 64, 64] disagrees with the card (channels: the model takes 1, the card says 3)."
    )


def test_card_check_refuses_wrong_size_naming_both_sides():
    wrong = inspect_onnx(build_model(input_shape=("N", 3, 32, 48)))
    with pytest.raises(ModelRefused) as refused:
        check_against_card(wrong, **CARD)
    assert str(refused.value) == (
        "The model's input [?, 3, 32, 48] disagrees with the card "
        "(height: the model takes 32, the card says 64; width: the model takes 48, the card says 64)."
    )


def test_card_check_refuses_wrong_label_count():
    wrong = inspect_onnx(build_model(labels=2))
    with pytest.raises(ModelRefused) as refused:
        check_against_card(wrong, **CARD)
    assert str(refused.value) == "The model gives 2 scores per image (output [?, 2]); the card names 3 labels."


def test_card_check_refuses_a_fixed_batch_other_than_one():
    with pytest.raises(ModelRefused) as refused:
        check_against_card(inspect_onnx(build_model(input_shape=(8, 3, 64, 64))), **CARD)
    assert str(refused.value) == "The model's batch dimension is fixed at 8; it must be dynamic or 1."


# ---- session_for ---------------------------------------------------------------------------


def test_session_for_loads_once_and_then_serves_from_the_cache():
    data = build_model()
    sha = hashlib.sha256(data).hexdigest()
    calls = []

    def load():
        calls.append(1)
        return data

    first = session_for(sha, load)
    second = session_for(sha, load)
    assert first is second
    assert len(calls) == 1
    assert first.get_inputs()[0].name == "image"


def test_session_for_refuses_bytes_whose_checksum_differs():
    data = build_model()
    with pytest.raises(ModelRefused, match=r"^The stored model file does not match its checksum"):
        session_for("0" * 64, lambda: data)
    assert onnx_model._cache == {}


def test_session_for_keeps_the_four_most_recently_used():
    models = {hashlib.sha256(m).hexdigest(): m for m in (build_model(labels=k) for k in range(2, 8))}
    shas = list(models)
    for sha in shas[:4]:
        session_for(sha, lambda sha=sha: models[sha])
    session_for(shas[0], lambda: pytest.fail("cached"))  # touch: now the most recent
    session_for(shas[4], lambda: models[shas[4]])  # evicts shas[1], the least recent
    assert list(onnx_model._cache) == [shas[2], shas[3], shas[0], shas[4]]


# ---- classify ------------------------------------------------------------------------------


def _images(n: int, seed: int = 0) -> np.ndarray:
    images = np.random.default_rng(seed).normal(size=(n, 3, 64, 64)) + np.arange(n)[:, None, None, None]
    return images.astype(np.float32)


def test_classify_passes_softmax_outputs_through_unchanged():
    session = new_session(build_model(softmax=True))
    batch = _images(5)
    (raw,) = session.run(None, {"image": batch})
    assert np.array_equal(classify(session, batch), raw)


def test_classify_applies_softmax_to_logits():
    session = new_session(build_model(softmax=False))
    batch = _images(5)
    (raw,) = session.run(None, {"image": batch})
    expected = np.exp(raw - raw.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    result = classify(session, batch)
    assert np.allclose(result, expected, atol=1e-6)
    assert np.allclose(result.sum(axis=1), 1.0, atol=1e-6)


def test_softmax_rule_keeps_sigmoids_and_probabilities_and_softmaxes_logits():
    sigmoids = np.array([[0.9, 0.8], [0.1, 0.2]], dtype=np.float32)
    assert np.array_equal(as_probabilities(sigmoids), sigmoids)
    probabilities = np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32)
    assert np.array_equal(as_probabilities(probabilities), probabilities)
    logits = np.array([[2.0, 0.5], [-1.0, 3.0]], dtype=np.float32)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.allclose(as_probabilities(logits), expected, atol=1e-6)
    assert as_probabilities(np.array([[[[0.2]], [[0.8]]]], dtype=np.float32)).shape == (1, 2)


def test_classify_runs_a_fixed_batch_of_one_model_image_by_image():
    session = new_session(build_model(input_shape=(1, 3, 64, 64)))
    batch = _images(3)
    one_by_one = np.concatenate([classify(session, batch[i : i + 1]) for i in range(3)])
    assert np.array_equal(classify(session, batch), one_by_one)


def test_classify_in_batches_stacks_and_yields_per_batch_in_order():
    session = new_session(build_model())
    images = _images(10)
    results = list(classify_in_batches(session, iter(images), batch_size=4))
    assert [len(r) for r in results] == [4, 4, 2]
    assert np.allclose(np.concatenate(results), classify(session, images), atol=1e-6)


def test_classify_in_batches_refuses_batch_size_zero():
    with pytest.raises(ValueError, match="batch_size"):
        list(classify_in_batches(new_session(build_model()), [], batch_size=0))


def test_run_pipeline_fails_bad_images_alone_and_keeps_the_order():
    session = new_session(build_model())
    images = _images(7)
    expected = classify(session, images)

    def to_tensor(index: int) -> np.ndarray:
        if index in (2, 6):
            raise ImageRefused(f"bad image {index}")
        return images[index]

    batches = list(run_pipeline(session, range(7), to_tensor, batch_size=3, workers=2))
    assert [[source for source, _ in batch] for batch in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    outcomes = [outcome for batch in batches for _, outcome in batch]
    for index, outcome in enumerate(outcomes):
        if index in (2, 6):
            assert isinstance(outcome, ImageRefused)
            assert str(outcome) == f"bad image {index}"
        else:
            assert outcome.shape == (3,)
            assert np.allclose(outcome, expected[index], atol=1e-6)


def test_run_pipeline_with_every_image_failing_never_calls_the_model():
    class NoRun:
        def run(self, *args):
            raise AssertionError("model called")

    def refuse(_):
        raise ImageRefused("no")

    batches = list(run_pipeline(NoRun(), ["a", "b"], refuse, batch_size=4))
    assert [[(s, str(o)) for s, o in batch] for batch in batches] == [[("a", "no"), ("b", "no")]]


def test_run_pipeline_of_nothing_yields_nothing():
    assert list(run_pipeline(new_session(build_model()), [], lambda s: s, batch_size=4)) == []


def test_run_pipeline_workers_raise_refusals_in_the_callers_language():
    from django.utils.translation import get_language

    seen = []

    def to_tensor(_source):
        seen.append(get_language())
        raise ImageRefused("no")

    with translation.override("ja"):
        list(run_pipeline(new_session(build_model()), ["a"], to_tensor, batch_size=1))
    with translation.override("en"):
        list(run_pipeline(new_session(build_model()), ["a"], to_tensor, batch_size=1))
    assert seen == ["ja", "en"]
