"""The auditor's pages: the filtered log, page by page, and its CSV export."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.audit.forms import PORTAL_ZONE, AuditEventFilterForm
from portal.audit.models import EVENT_FIELDS, AuditEvent
from portal.audit.selectors import (
    audit_action_choices,
    audit_event_export_rows,
    audit_event_page,
    audit_log_readable_by,
)
from portal.audit.services import audit_record
from portal.lib.csvexport import csv_response

EXPORT_COLUMNS = EVENT_FIELDS


def audit_reader_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in (else to the sign-in page) and an auditor or operator (else 403)."""

    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not audit_log_readable_by(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def details_json(details: Any) -> str:
    # Sorted keys: PostgreSQL (jsonb) and SQLite hand keys back in different orders.
    return json.dumps(
        details, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"), sort_keys=True
    )


@require_GET
@never_cache
@audit_reader_required
def event_list(request: HttpRequest) -> HttpResponse:
    form = AuditEventFilterForm(request.GET)
    page = None
    query: dict[str, str] = {}
    if form.is_valid():
        page = audit_event_page(
            filters=form.filters(),
            before=form.cleaned_data["before"],
            after=form.cleaned_data["after"],
        )
        query = form.filter_query()
    context = {
        "form": form,
        "page": page,
        "rows": [(event, details_json(event.details)) for event in page.events] if page else [],
        "actions": audit_action_choices(),
        "next_query": _page_query(query, before=page.next_before) if page else "",
        "previous_query": _page_query(query, after=page.previous_after) if page else "",
    }
    return render(request, "audit/event_list.html", context)


def _page_query(query: dict[str, str], **cursor: int | None) -> str:
    ((name, value),) = cursor.items()
    if value is None:
        return ""
    return urlencode({**query, name: value})


def _export_rows(events: Iterable[AuditEvent]) -> Iterator[list[Any]]:
    # Actor e-mails of failed sign-ins and target names come from outside: the CSV writer
    # neutralises any that a spreadsheet would take for a formula.
    yield list(EXPORT_COLUMNS)
    for event in events:
        yield [
            event.id,
            timezone.localtime(event.created_at, PORTAL_ZONE).isoformat(),
            event.actor_id if event.actor_id is not None else "",
            event.actor_email,
            event.ip or "",
            event.action,
            event.target_type,
            event.target_id,
            event.target_repr,
            details_json(event.details),
            event.request_id,
            event.prev_hash,
            event.hash,
        ]


@require_GET
@never_cache
@audit_reader_required
def event_export(request: HttpRequest) -> HttpResponse:
    form = AuditEventFilterForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "page": None, "actions": audit_action_choices()}
        return render(request, "audit/event_list.html", context, status=400)
    filters = form.filters()
    # The export's own event marks where it ends: every event before it had committed when it was
    # written (events are numbered under the chain lock), so the file holds exactly those.
    export_event = audit_record(
        action="audit.exported", actor=request.user, details={"filters": filters.as_details()}
    )
    rows = audit_event_export_rows(filters=filters, up_to_id=export_event.id)
    stamp = timezone.localtime(export_event.created_at, PORTAL_ZONE).strftime("%Y%m%d-%H%M%S")
    return csv_response(_export_rows(rows), filename=f"audit-events-{stamp}.csv")
