"""Society admins' pages for their datasets and releases, under /manage/datasets/.

Each view parses a form and calls one service. A dataset is fetched with ``_managed_dataset``:
people with no tie to its society get 404, members of the society who are not its admins get 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.core.vocabulary import Modality
from portal.datasets import services
from portal.datasets.forms import DatasetForm, ReasonForm, ReleaseUploadForm, add_service_errors
from portal.datasets.manifest import (
    EXAMPLE_PSEUDONYMS,
    MANIFEST_COLUMNS,
    column_format,
    example_manifest_rows,
)
from portal.datasets.models import Dataset, DatasetRelease, DatasetStatus
from portal.datasets.selectors import (
    datasets_managed_by,
    may_manage_society,
    may_see_managed_dataset,
    societies_managed_by,
)
from portal.datasets.workflow import DATASET
from portal.lib import hooks
from portal.lib.csvexport import csv_text
from portal.lib.pseudonym import PSEUDONYM_LENGTH
from portal.societies.models import SocietyMembership

FILES_PER_PAGE = 100


def _authorise(request: HttpRequest, dataset: Dataset) -> None:
    if may_manage_society(request.user, dataset.society):
        return
    if SocietyMembership.objects.filter(society=dataset.society, user=request.user).exists():  # type: ignore[misc]
        raise PermissionDenied
    raise Http404


def _managed_dataset(request: HttpRequest, pk: int) -> Dataset:
    dataset = Dataset.objects.select_related("society", "protocol").filter(pk=pk).first()
    if dataset is None:
        raise Http404
    _authorise(request, dataset)
    return dataset


def _managed_release(request: HttpRequest, pk: int) -> DatasetRelease:
    release = (
        DatasetRelease.objects.select_related("dataset__society", "dataset__protocol", "created_by", "withdrawn_by")
        .filter(pk=pk).first()
    )
    if release is None:
        raise Http404
    _authorise(request, release.dataset)
    return release


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    if not may_see_managed_dataset(request.user):
        raise PermissionDenied
    datasets = (
        datasets_managed_by(request.user)
        .select_related("society")
        .annotate(
            release_count=Count("releases"),
            # Provided (提供中) only while the dataset is published, as ``DatasetRelease.is_provided``.
            available_release_count=Count("releases", filter=Q(
                releases__status=DatasetRelease.Status.AVAILABLE, status=DatasetStatus.PUBLISHED)),
            latest_version=Max("releases__version"),
        )
        .order_by("society__slug", "slug")
    )
    return render(request, "datasets/manage_list.html", {"datasets": datasets})


@login_required
def dataset_create(request: HttpRequest) -> HttpResponse:
    societies = societies_managed_by(request.user)
    if not may_see_managed_dataset(request.user):
        raise PermissionDenied
    form = DatasetForm(request.POST or None, societies=societies)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = services.dataset_create(
                society=form.cleaned_data["society"], by=request.user,  # type: ignore[arg-type]
                **form.service_fields(),
            )
        except PermissionDenied as error:
            form.add_error("society", str(error))
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The dataset was created as a draft."))
            return redirect("datasets:detail", pk=dataset.pk)
    return render(request, "datasets/manage_form.html", {"form": form, "dataset": None})


@login_required
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = _managed_dataset(request, pk)
    releases = dataset.releases.select_related("created_by").order_by("-version")
    checks = services.dataset_publish_checks(dataset)
    return render(request, "datasets/manage_detail.html", {
        "dataset": dataset,
        "releases": releases,
        "checks": checks,
        "publishable": all(check.ok for check in checks),
        "can_publish": DATASET.allows("publish", dataset.status),
        "can_withdraw": DATASET.allows("withdraw", dataset.status),
        "can_release": dataset.status != DatasetStatus.WITHDRAWN,
        "withdraw_form": ReasonForm(),
    })


@login_required
def dataset_edit(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = _managed_dataset(request, pk)
    fixed: tuple[str, ...] = ()
    if dataset.status != DatasetStatus.DRAFT or dataset.published_at is not None:
        fixed += ("protocol", "slug")
    if dataset.releases.exists():
        fixed += ("slug", "case_count", "image_count")
    form = DatasetForm(request.POST or None, instance=dataset, fixed=fixed)
    if request.method == "POST" and form.is_valid():
        try:
            services.dataset_update(dataset=dataset, by=request.user, **form.service_fields())  # type: ignore[arg-type]
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The dataset was saved."))
            return redirect("datasets:detail", pk=dataset.pk)
    return render(request, "datasets/manage_form.html", {"form": form, "dataset": dataset})


@require_POST
@login_required
def dataset_publish(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = _managed_dataset(request, pk)
    try:
        services.dataset_publish(dataset=dataset, by=request.user)  # type: ignore[arg-type]
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("The dataset was published."))
    return redirect("datasets:detail", pk=dataset.pk)


@require_POST
@login_required
def dataset_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = _managed_dataset(request, pk)
    form = ReasonForm(request.POST)
    if form.is_valid():
        try:
            services.dataset_withdraw(dataset=dataset, reason=form.cleaned_data["reason"], by=request.user)  # type: ignore[arg-type]
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("The dataset was withdrawn."))
    else:
        messages.error(request, _("Say why the dataset is withdrawn."))
    return redirect("datasets:detail", pk=dataset.pk)


@login_required
def release_upload(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = _managed_dataset(request, pk)
    # More files than DATA_UPLOAD_MAX_NUMBER_FILES (501 in the settings) are refused with 400
    # before the view runs; the form's help text gives the limit (``upload_max_files``).
    problems: list[str] = []
    form = ReleaseUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            release = services.release_upload(
                dataset=dataset, files=form.cleaned_data["files"], manifest=form.cleaned_data["manifest"],
                by=request.user,  # type: ignore[arg-type]
                notes_ja=form.cleaned_data["notes_ja"], notes_en=form.cleaned_data["notes_en"],
            )
        except services.ReleaseRejected as rejected:
            problems = [str(problem) for problem in rejected.problems]
        except ValidationError as error:
            problems = list(error.messages)
        else:
            messages.success(request, _("Release %(version)s was built.") % {"version": release.version})
            return redirect("datasets:release_detail", pk=release.pk)
    status = 400 if problems else 200
    return render(request, "datasets/manage_release_upload.html", {
        "dataset": dataset, "form": form, "problems": problems,
        "columns": [(column, column_format(column)) for column in MANIFEST_COLUMNS],
        "modalities": Modality.choices,
        "pseudonym_length": PSEUDONYM_LENGTH,
        "pseudonym_example": EXAMPLE_PSEUDONYMS[0],
    }, status=status)


@login_required
def manifest_example(request: HttpRequest, pk: int) -> HttpResponse:
    """An example manifest for this dataset, written from the parser's own column table."""
    dataset = _managed_dataset(request, pk)
    response = HttpResponse(csv_text(example_manifest_rows(dataset.modality)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="manifest-example.csv"'
    return response


@login_required
def release_detail(request: HttpRequest, pk: int) -> HttpResponse:
    release = _managed_release(request, pk)
    paginator = Paginator(release.files.order_by("path"), FILES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "datasets/manage_release_detail.html", {
        "release": release,
        "dataset": release.dataset,
        "page": page,
        "withdraw_form": ReasonForm(),
        # The anonymisation job's report (portal.deid), when the release was built by one.
        "deid_report": hooks.first("release_build_report", release=release),
    })


@require_POST
@login_required
def release_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    release = _managed_release(request, pk)
    form = ReasonForm(request.POST)
    if form.is_valid():
        try:
            services.release_withdraw(release=release, reason=form.cleaned_data["reason"], by=request.user)  # type: ignore[arg-type]
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("The release was withdrawn."))
    else:
        messages.error(request, _("Say why the release is withdrawn."))
    return redirect("datasets:release_detail", pk=release.pk)

