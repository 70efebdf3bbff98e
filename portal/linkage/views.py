"""The matching tool (名寄せ) and the operator's linkage approvals.

Society admins and the platform operator may open the tool; results appear only under an active
linkage approval covering every chosen society (``services.linkage_query`` checks and audits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import pgettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.accounts.roles import Role, has_role
from portal.core.vocabulary import Modality
from portal.lib.csvexport import csv_response
from portal.linkage import services
from portal.linkage.forms import ApprovalGrantForm, LinkageSearchForm
from portal.linkage.models import LinkageApproval
from portal.linkage.selectors import Match, encode_cursor
from portal.societies.models import Society

SEARCH_FIELDS = ("date_from", "date_to", "societies", "tolerance_days")
# The file is for Japanese spreadsheets, whatever the page's language: written under Japanese.
CSV_HEADERS = (
    pgettext_lazy("linkage export", "Pseudonymous subject ID"),
    pgettext_lazy("linkage export", "Exam date (reference)"),
    _lazy("Society"),
    _lazy("Modality"),
    _lazy("Study date"),
    _lazy("number of images"),
)
MODALITY_LABELS = dict(Modality.choices)


def _guard(check: Callable[[Any], bool]) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        @login_required
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not check(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


linkage_user_required = _guard(services.may_use_linkage)
operator_required = _guard(lambda user: has_role(user, Role.OPERATOR))


def _search_form(request: HttpRequest) -> tuple[LinkageSearchForm, list[Society]]:
    offered = list(services.approved_societies(request.user))
    data = request.GET if any(name in request.GET for name in SEARCH_FIELDS) else None
    return LinkageSearchForm(data, offered=offered), offered


def _table_rows(matches: Iterable[Match], societies: list[Society]) -> list[dict[str, Any]]:
    rows = []
    for match in matches:
        cells = []
        for society in societies:
            cells.append(
                [
                    {
                        "modality": MODALITY_LABELS.get(holding.modality, holding.modality),
                        "study_date": holding.study_date,
                        "image_count": holding.image_count,
                    }
                    for holding in match.holdings_of(society.pk)
                ]
            )
        rows.append({"match": match, "cells": cells})
    return rows


@require_GET
@never_cache
@linkage_user_required
def search(request: HttpRequest) -> HttpResponse:
    form, offered = _search_form(request)
    context: dict[str, Any] = {"form": form, "offered": offered, "rows": None, "refusal": ""}
    if form.is_bound and form.is_valid():
        query = form.query()
        try:
            page = services.linkage_query(
                user=request.user, after=form.cleaned_data["after"], channel="page", **query
            )
        except services.LinkageNotApproved as refusal:
            context["refusal"] = str(refusal.args[0]) if refusal.args else ""
        else:
            items = form.query_string_items()
            context.update(
                chosen=query["societies"],
                rows=_table_rows(page.matches, query["societies"]),
                export_query=urlencode(items),
                next_query=urlencode([*items, ("after", encode_cursor(page.next_after))])
                if page.next_after
                else "",
                continued=form.cleaned_data["after"] is not None,
                first_query=urlencode(items),
            )
    return render(request, "linkage/search.html", context)


def _csv_rows(matches: Iterator[Match], societies: list[Society]) -> Iterator[list[Any]]:
    names = {society.pk: society.name_ja for society in societies}
    # The file is in Japanese whatever the page's language: its headers and modality names.
    with translation.override("ja"):
        labels = {value: str(label) for value, label in Modality.choices}
        headers = [str(header) for header in CSV_HEADERS]
    yield headers
    for match in matches:
        for holding in match.holdings:
            yield [
                match.subject_pseudonym,
                match.exam_date.isoformat(),
                names.get(holding.society_id, ""),
                labels.get(holding.modality, holding.modality),
                holding.study_date.isoformat(),
                holding.image_count,
            ]


@require_GET
@never_cache
@linkage_user_required
def export(request: HttpRequest) -> HttpResponse:
    form, offered = _search_form(request)
    if not (form.is_bound and form.is_valid()):
        context = {"form": form, "offered": offered, "rows": None, "refusal": ""}
        return render(request, "linkage/search.html", context, status=400)
    query = form.query()
    # LinkageNotApproved is a PermissionDenied: 403, after the refusal has been audited.
    matches = services.linkage_export(user=request.user, **query)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    return csv_response(_csv_rows(matches, query["societies"]), filename=f"linkage-{stamp}.csv")


# --- The operator's approvals ----------------------------------------------------------------------


@require_GET
@never_cache
@operator_required
def approval_list(request: HttpRequest) -> HttpResponse:
    approvals = (
        LinkageApproval.objects.select_related("user", "granted_by", "revoked_by")
        .prefetch_related("societies")
        .order_by("-granted_at", "-pk")
    )
    today = timezone.localdate()
    return render(request, "linkage/approval_list.html", {"approvals": approvals, "today": today})


@require_http_methods(["GET", "POST"])
@never_cache
@operator_required
def approval_grant(request: HttpRequest) -> HttpResponse:
    form = ApprovalGrantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.linkage_approval_grant(
                user=data["user_email"], societies=data["societies"], purpose=data["purpose"],
                valid_until=data["valid_until"], by=request.user,
            )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for name, errors in error.error_dict.items():
                    field = {"user": "user_email"}.get(name, name)
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, error.messages)
        else:
            messages.success(request, _("The linkage approval has been granted."))
            return redirect("linkage:approval_list")
    return render(request, "linkage/approval_form.html", {"form": form})


@require_POST
@operator_required
def approval_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    approval = get_object_or_404(LinkageApproval, pk=pk)
    try:
        services.linkage_approval_revoke(approval=approval, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The linkage approval has been revoked."))
    return redirect("linkage:approval_list")
