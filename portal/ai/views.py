"""Pages of the hosted AI models, under /ai/ (namespace ``ai``).

Everyone reads the cards of published models. Running a model needs ``ai.run_aimodel`` on it (403
without: the card itself is public); jobs are their runner's alone (404 to everybody else). The
society admins of a model's society and the operator manage models, versions and access requests
(403 to the rest). Every change goes through ``portal.ai.services``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from portal.access.selectors import active_grants
from portal.ai import results, services
from portal.ai.forms import (
    AccessRequestForm,
    DecisionForm,
    ModelEditForm,
    ModelForm,
    RetireForm,
    RevokeForm,
    RunForm,
    VersionUploadForm,
    add_service_errors,
)
from portal.ai.models import (
    DEMO_NOTICE,
    AIModel,
    InferenceItem,
    InferenceJob,
    ModelAccessRequest,
    ModelVersion,
    ProvenanceNotice,
)
from portal.ai.selectors import (
    jobs_of,
    may_manage_model,
    may_run,
    models_visible_to,
    versions_visible_to,
)
from portal.datasets.models import DatasetRelease
from portal.datasets.selectors import is_operator, managed_society_ids
from portal.optout.selectors import excluded_pseudonyms
from portal.societies.models import Society

MODELS_PER_PAGE = 50
JOBS_PER_PAGE = 50
RESULTS_PER_PAGE = 100
RELEASE_FILES_PER_PAGE = 100
REQUESTS_PER_PAGE = 50
# Demo models offer a synthetic image per label to try them with: always the same one.
SAMPLE_SEED = 2026


# --- Fetching what a page is about, refusing outsiders -----------------------------------------

def _model(request: HttpRequest, slug: str) -> AIModel:
    model = models_visible_to(request.user).select_related("society").filter(slug=slug).first()
    if model is None:
        raise Http404
    return model


def _cards(request: HttpRequest, model: AIModel) -> QuerySet[ModelVersion]:
    """The versions ``request.user`` may see, with what their cards show (provenance, notices)."""
    releases = DatasetRelease.objects.select_related("dataset")
    return versions_visible_to(request.user, model).prefetch_related(
        Prefetch("training_releases", queryset=releases),
        Prefetch("evaluation_releases", queryset=releases),
        Prefetch("provenance_notices",
                 queryset=ProvenanceNotice.objects.select_related("release__dataset").order_by("-created_at", "-id")),
    )


def _version(request: HttpRequest, model: AIModel, version: str) -> ModelVersion:
    found = _cards(request, model).filter(version=version).first()
    if found is None:
        raise Http404
    found.model = model  # already fetched, with its society
    return found


def _managed_model(request: HttpRequest, slug: str) -> AIModel:
    """The model, for its managers; 403 to those who may only read its card."""
    model = _model(request, slug)
    if not may_manage_model(request.user, model):
        raise PermissionDenied
    return model


def _require_manager(user: Any) -> None:
    if not (is_operator(user) or managed_society_ids(user)):
        raise PermissionDenied


def _managed_models(user: Any) -> QuerySet[AIModel]:
    if is_operator(user):
        return AIModel.objects.all()
    return AIModel.objects.filter(society_id__in=managed_society_ids(user))


def _job(request: HttpRequest, pk: int, **annotations: Any) -> InferenceJob:
    job = (
        jobs_of(request.user).select_related("version__model__society", "release__dataset")
        .annotate(**annotations).filter(pk=pk).first()
    )
    if job is None:
        raise Http404
    return job


def _granted_releases(user: Any) -> QuerySet[DatasetRelease]:
    """Available releases on grants in force that name ``user`` (the service checks usability)."""
    return (
        DatasetRelease.objects.filter(
            status=DatasetRelease.Status.AVAILABLE, grants__in=active_grants().filter(users=user)
        )
        .select_related("dataset")
        .distinct()
        .order_by("dataset__slug", "-version")
    )


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """Render an AI page: every one of them may show the demo notice."""
    return render(request, template, {"demo_notice": DEMO_NOTICE, **context}, status=status)


def _refused(request: HttpRequest, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


# --- Public pages: models and their cards ------------------------------------------------------

def model_list(request: HttpRequest) -> HttpResponse:
    models = (
        models_visible_to(request.user)
        .select_related("society")
        .prefetch_related(Prefetch(
            "versions",
            queryset=ModelVersion.objects.filter(status=ModelVersion.Status.PUBLISHED).order_by("-created_at", "-id"),
            to_attr="published_versions",
        ))
        .order_by("society__slug", "slug")
    )
    page = Paginator(models, MODELS_PER_PAGE).get_page(request.GET.get("page"))
    return _render(request, "ai/model_list.html", {"page": page, "models": page.object_list})


def _card_version(versions: list[ModelVersion]) -> ModelVersion | None:
    """The version the model's page shows: the newest published one, else the newest there is."""
    published = [v for v in versions if v.status == ModelVersion.Status.PUBLISHED]
    return (published or versions or [None])[0]


def model_detail(request: HttpRequest, slug: str) -> HttpResponse:
    model = _model(request, slug)
    versions = list(_cards(request, model).order_by("-created_at", "-id"))
    for version in versions:
        version.model = model
    spec = _demo_spec(model)
    return _render(request, "ai/model_detail.html", {
        "model": model, "versions": versions, "version": _card_version(versions),
        "demo_samples": [(label["code"], label) for label in spec.labels] if spec else [],
        **_access_context(request, model, versions),
    })


def _demo_spec(model: AIModel) -> Any:
    """The demo model's generator spec (for sample images), or None for a society's own model."""
    from portal.ai.demo_models import DEMO_SPECS

    if not model.is_demo:
        return None
    return next((spec for spec in DEMO_SPECS.values() if spec.slug == model.slug), None)


def demo_sample(request: HttpRequest, slug: str, label: str) -> HttpResponse:
    """A synthetic image of ``label`` to try a demo model with (generated; the same one every time)."""
    from portal.ai.demo_models import synthetic_png

    model = _model(request, slug)
    spec = _demo_spec(model)
    if spec is None or label not in spec.label_codes:
        raise Http404
    response = HttpResponse(synthetic_png(spec.kind, label, seed=SAMPLE_SEED), content_type="image/png")
    response["Content-Disposition"] = f'attachment; filename="{slug}-{label}-sample.png"'
    return response


def _access_context(request: HttpRequest, model: AIModel, versions: list[ModelVersion]) -> dict[str, Any]:
    user = request.user
    open_request = None
    if user.is_authenticated:
        open_request = ModelAccessRequest.objects.filter(
            model=model, user=user, status__in=ModelAccessRequest.OPEN_STATUSES
        ).first()
    return {
        "may_run": may_run(user, model),
        "may_manage": may_manage_model(user, model),
        "open_request": open_request,
        "has_published": any(v.status == ModelVersion.Status.PUBLISHED for v in versions),
        "request_form": AccessRequestForm(),
    }


def version_detail(request: HttpRequest, slug: str, version: str) -> HttpResponse:
    model = _model(request, slug)
    found = _version(request, model, version)
    versions = list(versions_visible_to(request.user, model).order_by("-created_at", "-id"))
    return _render(request, "ai/version_detail.html", {
        "model": model, "version": found, "versions": versions, "retire_form": RetireForm(),
        **_access_context(request, model, versions),
    })


@login_required
@require_POST
def access_request(request: HttpRequest, slug: str) -> HttpResponse:
    model = _model(request, slug)
    form = AccessRequestForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return redirect("ai:model_detail", slug=model.slug)
    try:
        services.access_request_submit(model=model, user=request.user, purpose=form.cleaned_data["purpose"])
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(request, _("Your request to use the model was sent to the society's admins."))
    return redirect("ai:model_detail", slug=model.slug)


@login_required
@require_POST
def request_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    access = ModelAccessRequest.objects.select_related("model").filter(pk=pk, user=request.user).first()
    if access is None:
        raise Http404
    try:
        services.access_request_withdraw(request=access, by=request.user)
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(request, _("Your request was withdrawn."))
    return redirect("ai:model_detail", slug=access.model.slug)


# --- Running a model ----------------------------------------------------------------------------

@login_required
def run(request: HttpRequest, slug: str, version: str) -> HttpResponse:
    model = _model(request, slug)
    found = _version(request, model, version)
    if not may_run(request.user, model):
        raise PermissionDenied
    releases = _granted_releases(request.user)
    form = RunForm(request.POST or None, request.FILES or None, releases=releases)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        picked = []
        if data["source"] == "release":
            picked = list(data["release"].files.filter(pk__in=data["release_files"]).order_by("path"))
            if len(picked) != len(data["release_files"]):
                form.add_error("release_files", _("Choose files from the list."))
        if not form.errors:
            try:
                job = services.inference_job_create(
                    version=found, user=request.user,
                    uploads=data["uploads"] if data["source"] == "upload" else (), release_files=picked,
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, _("The images were received; the model is running."))
                return redirect("ai:job_detail", pk=job.pk)
    return _render(request, "ai/run.html", {
        "model": model, "version": found, "form": form, "releases": releases,
        **_release_picker(request, releases, form),
    }, status=400 if request.method == "POST" else 200)


def _release_picker(request: HttpRequest, releases: QuerySet[DatasetRelease], form: RunForm) -> dict[str, Any]:
    """The chosen release's image files, a page at a time, with the ones ticked in a refused POST."""
    chosen_id = request.POST.get("release") if request.method == "POST" else request.GET.get("release")
    chosen = releases.filter(pk=int(chosen_id)).first() if chosen_id and chosen_id.isdigit() else None
    if chosen is None:
        return {"chosen": None, "files_page": None, "ticked": set(), "release_query": ""}
    # Files of subjects who opted out are not offered (the service would refuse them anyway).
    images = chosen.files.filter(
        Q(media_type__startswith="image/") | Q(media_type="application/dicom"), is_annotation=False
    ).exclude(subject_pseudonym__in=excluded_pseudonyms(dataset=chosen.dataset)).order_by("path")
    return {
        "chosen": chosen, "release_query": f"release={chosen.pk}",
        "files_page": Paginator(images, RELEASE_FILES_PER_PAGE).get_page(request.GET.get("page")),
        "ticked": set(getattr(form, "cleaned_data", {}).get("release_files", [])),
    }


# --- Jobs and their results ---------------------------------------------------------------------

@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = jobs_of(request.user).select_related("version__model").order_by("-created_at", "-id")
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    return _render(request, "ai/job_list.html", {"page": page, "jobs": page.object_list})


def result_rows(items: list[InferenceItem], version: ModelVersion) -> list[dict[str, Any]]:
    """Each item with its label's name and its probabilities (percent) in the card's label order."""
    rows = []
    for item in items:
        probabilities = [
            {"code": label["code"], "name": version.label_name(label["code"]),
             "percent": 100 * float(item.probabilities[label["code"]]), "top": label["code"] == item.label}
            for label in version.labels
            if label["code"] in (item.probabilities or {})
        ]
        rows.append({
            "item": item, "label_name": version.label_name(item.label) if item.label else "",
            "probabilities": probabilities,
        })
    return rows


def _retention(job: InferenceJob) -> dict[str, Any]:
    """How long the job's images are kept (``PORTAL_AI_INPUT_RETENTION_DAYS``; 0: until deleted)."""
    days = services.retention_days()
    ended = job.finished_at if not job.is_active else None
    return {
        "retention_days": days,
        "images_deleted_after": ended + timedelta(days=days) if ended and days else None,
    }


@login_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # Whether the job still holds images of its own (the delete button), in the same query.
    job = _job(request, pk, holds_images=Exists(
        InferenceItem.objects.filter(services.HOLDS_IMAGES, job_id=OuterRef("pk"))))
    page = Paginator(job.items.order_by("position"), RESULTS_PER_PAGE).get_page(request.GET.get("page"))
    return _render(request, "ai/job_detail.html", {
        "job": job, "model": job.version.model, "version": job.version, "page": page,
        "rows": result_rows(list(page.object_list), job.version), "has_images": job.holds_images,
        **_retention(job),
    })


@login_required
@require_POST
def job_images_delete(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    try:
        services.inference_job_images_delete(job=job, by=request.user)
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(request, _("The images of this job were deleted; its results were kept."))
    return redirect("ai:job_detail", pk=job.pk)


@login_required
def job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress partial the job page polls (htmx) every 2 s while the job runs.

    When the job has ended, htmx is told to reload the page, which then shows the results table.
    """
    job = _job(request, pk)
    if request.htmx and not job.is_active:  # type: ignore[attr-defined]
        return HttpResponseClientRefresh()
    return _render(request, "ai/_progress.html", {"job": job})


@login_required
def job_results_csv(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    response = HttpResponse(results.results_csv(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="ai-job-{job.pk}-results.csv"'
    return response


@login_required
def job_results_json(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    response = JsonResponse(results.results_json(job), json_dumps_params={"ensure_ascii": False, "indent": 2})
    response["Content-Disposition"] = f'attachment; filename="ai-job-{job.pk}-results.json"'
    return response


@login_required
def thumbnail(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    job = _job(request, pk)
    key = job.items.filter(position=position).values_list("thumbnail_key", flat=True).first()
    if not key or not default_storage.exists(key):
        raise Http404
    response = FileResponse(default_storage.open(key, "rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- Management: models, versions, access requests ---------------------------------------------

@login_required
def manage(request: HttpRequest) -> HttpResponse:
    _require_manager(request.user)
    models = (
        _managed_models(request.user)
        .select_related("society")
        .annotate(pending=Count("access_requests", filter=Q(access_requests__status=ModelAccessRequest.Status.SUBMITTED)))
        .prefetch_related(Prefetch("versions", queryset=ModelVersion.objects.order_by("-created_at", "-id")))
        .order_by("society__slug", "slug")
    )
    pending = (
        ModelAccessRequest.objects.filter(
            model__in=_managed_models(request.user), status=ModelAccessRequest.Status.SUBMITTED
        )
        .select_related("model", "user")
        .order_by("created_at", "id")[:20]
    )
    return _render(request, "ai/manage.html", {"models": models, "pending": pending})


@login_required
def model_create(request: HttpRequest) -> HttpResponse:
    _require_manager(request.user)
    societies = Society.objects.all() if is_operator(request.user) else Society.objects.filter(
        pk__in=managed_society_ids(request.user))
    form = ModelForm(request.POST or None, societies=societies.order_by("slug"))
    if request.method == "POST" and form.is_valid():
        try:
            model = services.model_create(**form.cleaned_data, by=request.user)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The model was registered. Upload its first version."))
            return redirect("ai:version_upload", slug=model.slug)
    return _render(request, "ai/model_form.html", {"form": form, "model": None},
                  status=400 if request.method == "POST" else 200)


@login_required
def model_edit(request: HttpRequest, slug: str) -> HttpResponse:
    model = _managed_model(request, slug)
    initial = {name: getattr(model, name) for name in ModelEditForm.base_fields}
    form = ModelEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.model_update(model=model, by=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The model was saved."))
            return redirect("ai:model_detail", slug=model.slug)
    return _render(request, "ai/model_form.html", {"form": form, "model": model},
                  status=400 if request.method == "POST" else 200)


@login_required
def version_upload(request: HttpRequest, slug: str) -> HttpResponse:
    model = _managed_model(request, slug)
    releases = (
        DatasetRelease.objects.filter(dataset__society=model.society)
        .select_related("dataset")
        .order_by("dataset__slug", "-version")
    )
    form = VersionUploadForm(request.POST or None, request.FILES or None, releases=releases)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        card = {name: data[name] for name in (
            "version", "artefact", "labels", "input_width", "input_height", "input_channels", "input_mean",
            "input_std", "intended_use_ja", "intended_use_en", "limitations_ja", "limitations_en",
            "training_data_ja", "training_data_en", "evaluation_set_size",
        )}
        try:
            version = services.version_upload(
                model=model, metrics=form.metrics(), training_releases=list(data["training_releases"]),
                evaluation_releases=list(data["evaluation_releases"]), by=request.user, **card,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Version %(version)s was uploaded as a draft.") % {"version": version.version})
            return redirect("ai:version_detail", slug=model.slug, version=version.version)
    return _render(request, "ai/version_form.html", {"form": form, "model": model},
                  status=400 if request.method == "POST" else 200)


def _managed_version(request: HttpRequest, slug: str, version: str) -> ModelVersion:
    model = _managed_model(request, slug)
    found = model.versions.filter(version=version).first()
    if found is None:
        raise Http404
    found.model = model
    return found


@login_required
@require_POST
def version_publish(request: HttpRequest, slug: str, version: str) -> HttpResponse:
    found = _managed_version(request, slug, version)
    try:
        services.version_publish(version=found, by=request.user)
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(request, _("Version %(version)s was published.") % {"version": found.version})
    return redirect("ai:version_detail", slug=slug, version=found.version)


@login_required
@require_POST
def version_retire(request: HttpRequest, slug: str, version: str) -> HttpResponse:
    found = _managed_version(request, slug, version)
    form = RetireForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the reason for retiring the version."))
        return redirect("ai:version_detail", slug=slug, version=found.version)
    try:
        services.version_retire(version=found, reason=form.cleaned_data["reason"], by=request.user)
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(request, _("Version %(version)s was retired.") % {"version": found.version})
    return redirect("ai:version_detail", slug=slug, version=found.version)


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    _require_manager(request.user)
    status = request.GET.get("status", ModelAccessRequest.Status.SUBMITTED)
    requests = (
        ModelAccessRequest.objects.filter(model__in=_managed_models(request.user))
        .select_related("model", "user", "decided_by")
        .order_by("-created_at", "-id")
    )
    if status in ModelAccessRequest.Status.values:
        requests = requests.filter(status=status)
    else:
        status = ""
    page = Paginator(requests, REQUESTS_PER_PAGE).get_page(request.GET.get("page"))
    return _render(request, "ai/request_list.html", {
        "page": page, "requests": page.object_list, "status_filter": status, "status_query": f"status={status or 'all'}",
        "statuses": ModelAccessRequest.Status.choices, "decision_form": DecisionForm(), "revoke_form": RevokeForm(),
    })


def _managed_request(request: HttpRequest, pk: int) -> ModelAccessRequest:
    access = ModelAccessRequest.objects.select_related("model", "user").filter(pk=pk).first()
    if access is None:
        raise Http404
    if not may_manage_model(request.user, access.model):
        if access.user_id == request.user.pk:  # their own request: they may see it, not decide it
            raise PermissionDenied
        raise Http404
    return access


@login_required
@require_POST
def request_decide(request: HttpRequest, pk: int) -> HttpResponse:
    access = _managed_request(request, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose to approve or reject the request."))
        return redirect("ai:request_list")
    try:
        services.access_request_decide(
            request=access, approve=form.cleaned_data["approve"], note=form.cleaned_data["note"], by=request.user
        )
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(request, _("The request was approved.") if form.cleaned_data["approve"]
                         else _("The request was rejected."))
    return redirect("ai:request_list")


@login_required
@require_POST
def request_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    access = _managed_request(request, pk)
    form = RevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the reason for revoking the access."))
        return redirect(f"{reverse('ai:request_list')}?status=approved")
    try:
        services.access_revoke(request=access, reason=form.cleaned_data["reason"], by=request.user)
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(request, _("The access was revoked."))
    return redirect(f"{reverse('ai:request_list')}?status=approved")
