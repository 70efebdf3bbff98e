"""Helpers every ethics page shares: call one service, show a refusal, redirect or re-render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from portal.ethics.forms import add_service_errors
from portal.ethics.items import item_heading, items_for
from portal.ethics.models import (
    ItemComment,
    Protocol,
    ProtocolItem,
    ProtocolStatus,
    ProtocolVersion,
)
from portal.ethics.permissions import REFUSALS

S = ProtocolStatus


def _title_of_latest_version() -> Subquery:
    return Subquery(
        ProtocolItem.objects.filter(version__protocol=OuterRef("pk"), key="title")
        .order_by("-version__number").values("body")[:1]
    )


def _attempt(request: HttpRequest, form: forms.Form, action: Callable[[], object], done: str) -> bool:
    """Call one service. Refused: say why (nothing changed). Bad input: errors into the form."""
    try:
        action()
    except REFUSALS as refusal:
        messages.error(request, str(refusal))
        return False
    except ValidationError as error:
        add_service_errors(form, error)
        return False
    messages.success(request, done)
    return True


def _finish(form: forms.Form, done: bool, url: str, rerender: Callable[[], HttpResponse]) -> HttpResponse:
    if done or not form.errors:
        return redirect(url)
    return rerender()


def _item_rows(version: ProtocolVersion) -> list[tuple[Any, ProtocolItem | None]]:
    items = {item.key: item for item in version.items.all()}
    return [(spec, items.get(spec.key)) for spec in items_for(version.protocol.kind)]


def _applicant_comments(protocol: Protocol) -> list[tuple[ItemComment, str]]:
    """The committee's comments meant for the applicant, each naming its item as the committee does
    ("⑤ ..."), never by its stored key."""
    return [
        (comment, item_heading(comment.item_key) if comment.item_key else "")
        for comment in ItemComment.objects.filter(review__version__protocol=protocol, for_applicant=True)
        .select_related("review__version").order_by("created_at", "id")
    ]
