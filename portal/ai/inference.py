"""Running a classification model over images in batches: the core of the portal's inference path.

- ``classify(session, batch)``: one ONNX Runtime call over a stacked batch (N, C, H, W) → (N, K)
  probabilities. Softmax rule: a softmax over the last axis is applied only when the output looks
  like logits, i.e. some row does not sum to 1 (within 1e-3) and some value lies outside 0..1.
  So a model ending in Softmax (the demo models) is passed through untouched, a model ending in
  raw scores gets its probabilities, and a model ending in per-label sigmoids (every value in
  0..1, rows not summing to 1) keeps its per-label probabilities as they are (the label is still
  the highest one).
- ``classify_in_batches(session, tensors, batch_size)``: stacks ``tensors`` (C, H, W) into batches
  of ``batch_size`` and yields one (n, K) array per batch, in order.
- ``run_pipeline(session, sources, to_tensor, batch_size, *, workers=None)`` — what the job runner
  (``portal.ai.services.inference_job_run``) calls::

      def run_pipeline(session, sources: Iterable[T], to_tensor: Callable[[T], np.ndarray],
                       batch_size: int, *, workers: int | None = None
                       ) -> Iterator[list[tuple[T, np.ndarray | Exception]]]

  For each batch of ``batch_size`` sources (in order) it yields a list of ``(source, outcome)``
  pairs, one per source in the same order: the outcome is the probabilities (K,) float32 of that
  image, or the exception ``to_tensor(source)`` raised for it (``ImageRefused`` for bad images,
  or whatever reading the bytes raised) — a failing image fails alone, the others of its batch are
  still classified. ``to_tensor`` is typically ``lambda item: preprocess.to_tensor(read(item),
  spec)``: it should read the bytes and preprocess, both of which then run in worker threads.
  Exceptions from ONNX Runtime itself (a broken model) are not caught: they end the run. The
  worker threads run ``to_tensor`` in the caller's active language, so refusals read the same as
  if raised in the calling thread.

  Why threads: decoding and resizing (Pillow, pydicom, numpy) release the GIL, so while ONNX
  Runtime classifies batch *i*, a small thread pool (``workers``, default: the CPU count, at most 4)
  already prepares batch *i + 1*. At most two batches are in flight, so memory stays bounded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any, TypeVar

import numpy as np
from django.utils import translation

T = TypeVar("T")
Outcome = np.ndarray | Exception

SUM_TOLERANCE = 1e-3


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """``scores`` (N, K) as probabilities, by the rule in the module docstring."""
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim == 1:
        scores = scores[None, :]
    if scores.ndim > 2:  # e.g. (N, K, 1, 1) from a convolutional head
        scores = scores.reshape(scores.shape[0], -1)
    in_range = bool(np.all((scores >= 0.0) & (scores <= 1.0)))
    sums_to_one = bool(np.all(np.abs(scores.sum(axis=1) - 1.0) <= SUM_TOLERANCE))
    if in_range or sums_to_one:
        return scores
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def classify(session: Any, batch: np.ndarray) -> np.ndarray:
    """(N, K) probabilities of the images ``batch`` (N, C, H, W) float32, in one ONNX Runtime call."""
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if inputs[0].shape and inputs[0].shape[0] == 1 and len(batch) > 1:
        # A model exported with a fixed batch of 1 runs one image per call.
        return np.concatenate([classify(session, batch[i : i + 1]) for i in range(len(batch))])
    (scores,) = session.run([outputs[0].name], {inputs[0].name: batch})
    return as_probabilities(scores)


def classify_in_batches(session: Any, tensors: Iterable[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """For each ``batch_size`` tensors (C, H, W) of ``tensors``, their (n, K) probabilities."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    iterator = iter(tensors)
    while chunk := list(islice(iterator, batch_size)):
        yield classify(session, np.stack(chunk))


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def run_pipeline(session: Any, sources: Iterable[T], to_tensor: Callable[[T], np.ndarray], batch_size: int,
                 *, workers: int | None = None) -> Iterator[list[tuple[T, Outcome]]]:
    """Classify ``sources`` in batches, preparing the next batch while the current one runs.

    Yields, per batch, ``[(source, probabilities (K,) or the exception to_tensor raised), ...]``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    iterator = iter(sources)
    parts_per_batch = workers or default_workers()
    # Django's active language is per thread: the workers write refusals in the caller's language.
    language = translation.get_language()

    def prepare_part(part: list[T]) -> list[Outcome]:
        # One task per worker and batch, not per image: a cheap model must not pay for the pool.
        outcomes: list[Outcome] = []
        with translation.override(language):
            for source in part:
                try:
                    outcomes.append(to_tensor(source))
                except Exception as exc:  # per image: its failure is its result
                    outcomes.append(exc)
        return outcomes

    def prepare(pool: ThreadPoolExecutor) -> tuple[list[T], list[Future[list[Outcome]]]] | None:
        chunk = list(islice(iterator, batch_size))
        if not chunk:
            return None
        size = -(-len(chunk) // parts_per_batch)
        return chunk, [pool.submit(prepare_part, chunk[i : i + size]) for i in range(0, len(chunk), size)]

    with ThreadPoolExecutor(max_workers=parts_per_batch, thread_name_prefix="ai-preprocess") as pool:
        pending = prepare(pool)
        while pending is not None:
            chunk, futures = pending
            outcomes: list[Outcome] = [outcome for future in futures for outcome in future.result()]
            following = prepare(pool)  # decoding of the next batch overlaps the ONNX Runtime call
            good = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, np.ndarray)]
            if good:
                probabilities = classify(session, np.stack([outcomes[i] for i in good]))
                for row, i in zip(probabilities, good, strict=True):
                    outcomes[i] = row
            yield list(zip(chunk, outcomes, strict=True))
            pending = following
