"""The model card of a version, checked by a table of small rules run in order.

Each rule looks at the card as given and yields ``(field, message)`` for what is wrong; the labels
and metrics rules also fill in the cleaned values. Every rule runs, so the uploader sees every
problem at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.ai.services._common import METRIC_KEYS

Problem = tuple[str, str]


@dataclass
class Card:
    values: dict[str, Any]
    labels: list[dict[str, str]] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)


CardRule = Callable[[Card], Iterator[Problem]]


def _labels(card: Card) -> Iterator[Problem]:
    labels = card.values["labels"]
    failed = False
    if not isinstance(labels, (list, tuple)):
        failed = True
        yield "labels", _("Give the labels as a list.")
        labels = []
    for label in labels:
        if not isinstance(label, dict) or not str(label.get("code", "")).strip():
            failed = True
            yield "labels", _("Each label needs a code.")
            continue
        card.labels.append({
            "code": str(label["code"]).strip(), "ja": str(label.get("ja") or "").strip(),
            "en": str(label.get("en") or "").strip(),
        })
    codes = [label["code"] for label in card.labels]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        failed = True
        yield "labels", _("Label codes must be unique: %(codes)s.") % {"codes": ", ".join(duplicates)}
    if len(card.labels) < 2 and not failed:
        yield "labels", _("A classifier needs at least two labels.")


def _per_channel(name: str) -> CardRule:
    """One number per channel; a standard deviation must also be positive."""

    def rule(card: Card) -> Iterator[Problem]:
        channels = card.values["input_channels"]
        try:
            numbers = [float(v) for v in card.values[name]]
        except (TypeError, ValueError):
            yield name, _("Give one number per channel.")
            return
        if channels in (1, 3) and len(numbers) != channels:
            yield name, _("Give one number per channel (%(count)d).") % {"count": channels}
        if name == "input_std" and any(n <= 0 for n in numbers):
            yield name, _("Each standard deviation must be greater than 0.")

    return rule


def _metric(value: Any) -> float | None:
    """The metric as a number; -1 (out of range) when it is not one; None when not given."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return -1.0


def _metrics(card: Card) -> Iterator[Problem]:
    given = card.values["metrics"] or {}
    unknown = sorted(set(given) - set(METRIC_KEYS))
    if unknown:
        yield "metrics", _("Unknown metrics: %(names)s.") % {"names": ", ".join(unknown)}
    for key in METRIC_KEYS:
        number = _metric(given.get(key))
        if number is not None and not 0.0 <= number <= 1.0:
            yield "metrics", _("%(name)s must be between 0 and 1.") % {"name": key}
        card.metrics[key] = number


def _is_count(value: Any, low: int, high: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value and (high is None or value <= high)


def _check(name: str, ok: Callable[[Any], bool], message: Any) -> CardRule:
    """A rule of one field: ``message`` unless ``ok(value)``."""

    def rule(card: Card) -> Iterator[Problem]:
        if not ok(card.values[name]):
            yield name, str(message)

    return rule


_SIZE = gettext_lazy("Enter a size between 1 and 8192 pixels.")
_REQUIRED = gettext_lazy("This field is required.")


def _filled(value: Any) -> bool:
    return bool((value or "").strip())


CARD_RULES: tuple[CardRule, ...] = (
    _labels,
    _check("input_width", lambda v: _is_count(v, 1, 8192), _SIZE),
    _check("input_height", lambda v: _is_count(v, 1, 8192), _SIZE),
    _check("input_channels", lambda v: v in (1, 3), gettext_lazy("The input has 1 (greyscale) or 3 (RGB) channels.")),
    _per_channel("input_mean"),
    _per_channel("input_std"),
    _check("intended_use_ja", _filled, _REQUIRED),
    _check("limitations_ja", _filled, _REQUIRED),
    _check("training_data_ja", _filled, _REQUIRED),
    _metrics,
    _check("evaluation_set_size", lambda v: _is_count(v, 1),
           gettext_lazy("Enter the number of images the metrics were measured on.")),
)


def card_validate(**values: Any) -> tuple[list[dict[str, str]], dict[str, float | None], dict[str, list[str]]]:
    """(clean labels, clean metrics, errors by field) of a model card."""
    card = Card(values=values)
    errors: dict[str, list[str]] = {}
    for rule in CARD_RULES:
        for name, message in rule(card):
            errors.setdefault(name, []).append(message)
    return card.labels, card.metrics, errors
