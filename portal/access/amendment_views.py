"""Extension and change-of-users pages (延長・変更申請): the applicant's form on a grant, the
request's page, and the steward's decision. Each view parses a form and calls one service of
``portal.access.services.amendments``; people who may not see the grant or request get 404, those
who see it without the right to act get 403."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.access.amendment_forms import AmendmentForm, DecisionForm
from portal.access.amendment_prefill import amendment_changes, extension_prefill
from portal.access.amendment_selectors import amendments_visible_to
from portal.access.models import Grant, GrantAmendment
from portal.access.request_forms import add_service_errors
from portal.access.selectors import grant_role
from portal.access.services.amendments import (
    grant_amendment_decide,
    grant_amendment_request,
    last_day_of,
    may_decide,
    may_request,
)


@login_required
def amendment_create(request: HttpRequest, pk: int) -> HttpResponse:
    grant = get_object_or_404(
        Grant.objects.select_related("society", "access_request"), pk=pk,
    )
    if not may_request(request.user, grant):
        if grant_role(request.user, grant):
            raise PermissionDenied
        raise Http404
    # ?extend=1 (the link of a lapse warning): the usual extension, same users and purpose.
    prefill = extension_prefill(grant) if request.GET.get("extend") else None
    initial = {"new_expires_on": prefill.new_expires_on, "reason": prefill.reason} if prefill else None
    form = AmendmentForm(request.POST or None, grant=grant, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            amendment = grant_amendment_request(
                grant=grant, by=request.user,  # type: ignore[arg-type]
                new_expires_on=form.cleaned_data["new_expires_on"],
                users_to_add=form.cleaned_data["users_to_add"],
                users_to_remove=list(form.cleaned_data["users_to_remove"]),
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            if amendment.status == GrantAmendment.Status.RECORDED:
                messages.success(request, _("The users were removed from the grant."))
            else:
                messages.success(request, _("Your request was sent to the society for its decision."))
            return redirect("access:amendment_detail", amendment.pk)
    return render(request, "access/amendment_create.html", {
        "grant": grant, "form": form, "last_day": last_day_of(grant), "prefill": prefill,
    })


def _visible(request: HttpRequest, pk: int) -> GrantAmendment:
    return get_object_or_404(amendments_visible_to(request.user), pk=pk)


@login_required
def amendment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    amendment = _visible(request, pk)
    deciding = amendment.status == GrantAmendment.Status.SUBMITTED and may_decide(request.user, amendment.grant)
    return render(request, "access/amendment_detail.html", {
        "amendment": amendment, "grant": amendment.grant, "changes": amendment_changes(amendment),
        "decision_form": DecisionForm() if deciding else None,
    })


@login_required
@require_POST
def amendment_decide(request: HttpRequest, pk: int) -> HttpResponse:
    amendment = _visible(request, pk)
    if not may_decide(request.user, amendment.grant):
        raise PermissionDenied
    form = DecisionForm(request.POST)
    if form.is_valid():
        try:
            grant_amendment_decide(
                amendment=amendment, approve=form.cleaned_data["decision"] == "approve",
                reasons=form.cleaned_data["reasons"], by=request.user,  # type: ignore[arg-type]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The decision was recorded and the applicant told."))
            return redirect("access:amendment_detail", amendment.pk)
    return render(request, "access/amendment_detail.html", {
        "amendment": amendment, "grant": amendment.grant, "changes": amendment_changes(amendment),
        "decision_form": form,
    }, status=400)
