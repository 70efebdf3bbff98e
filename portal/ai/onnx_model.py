"""ONNX files: what they take and give, whether that matches the model card, and loaded sessions.

- ``inspect_onnx(data)``: loads the bytes in ONNX Runtime (CPU) and returns the ``OnnxFacts`` of
  its single input and single output; ``ModelRefused`` for anything that is not an ONNX model or
  that the portal cannot run as an image classifier: more than one input or output, an input that
  is not floating point, an input that is not (N, C, H, W).
- ``check_against_card(facts, width=, height=, channels=, label_count=)``: ``ModelRefused`` naming
  both sides when the fixed dimensions disagree with the card; a dynamic dimension (None) accepts
  the card's value.
- ``session_for(sha256, load)``: an ONNX Runtime session of the file whose SHA-256 is ``sha256``,
  from a small LRU cache (``CACHE_SIZE``) so that a worker running several jobs on the same version
  loads it once; ``load()`` is called on a miss and its bytes must hash to ``sha256``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

CACHE_SIZE = 4
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")
# The portal feeds images as float32; other float widths would need a cast the card cannot express.
FLOAT_TYPES = ("tensor(float)",)


class ModelRefused(Exception):
    """A model file the portal will not take or run; ``str(exc)`` is the translated reason."""


@dataclass(frozen=True)
class OnnxFacts:
    input_name: str
    input_shape: list[int | None]
    input_type: str
    output_name: str
    output_shape: list[int | None]
    opset: int | None
    producer: str


def _dims(shape: Any) -> list[int | None]:
    return [dim if isinstance(dim, int) and dim > 0 else None for dim in (shape or [])]


def _shape_text(shape: list[int | None]) -> str:
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def new_session(data: bytes) -> Any:
    """An ONNX Runtime session on the CPU for the model bytes ``data``."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: warnings about unused initialisers are noise here
    return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _ort_reason(exc: Exception) -> str:
    """ONNX Runtime's message without its "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : " prefix."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return _ORT_PREFIX.sub("", first)[:300]


def inspect_onnx(data: bytes) -> OnnxFacts:
    """The facts of the ONNX model ``data``; ``ModelRefused`` when the portal cannot run it."""
    try:
        session = new_session(data)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelRefused(_("This file is not an ONNX model: %(reason)s") % {"reason": _ort_reason(exc)}) from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ModelRefused(
            _("The model has %(count)d inputs; the portal runs models with exactly one image input.")
            % {"count": len(inputs)}
        )
    if len(outputs) != 1:
        raise ModelRefused(
            _("The model has %(count)d outputs; the portal runs models with exactly one output (the label probabilities).")
            % {"count": len(outputs)}
        )
    (model_input,), (model_output,) = inputs, outputs
    input_shape = _dims(model_input.shape)
    if model_input.type not in FLOAT_TYPES:
        raise ModelRefused(
            _("The model's input %(name)s is of type %(type)s; the portal feeds images as floating-point tensors (tensor(float)).")
            % {"name": model_input.name, "type": model_input.type}
        )
    if len(input_shape) != 4:
        raise ModelRefused(
            _("The model's input %(name)s has shape %(shape)s; the portal needs four dimensions (N, C, H, W): images, channels, height, width.")
            % {"name": model_input.name, "shape": _shape_text(input_shape)}
        )
    metadata = session.get_modelmeta()
    return OnnxFacts(
        input_name=model_input.name, input_shape=input_shape, input_type=model_input.type,
        output_name=model_output.name, output_shape=_dims(model_output.shape),
        opset=_opset(data), producer=metadata.producer_name or "",
    )


def _opset(data: bytes) -> int | None:
    """The default-domain opset the file declares (read from the protobuf, not the session)."""
    try:
        import onnx

        model = onnx.load_model_from_string(data)
    except Exception:  # already loaded by onnxruntime; the opset is informative only
        return None
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


def check_against_card(facts: OnnxFacts, *, width: int, height: int, channels: int, label_count: int) -> None:
    """``ModelRefused`` unless the model's input and output agree with the card."""
    batch, model_channels, model_height, model_width = facts.input_shape
    if batch not in (None, 1):
        raise ModelRefused(
            _("The model's batch dimension is fixed at %(batch)d; it must be dynamic or 1.") % {"batch": batch}
        )
    mismatches = []
    for model_value, card_value, what in (
        (model_channels, channels, pgettext("model input dimension", "channels")),
        (model_height, height, pgettext("model input dimension", "height")),
        (model_width, width, pgettext("model input dimension", "width")),
    ):
        if model_value is not None and model_value != card_value:
            mismatches.append(
                _("%(what)s: the model takes %(model)d, the card says %(card)d")
                % {"what": what, "model": model_value, "card": card_value}
            )
    if mismatches:
        raise ModelRefused(
            _("The model's input %(shape)s disagrees with the card (%(details)s).")
            % {"shape": _shape_text(facts.input_shape), "details": "; ".join(mismatches)}
        )
    outputs = facts.output_shape
    if not outputs:
        return  # shape unknown to ONNX Runtime: checked when the model runs
    classes = outputs[-1]
    if len(outputs) > 2 and all(dim in (None, 1) for dim in outputs[2:]):
        classes = outputs[1]  # (N, K, 1, 1), as a convolutional head gives
    if classes is not None and classes != label_count:
        raise ModelRefused(
            _("The model gives %(model)d scores per image (output %(shape)s); the card names %(card)d labels.")
            % {"model": classes, "shape": _shape_text(outputs), "card": label_count}
        )


_cache: OrderedDict[str, Any] = OrderedDict()
_cache_lock = threading.Lock()


def session_for(sha256: str, load: Callable[[], bytes]) -> Any:
    """The ONNX Runtime session of the model whose file has SHA-256 ``sha256`` (cached, LRU)."""
    with _cache_lock:
        session = _cache.get(sha256)
        if session is not None:
            _cache.move_to_end(sha256)
            return session
    data = load()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ModelRefused(
            _("The stored model file does not match its checksum (expected %(expected)s, found %(actual)s).")
            % {"expected": sha256, "actual": actual}
        )
    try:
        session = new_session(data)
    except Exception as exc:
        raise ModelRefused(_("This file is not an ONNX model: %(reason)s") % {"reason": _ort_reason(exc)}) from None
    with _cache_lock:
        _cache[sha256] = session
        _cache.move_to_end(sha256)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return session


def clear_sessions() -> None:
    """Forget every cached session (tests; a worker never needs to)."""
    with _cache_lock:
        _cache.clear()
