"""Check constraints built from a model's own vocabulary, so the database and the code never drift.

A model with a ``TextChoices`` status declares, in its ``Meta.constraints``::

    status_in_choices(GrantStatus, name="grant_status_valid"),
    when_status([GrantAmendmentStatus.APPROVED], Q(decided_at__isnull=False), name="..._has_decision"),
    paired("decided_at", "decided_by", name="society_review_decision_paired"),

The choices live at module level (``GrantStatus``, aliased as ``Grant.Status``) because ``Meta`` cannot
see names of the class it sits in. Adding a choice changes the first constraint, so
``makemigrations --check`` asks for the migration.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.db.models import Q


def status_in_choices(
    choices: type[models.TextChoices], *, name: str, field: str = "status"
) -> models.CheckConstraint:
    """The column holds one of ``choices``: a raw UPDATE or a typo in a data migration is refused."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": [str(v) for v in choices.values]}), name=name)


def when_status(states: Iterable[str], then: Q, *, name: str, field: str = "status") -> models.CheckConstraint:
    """In any of ``states``, ``then`` holds (decided → decided_at and decided_by; withdrawn → a reason)."""
    return models.CheckConstraint(condition=~Q(**{f"{field}__in": sorted(str(s) for s in states)}) | then, name=name)


def paired(at: str, by: str, *, name: str) -> models.CheckConstraint:
    """When and by whom of one act: both recorded or neither."""
    return models.CheckConstraint(
        condition=Q(**{f"{at}__isnull": True, f"{by}__isnull": True})
        | Q(**{f"{at}__isnull": False, f"{by}__isnull": False}),
        name=name,
    )
