"""The applicant's pages: list, create, edit, attachments, submit, and actions on the detail page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.ethics import services
from portal.ethics.forms import (
    ORGANIZATION_PREFIX,
    AmendmentForm,
    AttachmentForm,
    CompletionReportForm,
    ConditionsAnswerForm,
    DiscontinuationReportForm,
    NoncomplianceReportForm,
    PeriodicReportForm,
    ProtocolCreateForm,
    ProtocolItemsForm,
    ProtocolVersionForm,
    RevisionForm,
    organization_formset,
    organization_payload,
)
from portal.ethics.models import (
    Protocol,
    ProtocolVersion,
)
from portal.ethics.permissions import REFUSALS, Standing, _standing
from portal.ethics.views.common import (
    _applicant_comments,
    _attempt,
    _finish,
    _title_of_latest_version,
)
from portal.ethics.views.protocol import _detail_action, _render_detail

# --- Applicant: list, create, edit, attachments, submit ------------------------------------------


@never_cache
@login_required
def protocol_list(request: HttpRequest) -> HttpResponse:
    protocols = (
        Protocol.objects.filter(principal_investigator=request.user)
        .select_related("committee")
        .annotate(title=_title_of_latest_version())
        .order_by("-id")
    )
    return render(request, "ethics/protocol_list.html", {"protocols": protocols})


@never_cache
@login_required
def protocol_create(request: HttpRequest) -> HttpResponse:
    form = ProtocolCreateForm(request.POST or None, user=request.user)  # type: ignore[arg-type]
    if request.method == "POST" and form.is_valid():
        created: list[Protocol] = []
        done = _attempt(
            request, form,
            lambda: created.append(services.protocol_create(by=request.user, **form.cleaned_data)),  # type: ignore[arg-type]
            _("The draft protocol was created."),
        )
        if done:
            return redirect("ethics:protocol_edit", pk=created[0].pk)
    return render(request, "ethics/protocol_create.html", {"form": form})


def _render_edit(
    request: HttpRequest, standing: Standing, *, version_form: forms.Form | None = None,
    items_form: forms.Form | None = None, attachment_form: forms.Form | None = None,
    missing: list[str] | None = None, organization: Any = None,
) -> HttpResponse:
    version = services.latest_version(standing.protocol)
    context = {
        "protocol": standing.protocol,
        "version": version,
        "version_form": version_form or ProtocolVersionForm(instance=version),
        "items_form": items_form or ProtocolItemsForm(version=version),
        "organization_formset": organization or organization_formset(version),
        "attachment_form": attachment_form or AttachmentForm(),
        "attachments": version.attachments.all(),
        "missing": missing,
        # Revising after a deferral or a return: what the committee said, beside the items.
        "comments": _applicant_comments(standing.protocol),
    }
    return render(request, "ethics/protocol_edit.html", context)


def _editable_draft(request: HttpRequest, pk: int) -> Standing | HttpResponse:
    standing = _standing(request, pk, lambda s: s.is_applicant)
    if services.latest_version(standing.protocol).is_frozen:
        messages.error(request, _("This version was submitted and can no longer change; start an amendment."))
        return redirect("ethics:protocol_detail", pk=pk)
    return standing


@never_cache
@login_required
def protocol_edit(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _editable_draft(request, pk)
    if isinstance(standing, HttpResponse):
        return standing
    if request.method != "POST":
        return _render_edit(request, standing)
    version = services.latest_version(standing.protocol)
    version_form = ProtocolVersionForm(request.POST, instance=ProtocolVersion.objects.get(pk=version.pk))
    items_form = ProtocolItemsForm(request.POST, version=version)
    # Item ② rows; a post without the formset (an older page) leaves the rows as they are.
    organization = organization_formset(version, request.POST) if f"{ORGANIZATION_PREFIX}-TOTAL_FORMS" in request.POST else None
    if version_form.is_valid() and items_form.is_valid() and (organization is None or organization.is_valid()):
        done = _attempt(
            request, version_form,
            lambda: services.protocol_update_draft(
                protocol=standing.protocol, by=request.user,  # type: ignore[arg-type]
                fields=version_form.fields_payload(), items=items_form.items_payload(),
                organization_entries=organization_payload(organization) if organization is not None else None,
                **version_form.relations_payload(),
            ),
            _("The draft was saved."),
        )
        if done or not version_form.errors:
            return redirect("ethics:protocol_edit", pk=pk)
    return _render_edit(request, standing, version_form=version_form, items_form=items_form,
                        organization=organization)


@require_POST
@login_required
def attachment_upload(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _editable_draft(request, pk)
    if isinstance(standing, HttpResponse):
        return standing
    form = AttachmentForm(request.POST, request.FILES)
    done = form.is_valid() and _attempt(
        request, form,
        lambda: services.attachment_add(
            protocol=standing.protocol, kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"],
            by=request.user,  # type: ignore[arg-type]
        ),
        _("The document was attached."),
    )
    return _finish(form, done, reverse("ethics:protocol_edit", args=[pk]),
                   lambda: _render_edit(request, standing, attachment_form=form))


@require_POST
@login_required
def protocol_submit(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk, lambda s: s.is_applicant)
    protocol = standing.protocol
    try:
        services.draft_submit(protocol=protocol, by=request.user)  # type: ignore[arg-type]
    except REFUSALS as refusal:
        messages.error(request, str(refusal))
    except ValidationError as missing:
        messages.error(request, _("The protocol cannot be submitted yet; complete the items listed below."))
        return _render_edit(request, standing, missing=missing.messages)
    else:
        messages.success(request, _("The protocol was submitted to the committee."))
    return redirect("ethics:protocol_detail", pk=pk)


# --- Applicant's actions on the detail page ------------------------------------------------------


@require_POST
@login_required
def conditions_answer(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, ConditionsAnswerForm, "answer_form",
        lambda s, data: services.conditions_answer(protocol=s.protocol, answer=data["answer"], by=s.user),
        _("Your answer was sent to the committee."),
    )


@require_POST
@login_required
def protocol_revise(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk, lambda s: s.is_applicant)
    form = RevisionForm(request.POST)
    ok = form.is_valid() and _attempt(
        request, form,
        lambda: services.protocol_revise(protocol=standing.protocol, summary=form.cleaned_data["summary"],
                                         by=standing.user),
        _("A revised draft was opened; edit the items and submit it again."),
    )
    if ok:
        return redirect("ethics:protocol_edit", pk=pk)
    return _finish(form, ok, reverse("ethics:protocol_detail", args=[pk]),
                   lambda: _render_detail(request, standing, revise_form=form))


@require_POST
@login_required
def amendment_start(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, AmendmentForm, "amendment_form",
        lambda s, data: services.amendment_start(protocol=s.protocol, by=s.user, **data),
        _("An amendment draft was opened; edit it and submit it."),
    )


@require_POST
@login_required
def completion_report(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, CompletionReportForm, "completion_form",
        lambda s, data: services.protocol_report_completion(protocol=s.protocol, report=data["report"], by=s.user),
        _("The completion report was sent."),
    )


@require_POST
@login_required
def periodic_report(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, PeriodicReportForm, "periodic_form",
        lambda s, data: services.periodic_report_submit(protocol=s.protocol, by=s.user, **data),
        _("The periodic report was sent to the committee."),
    )


@require_POST
@login_required
def periodic_report_acknowledge(request: HttpRequest, pk: int, report_pk: int) -> HttpResponse:
    standing = _standing(request, pk, lambda s: s.is_secretariat)
    report = get_object_or_404(standing.protocol.periodic_reports, pk=report_pk)
    try:
        services.periodic_report_acknowledge(report=report, by=standing.user)
    except services.EthicsRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, _("The periodic report was acknowledged."))
    return redirect("ethics:protocol_detail", pk=pk)


@require_POST
@login_required
def protocol_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, forms.Form, "",
        lambda s, data: services.protocol_withdraw(protocol=s.protocol, by=s.user),
        _("The protocol was withdrawn."),
    )


@require_POST
@login_required
def noncompliance_report(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant or s.is_head, NoncomplianceReportForm, "noncompliance_form",
        lambda s, data: services.noncompliance_report_file(protocol=s.protocol, body=data["body"], by=s.user),
        _("The report of serious non-compliance was sent to the committee."),
    )


@require_POST
@login_required
def protocol_discontinue(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, DiscontinuationReportForm, "discontinue_form",
        lambda s, data: services.protocol_discontinue(protocol=s.protocol, report=data["report"], by=s.user),
        _("The discontinuation report was sent; the research is discontinued."),
    )
