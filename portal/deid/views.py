"""Society admins' anonymisation pages, under /manage/deid/ (namespace ``deid``).

People with no tie to a job's society get 404; members of the society who are not its admins 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.datasets.selectors import (
    datasets_managed_by,
    may_see_managed_dataset,
    societies_managed_by,
)
from portal.datasets.services import ReleaseRejected
from portal.deid import services
from portal.deid.forms import DeidJobForm, FileReviewForm, ReleaseForm, add_service_errors
from portal.deid.models import DeidFileResult, DeidJob
from portal.deid.selectors import job_results, jobs_visible_to, may_manage_job
from portal.societies.models import SocietyMembership

JOBS_PER_PAGE = 50
RESULTS_PER_PAGE = 100


def _job(request: HttpRequest, pk: int) -> DeidJob:
    job = DeidJob.objects.select_related("society", "dataset", "created_by", "release").filter(pk=pk).first()
    if job is None:
        raise Http404
    if may_manage_job(request.user, job):
        return job
    if SocietyMembership.objects.filter(society=job.society, user=request.user).exists():  # type: ignore[misc]
        raise PermissionDenied
    raise Http404


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    if not may_see_managed_dataset(request.user):
        raise PermissionDenied
    page = Paginator(jobs_visible_to(request.user).order_by("-created_at", "-id"), JOBS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "deid/job_list.html", {"page": page, "jobs": page.object_list})


@login_required
def job_create(request: HttpRequest) -> HttpResponse:
    if not may_see_managed_dataset(request.user):
        raise PermissionDenied
    societies = societies_managed_by(request.user)
    datasets = datasets_managed_by(request.user).select_related("society")
    options = services.known_options()
    form = DeidJobForm(
        request.POST or None, request.FILES or None, societies=societies, datasets=datasets, options=options,
        initial={"source_kind": DeidJob.SourceKind.UPLOAD, "options": ["LMD", "PAT"]},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = services.deid_job_create(
                society=data["society"], dataset=data["dataset"], source_kind=data["source_kind"],
                source=data["source"], options=data["options"], institution_code=data["institution_code"],
                table_roles=data["table_roles"], uploads=request.FILES.getlist("uploads"), by=request.user,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            try:
                services.deid_job_start(job=job, by=request.user)
            except ValidationError as error:  # e.g. an empty folder: the pending job shows why
                for message in error.messages:
                    messages.error(request, message)
            else:
                messages.success(request, _("The anonymisation job has started."))
            return redirect("deid:detail", pk=job.pk)
    return render(request, "deid/job_form.html", {"form": form})


def _results_page(request: HttpRequest, job: DeidJob):  # type: ignore[no-untyped-def]
    status = request.GET.get("status", "")
    return Paginator(job_results(job, status=status), RESULTS_PER_PAGE).get_page(request.GET.get("page")), status


@login_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    page, status = _results_page(request, job)
    return render(request, "deid/job_detail.html", {
        "job": job, "page": page, "results": page.object_list, "status_filter": status,
        "statuses": DeidFileResult.Status.choices, "release_form": ReleaseForm(),
        "review_form": FileReviewForm(), "may_review": job.release_id is None and job.status in (
            DeidJob.Status.FINISHED, DeidJob.Status.FINISHED_WITH_FAILURES),
    })


@login_required
def job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress partial that the detail page polls (htmx) every 2 seconds while the job runs."""
    return render(request, "deid/_progress.html", {"job": _job(request, pk)})


def _act(request: HttpRequest, job: DeidJob, action, done_message: str) -> HttpResponse:  # type: ignore[no-untyped-def]
    try:
        action()
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, done_message)
    return redirect("deid:detail", pk=job.pk)


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    return _act(request, job, lambda: services.deid_job_cancel(job=job, by=request.user), _("The job was cancelled."))


@login_required
@require_POST
def job_resume(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    return _act(request, job, lambda: services.deid_job_resume(job=job, by=request.user),
                _("The files still missing were queued again."))


@login_required
@require_POST
def job_release(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    form = ReleaseForm(request.POST)
    if form.is_valid():
        try:
            release = services.deid_job_build_release(
                job=job, notes_ja=form.cleaned_data["notes_ja"], notes_en=form.cleaned_data["notes_en"],
                include_partial=form.cleaned_data["include_partial"], by=request.user,
            )
        except ReleaseRejected as error:
            for problem in error.problems[:50]:
                messages.error(request, str(problem))
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("Release v%(version)s was built.") % {"version": release.version})
            return redirect("datasets:release_detail", pk=release.pk)
    return redirect("deid:detail", pk=job.pk)


@login_required
@require_POST
def file_review(request: HttpRequest, pk: int, result_pk: int) -> HttpResponse:
    """A society admin's decision on one held-back file (``services.deid_file_review``)."""
    job = _job(request, pk)
    result = DeidFileResult.objects.filter(pk=result_pk, job=job).first()
    if result is None:
        raise Http404
    form = FileReviewForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return redirect("deid:detail", pk=job.pk)
    decision = form.cleaned_data["decision"]
    done = (_("The file was processed again and can be released.") if decision == "no_burned_in_text"
            else _("The file stays held back; the review was recorded."))
    return _act(request, job, lambda: services.deid_file_review(
        result=result, decision=decision, note=form.cleaned_data["note"], by=request.user), done)
