"""Pages for usage reports, provision records and the society's overview of its grants.

Reports are read through ``report_visible_to`` (404 for anyone not on the grant or overseeing its
society); provision records and the overview are for the society's admins and stewards only.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.access.models import Grant, ProvisionRecord, UsageReport
from portal.access.provision import provision_csv, provision_pdf, record_values
from portal.access.report_forms import ProvisionFilterForm, StopForm, UsageReportForm
from portal.access.report_selectors import (
    days_overdue,
    is_society_member,
    provision_records_for,
    report_visible_to,
    reports_of_applicant,
    reports_to_review,
    societies_overseen_by,
    society_overview,
)
from portal.access.services import reports as services
from portal.societies.models import Society

PAGE_SIZE = 50


def _overseen_or_403(request: HttpRequest) -> list[Society]:
    societies = list(societies_overseen_by(request.user))
    if not societies:
        raise PermissionDenied(_("Only the society's admins and data stewards can see this page."))
    return societies


# --- Usage reports --------------------------------------------------------------------------------


@login_required
def report_list(request: HttpRequest) -> HttpResponse:
    reports = list(reports_of_applicant(request.user))
    today = timezone.localdate()
    for report in reports:
        report.days_overdue = days_overdue(report, today)  # type: ignore[attr-defined]
    return render(request, "access/report_list.html", {
        "reports": reports, "reminder_days": services.reminder_every_days(),
        "restrict_days": services.restrict_after_days(), "head_days": services.institution_after_days(),
    })


@login_required
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = report_visible_to(request.user, pk)
    if report is None:
        raise Http404
    grant = report.grant
    context = {
        "report": report,
        "grant": grant,
        "days_overdue": days_overdue(report),
        "may_submit": report.status == UsageReport.Status.DUE and services.is_named_user(request.user, grant),
        "may_accept": report.status == UsageReport.Status.CONFIRMED
        or (report.status == UsageReport.Status.SUBMITTED and grant.access_request_id is None),
        "confirm_as": [role for role in services.CONFIRM_AS if role in services.confirm_roles(request.user, grant)
                       and report.status == UsageReport.Status.SUBMITTED
                       and getattr(report, f"{role}_confirmed_at") is None],
        "kind_labels": services.output_kind_labels(),
        "citations": services.dataset_citations(grant),
    }
    context["may_accept"] = context["may_accept"] and services.may_review_reports(request.user, grant.society)
    return render(request, "access/report_detail.html", context)


@login_required
@require_POST
def report_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    report = report_visible_to(request.user, pk)
    if report is None:
        raise Http404
    try:
        services.usage_report_confirm(report=report, as_role=request.POST.get("as_role", ""), by=request.user)  # type: ignore[arg-type]
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("Your confirmation was recorded."))
    return redirect("access:report_detail", pk=report.pk)


@login_required
def report_stop(request: HttpRequest, grant_pk: int) -> HttpResponse:
    """A named user reports that the research stopped: the stop report is opened, then written."""
    grant = get_object_or_404(Grant.objects.filter(users=request.user), pk=grant_pk)
    form = StopForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            report = services.usage_report_stop(grant=grant, reason=form.cleaned_data["reason"], by=request.user)  # type: ignore[arg-type]
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, _("The stop report was opened. Write it now."))
            return redirect("access:report_submit", pk=report.pk)
    return render(request, "access/report_stop.html", {"grant": grant, "form": form})


@login_required
def report_submit(request: HttpRequest, pk: int) -> HttpResponse:
    report = report_visible_to(request.user, pk)
    if report is None:
        raise Http404
    if not services.is_named_user(request.user, report.grant):
        raise PermissionDenied(_("Only a named user of the grant can submit its usage reports."))
    if report.status != UsageReport.Status.DUE:
        messages.info(request, _("This report was already submitted."))
        return redirect("access:report_detail", pk=report.pk)
    form = UsageReportForm(request.POST or None, request.FILES or None, report=report)
    if request.method == "POST" and form.is_valid():
        try:
            services.usage_report_submit(report=report, by=request.user, **form.service_fields())  # type: ignore[arg-type]
        except PermissionDenied as refusal:
            messages.error(request, str(refusal))
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, _("The report was submitted."))
            return redirect("access:report_detail", pk=report.pk)
    return render(request, "access/report_submit.html", {
        "report": report, "form": form, "citations": services.dataset_citations(report.grant),
    })


@login_required
def report_review(request: HttpRequest) -> HttpResponse:
    _overseen_or_403(request)
    return render(request, "access/report_review.html", {"reports": list(reports_to_review(request.user))})


@login_required
@require_POST
def report_accept(request: HttpRequest, pk: int) -> HttpResponse:
    report = report_visible_to(request.user, pk)
    if report is None:
        raise Http404
    try:
        services.usage_report_accept(report=report, by=request.user)  # type: ignore[arg-type]
    except PermissionDenied as refusal:
        raise PermissionDenied(str(refusal)) from refusal
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("The report was accepted."))
    return redirect("access:report_detail", pk=report.pk)


@login_required
def report_certificate(request: HttpRequest, pk: int) -> HttpResponse:
    report = report_visible_to(request.user, pk)
    if report is None or not report.deletion_certificate:
        raise Http404
    from django.http import FileResponse

    handle = report.deletion_certificate.open("rb")
    return FileResponse(handle, as_attachment=True, filename=f"deletion-certificate-{report.grant.reference}")


# --- Provision records ----------------------------------------------------------------------------


def _filtered_records(request: HttpRequest) -> tuple[ProvisionFilterForm, object]:
    societies = _overseen_or_403(request)
    form = ProvisionFilterForm(request.GET or None, societies=societies)
    return form, provision_records_for(request.user, form.filters())


@login_required
def provision_list(request: HttpRequest) -> HttpResponse:
    form, records = _filtered_records(request)
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))  # type: ignore[arg-type]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "access/provision_list.html",
                  {"form": form, "page": page, "records": page.object_list, "query": query.urlencode()})


def _record(request: HttpRequest, pk: int) -> ProvisionRecord:
    _overseen_or_403(request)
    return get_object_or_404(provision_records_for(request.user), pk=pk)


@login_required
def provision_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = _record(request, pk)
    return render(request, "access/provision_detail.html", {"record": record, "rows": record_values(record)})


@login_required
def provision_pdf_view(request: HttpRequest, pk: int) -> HttpResponse:
    record = _record(request, pk)
    response = HttpResponse(provision_pdf(record), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="provision-record-{record.grant.reference}.pdf"'
    return response


@login_required
def provision_csv_view(request: HttpRequest) -> HttpResponse:
    _form, records = _filtered_records(request)
    response = StreamingHttpResponse(provision_csv(records.iterator(chunk_size=500)),  # type: ignore[attr-defined]
                                     content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="provision-records-{stamp}.csv"'
    return response


# --- The society's overview -----------------------------------------------------------------------


@login_required
def society_overview_view(request: HttpRequest, slug: str) -> HttpResponse:
    society = get_object_or_404(Society, slug=slug)
    if not societies_overseen_by(request.user).filter(pk=society.pk).exists():
        if is_society_member(request.user, society):
            raise PermissionDenied(_("Only the society's admins and data stewards can see this page."))
        raise Http404
    context = {"society": society, **society_overview(society)}
    return render(request, "access/society_overview.html", context)


@login_required
def society_overview_index(request: HttpRequest) -> HttpResponse:
    """The overview of the user's (first) society; the others are linked from it."""
    societies = _overseen_or_403(request)
    return redirect("access:society_overview", slug=societies[0].slug)

