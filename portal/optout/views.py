"""Society pages for opt-out notices and requests, and the data holders' deletion confirmations.

Each view parses a form and calls one service from ``portal.optout.services``; the services decide
who may do what. Notices and requests are fetched through the selectors of the societies the user
manages, so outsiders get 404; the deletions pages show only the user's own confirmations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from portal.datasets.models import Dataset
from portal.optout import services
from portal.optout.forms import (
    ChangeSummaryForm,
    DeletionConfirmForm,
    NoticeCreateForm,
    NoticeVersionForm,
    NotifyRequesterForm,
    ReasonForm,
    RequestRecordForm,
    add_service_errors,
)
from portal.optout.items import LEAD_PARAGRAPH, items_as_read, research_title
from portal.optout.models import (
    DeletionConfirmation,
    OptOutNotice,
    OptOutNoticeVersion,
    OptOutRequest,
)
from portal.optout.selectors import (
    affected_releases_of,
    confirmations_of,
    datasets_left_without_notice,
    notices_managed_by,
    requests_handled_by,
    societies_for_notices,
    societies_for_requests,
)
from portal.optout.workflow import OptOutRefused

REFUSALS = (OptOutRefused, PermissionDenied)
PAGE_SIZE = 50


def _attempt(request: HttpRequest, form: forms.Form | None, action: Callable[[], Any], done: str) -> bool:
    """Call one service. Refused: say why (nothing changed). Bad input: errors into the form."""
    try:
        action()
    except REFUSALS as refusal:
        messages.error(request, str(refusal) or _("You may not do this."))
        return False
    except ValidationError as error:
        if form is None:
            for message in error.messages:
                messages.error(request, message)
        else:
            add_service_errors(form, error)
        return False
    messages.success(request, done)
    return True


# --- Notices --------------------------------------------------------------------------------------


def _managed_notice(request: HttpRequest, pk: int) -> OptOutNotice:
    return get_object_or_404(notices_managed_by(request.user), pk=pk)


def _society_datasets(notice: OptOutNotice) -> Any:
    return Dataset.objects.filter(society=notice.society, protocol=notice.protocol).order_by("id")


@never_cache
@login_required
def notice_list(request: HttpRequest) -> HttpResponse:
    if not societies_for_notices(request.user).exists():
        raise PermissionDenied
    return render(request, "optout/notice_list.html", {"notices": notices_managed_by(request.user)})


@never_cache
@login_required
def notice_create(request: HttpRequest) -> HttpResponse:
    if not societies_for_notices(request.user).exists():
        raise PermissionDenied
    form = NoticeCreateForm(request.POST or None, user=request.user)  # type: ignore[arg-type]
    if request.method == "POST" and form.is_valid():
        created: list[OptOutNotice] = []
        data = form.cleaned_data
        if _attempt(
            request, form,
            lambda: created.append(services.optout_notice_create(
                society=data["society"], protocol=data["protocol"], datasets=data["datasets"],
                by=request.user, **form.version_payload(),  # type: ignore[arg-type]
            )),
            _("The draft notice was created."),
        ):
            return redirect("optout:notice_detail", pk=created[0].pk)
    return render(request, "optout/notice_form.html", {"form": form, "notice": None})


@never_cache
@login_required
def notice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The admin's view of a notice: its versions, and a preview of the draft as the public will see it."""
    notice = _managed_notice(request, pk)
    versions = list(notice.versions.prefetch_related("datasets").order_by("-number"))
    draft = next((v for v in versions if v.status == OptOutNoticeVersion.Status.DRAFT), None)
    shown = draft or next((v for v in versions if v.pk == notice.current_version_id), None)
    return render(request, "optout/notice_detail.html", {
        "notice": notice,
        "versions": versions,
        "draft": draft,
        "shown": shown,
        "items": items_as_read(shown, title=research_title(notice.protocol_id)) if shown else [],
        "problems": services.notice_problems(notice, draft) if draft else [],
        "lead": LEAD_PARAGRAPH,
        "new_version_form": ChangeSummaryForm(),
        "left_without_notice": (
            datasets_left_without_notice(notice) if notice.status == OptOutNotice.Status.PUBLISHED else []
        ),
    })


@never_cache
@login_required
def notice_edit(request: HttpRequest, pk: int) -> HttpResponse:
    notice = _managed_notice(request, pk)
    draft = notice.versions.filter(status=OptOutNoticeVersion.Status.DRAFT).first()
    if draft is None or notice.status == OptOutNotice.Status.WITHDRAWN:
        messages.error(request, _("There is no draft to edit: published versions never change; start a new version."))
        return redirect("optout:notice_detail", pk=pk)
    form = NoticeVersionForm(request.POST or None, instance=draft, datasets=_society_datasets(notice))
    if request.method == "POST" and form.is_valid() and _attempt(
        request, form,
        lambda: services.optout_notice_update_draft(
            notice=notice, by=request.user, datasets=form.cleaned_data["datasets"],  # type: ignore[arg-type]
            **form.version_payload(),
        ),
        _("The draft was saved."),
    ):
        return redirect("optout:notice_detail", pk=pk)
    return render(request, "optout/notice_form.html", {"form": form, "notice": notice, "version": draft})


@require_POST
@login_required
def notice_publish(request: HttpRequest, pk: int) -> HttpResponse:
    notice = _managed_notice(request, pk)
    _attempt(request, None, lambda: services.optout_notice_publish(notice=notice, by=request.user),  # type: ignore[arg-type]
             _("The notice was published."))
    return redirect("optout:notice_detail", pk=pk)


@require_POST
@login_required
def notice_new_version(request: HttpRequest, pk: int) -> HttpResponse:
    notice = _managed_notice(request, pk)
    form = ChangeSummaryForm(request.POST)
    if form.is_valid() and _attempt(
        request, form,
        lambda: services.optout_notice_new_version(
            notice=notice, change_summary=form.cleaned_data["change_summary"], by=request.user,  # type: ignore[arg-type]
        ),
        _("A new version was started; edit it, then publish it."),
    ):
        return redirect("optout:notice_edit", pk=pk)
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
    return redirect("optout:notice_detail", pk=pk)


@never_cache
@login_required
def notice_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    notice = _managed_notice(request, pk)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        left: list[Dataset] = []
        if _attempt(
            request, form,
            lambda: left.extend(services.optout_notice_withdraw(
                notice=notice, reason=form.cleaned_data["reason"], by=request.user,  # type: ignore[arg-type]
            )),
            _("The notice was withdrawn."),
        ):
            if left:
                messages.warning(request, _(
                    "These published datasets are now covered by no published notice: %(names)s. "
                    "Publish a notice for them, or withdraw them."
                ) % {"names": ", ".join(d.title for d in left)})
            return redirect("optout:notice_detail", pk=pk)
    left_now = datasets_left_without_notice(notice) if notice.status == OptOutNotice.Status.PUBLISHED else []
    return render(request, "optout/notice_withdraw.html", {"notice": notice, "form": form, "left": left_now})


# --- Requests -------------------------------------------------------------------------------------


@never_cache
@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    if not societies_for_requests(request.user).exists():
        raise PermissionDenied
    page = Paginator(requests_handled_by(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "optout/request_list.html", {"page": page, "requests": page.object_list})


@never_cache
@sensitive_post_parameters("patient_id", "institution_code")
@login_required
def request_create(request: HttpRequest) -> HttpResponse:
    if not societies_for_requests(request.user).exists():
        raise PermissionDenied
    form = RequestRecordForm(request.POST or None, user=request.user)  # type: ignore[arg-type]
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        created: list[OptOutRequest] = []
        if _attempt(
            request, form,
            lambda: created.append(services.optout_request_record(
                society=data["society"], institution=data["institution"],
                institution_code=data["institution_code"], patient_id=data["patient_id"],
                received_at=data["received_at"], channel=data["channel"], requester_type=data["requester_type"],
                identity_verification=data["identity_verification"], all_protocols=data["all_protocols"],
                protocols=data["protocols"], modalities=data["modalities"], extent=data["extent"],
                action_taken=data["action_taken"], reason_not_stopped=data["reason_not_stopped"],
                by=request.user,  # type: ignore[arg-type]
            )),
            _("The request was recorded."),
        ):
            return redirect("optout:request_detail", reference=created[0].reference)
    return render(request, "optout/request_form.html", {"form": form})


def _handled_request(request: HttpRequest, reference: str) -> OptOutRequest:
    return get_object_or_404(
        OptOutRequest.objects.filter(society__in=societies_for_requests(request.user)).select_related(
            "society", "institution", "handled_by"
        ),
        reference=reference,
    )


@never_cache
@login_required
def request_detail(request: HttpRequest, reference: str, notify_form: forms.Form | None = None) -> HttpResponse:
    optout_request = _handled_request(request, reference)
    confirmations = optout_request.deletions.select_related("holder", "release__dataset", "grant").order_by("id")
    pending = sum(1 for c in confirmations if c.status == DeletionConfirmation.Status.PENDING)
    return render(request, "optout/request_detail.html", {
        "optout_request": optout_request,
        "protocols": optout_request.protocols.order_by("number"),
        "releases": affected_releases_of(optout_request),
        "confirmations": confirmations,
        "pending": pending,
        "notify_form": notify_form or NotifyRequesterForm(),
        "may_close": (
            optout_request.status == OptOutRequest.Status.OPEN and not pending
            and optout_request.requester_notified_at is not None
        ),
    })


@require_POST
@login_required
def request_notify(request: HttpRequest, reference: str) -> HttpResponse:
    optout_request = _handled_request(request, reference)
    form = NotifyRequesterForm(request.POST)
    if form.is_valid() and _attempt(
        request, form,
        lambda: services.optout_request_notify_requester(
            request=optout_request, notified_at=form.cleaned_data["notified_at"], by=request.user,  # type: ignore[arg-type]
        ),
        _("The date the requester was told the result was recorded."),
    ):
        return redirect("optout:request_detail", reference=reference)
    return request_detail(request, reference, notify_form=form)


@require_POST
@login_required
def request_close(request: HttpRequest, reference: str) -> HttpResponse:
    optout_request = _handled_request(request, reference)
    _attempt(request, None, lambda: services.optout_request_close(request=optout_request, by=request.user),  # type: ignore[arg-type]
             _("The request was closed."))
    return redirect("optout:request_detail", reference=reference)


# --- Data holders ---------------------------------------------------------------------------------


@never_cache
@login_required
def deletions(request: HttpRequest) -> HttpResponse:
    confirmations = list(confirmations_of(request.user))
    return render(request, "optout/deletions.html", {
        # Oldest first: the longest-waiting deletion at the top.
        "pending": [c for c in reversed(confirmations) if c.status == DeletionConfirmation.Status.PENDING],
        "confirmed": [c for c in confirmations if c.status == DeletionConfirmation.Status.CONFIRMED],
    })


MAX_PATHS_SHOWN = 200


@never_cache
@login_required
def deletion_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    # Only the holder's own confirmations exist for them: anybody else gets 404.
    confirmation = get_object_or_404(confirmations_of(request.user), pk=pk)
    form = DeletionConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _attempt(
        request, form,
        lambda: services.optout_deletion_confirm(
            confirmation=confirmation, note=form.cleaned_data["note"], by=request.user,  # type: ignore[arg-type]
        ),
        _("Thank you: the deletion was confirmed."),
    ):
        return redirect("optout:deletions")
    files = confirmation.release.files.filter(
        subject_pseudonym=confirmation.request.subject_pseudonym
    ).order_by("path").values_list("path", flat=True)
    return render(request, "optout/deletion_confirm.html", {
        "confirmation": confirmation,
        "form": form,
        "pseudonym": confirmation.request.subject_pseudonym,
        "paths": list(files[:MAX_PATHS_SHOWN]),
        "more": max(confirmation.file_count - MAX_PATHS_SHOWN, 0),
    })
