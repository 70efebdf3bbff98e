"""Human-readable reference numbers (DAR-2026-00001, G-2026-00001, OPT-jsp-2026-0001, …).

The next number is one more than the highest with the same prefix; the column's unique constraint
settles a race: the writer that loses gets an IntegrityError and takes the next number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, models, transaction

M = TypeVar("M", bound=models.Model)
ATTEMPTS = 5


def next_reference(model: type[models.Model], prefix: str, *, digits: int, field: str = "reference") -> str:
    pattern = re.compile(rf"{re.escape(prefix)}(\d+)")
    references = model._default_manager.filter(**{f"{field}__startswith": prefix}).values_list(field, flat=True)
    numbers = [int(m.group(1)) for reference in references if (m := pattern.fullmatch(reference or ""))]
    return f"{prefix}{max(numbers, default=0) + 1:0{digits}d}"


def create_numbered(model: type[M], prefix: str, create: Callable[[str], M], *, digits: int) -> M:
    """Run ``create(reference)`` in a transaction with the next free reference; two writers at once:
    the one that loses the unique constraint retries with the next number."""
    for attempt in range(ATTEMPTS):
        reference = next_reference(model, prefix, digits=digits)
        try:
            with transaction.atomic():
                return create(reference)
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
