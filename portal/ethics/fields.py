"""A form field choosing a protocol, labelled as people know it: number, title and status."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils.text import Truncator

from portal.ethics.models import Protocol, ProtocolItem

TITLE_CHARS = 40


def with_titles(protocols: QuerySet[Protocol]) -> QuerySet[Protocol]:
    """``protocols`` with ``title``: the title of the newest submitted version, in the same query."""
    titles = ProtocolItem.objects.filter(
        version__protocol=OuterRef("pk"), version__submitted_at__isnull=False, key="title",
    ).order_by("-version__number").values("body")[:1]
    return protocols.annotate(title=Subquery(titles))


def protocol_label(protocol: Protocol) -> str:
    """"ETH-2026-0003 — 胃癌の病理画像… (承認)": what an applicant recognises in a list."""
    title = Truncator(getattr(protocol, "title", "") or "").chars(TITLE_CHARS)
    parts = [str(protocol)]
    if title:
        parts.append(f"— {title}")
    parts.append(f"({protocol.get_status_display()})")
    return " ".join(parts)


class _Titled:
    """Give the field a queryset: it adds the titles (one query for the whole list) and labels each choice."""

    def _set_queryset(self, queryset: Any) -> None:
        super()._set_queryset(None if queryset is None else with_titles(queryset))  # type: ignore[misc]

    queryset = property(forms.ModelChoiceField._get_queryset, _set_queryset)

    def label_from_instance(self, obj: Protocol) -> str:
        return protocol_label(obj)


class ProtocolChoiceField(_Titled, forms.ModelChoiceField):  # type: ignore[misc]
    def __init__(self, queryset: Any = None, **kwargs: Any) -> None:
        super().__init__(Protocol.objects.none() if queryset is None else queryset, **kwargs)


class ProtocolMultipleChoiceField(_Titled, forms.ModelMultipleChoiceField):  # type: ignore[misc]
    def __init__(self, queryset: Any = None, **kwargs: Any) -> None:
        super().__init__(Protocol.objects.none() if queryset is None else queryset, **kwargs)
