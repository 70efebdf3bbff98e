"""Agreement pages under /agreements/: society admins keep their templates; every signed-in person
reads published versions; the signed PDF goes to those the agreement concerns.

Templates and drafts are fetched with ``_managed_template``: people with no tie to the society get
404, members of the society who are not its admins get 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.agreements import services
from portal.agreements.forms import TemplateCreateForm, VersionForm
from portal.agreements.models import AgreementTemplate, AgreementTemplateVersion, SignedAgreement
from portal.agreements.selectors import (
    may_manage_agreements,
    may_read_signed_agreement,
    may_see_agreement_pages,
    templates_managed_by,
    terms_side_by_side,
)
from portal.audit.services import audit_record
from portal.datasets.forms import add_service_errors
from portal.datasets.selectors import societies_managed_by
from portal.societies.models import Society, SocietyMembership

Version = AgreementTemplateVersion


def _authorise(request: HttpRequest, society: Society) -> None:
    if may_manage_agreements(request.user, society):
        return
    if SocietyMembership.objects.filter(society=society, user=request.user).exists():  # type: ignore[misc]
        raise PermissionDenied
    raise Http404


def _managed_template(request: HttpRequest, pk: int) -> AgreementTemplate:
    template = AgreementTemplate.objects.select_related("society", "current_version").filter(pk=pk).first()
    if template is None:
        raise Http404
    _authorise(request, template.society)
    return template


def _managed_version(request: HttpRequest, pk: int) -> Version:
    version = Version.objects.select_related("template__society").filter(pk=pk).first()
    if version is None:
        raise Http404
    _authorise(request, version.template.society)
    return version


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    if not may_see_agreement_pages(request.user):
        raise PermissionDenied
    return render(request, "agreements/template_list.html", {"templates": templates_managed_by(request.user)})


@login_required
def template_create(request: HttpRequest) -> HttpResponse:
    if not may_see_agreement_pages(request.user):
        raise PermissionDenied
    form = TemplateCreateForm(request.POST or None, societies=societies_managed_by(request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            template = services.agreement_template_create(
                society=data["society"], kind=data["kind"], name_ja=data["name_ja"], name_en=data["name_en"],
                by=request.user, **form.service_fields(),  # type: ignore[arg-type]
            )
        except PermissionDenied as error:
            form.add_error("society", str(error))
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The agreement was created with a draft of version 1."))
            return redirect("agreements:template_detail", pk=template.pk)
    return render(request, "agreements/version_form.html", {"form": form, "template": None, "version": None})


@login_required
def template_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The template's version history, with its draft and the actions on it."""
    template = _managed_template(request, pk)
    versions = template.versions.select_related("published_by", "created_by").order_by("-number")
    return render(request, "agreements/template_detail.html", {
        "template": template,
        "versions": versions,
        "draft": next((version for version in versions if version.status == Version.Status.DRAFT), None),
        "published": next((version for version in versions if version.status == Version.Status.PUBLISHED), None),
    })


@login_required
def version_new(request: HttpRequest, pk: int) -> HttpResponse:
    template = _managed_template(request, pk)
    published = template.versions.filter(status=Version.Status.PUBLISHED).first()
    if published is None:
        raise Http404
    form = VersionForm(request.POST or None, instance=None if request.method == "POST" else published,
                       initial={"change_summary": ""})
    if request.method == "POST" and form.is_valid():
        try:
            version = services.agreement_version_new(
                template=template, by=request.user, **form.service_fields()  # type: ignore[arg-type]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Version %(number)s was created as a draft.") % {"number": version.number})
            return redirect("agreements:version_detail", pk=version.pk)
    return render(request, "agreements/version_form.html", {"form": form, "template": template, "version": None})


@login_required
def version_edit(request: HttpRequest, pk: int) -> HttpResponse:
    version = _managed_version(request, pk)
    if version.status != Version.Status.DRAFT:
        raise PermissionDenied(_("A published agreement version is never edited; publish a new version instead."))
    form = VersionForm(request.POST or None, instance=version, with_change_summary=version.number > 1)
    if request.method == "POST" and form.is_valid():
        try:
            services.agreement_version_update_draft(
                version=version, by=request.user, **form.service_fields()  # type: ignore[arg-type]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The draft was saved."))
            return redirect("agreements:version_detail", pk=version.pk)
    return render(request, "agreements/version_form.html",
                  {"form": form, "template": version.template, "version": version})


@require_POST
@login_required
def version_publish(request: HttpRequest, pk: int) -> HttpResponse:
    version = _managed_version(request, pk)
    try:
        services.agreement_version_publish(version=version, by=request.user)  # type: ignore[arg-type]
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("Version %(number)s was published.") % {"number": version.number})
    return redirect("agreements:version_detail", pk=version.pk)


@login_required
def version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A published (or superseded) version for every signed-in reader; a draft is its admins' preview."""
    version = Version.objects.select_related("template__society", "published_by").filter(pk=pk).first()
    if version is None:
        raise Http404
    manager = may_manage_agreements(request.user, version.template.society)
    if version.status == Version.Status.DRAFT and not manager:
        raise Http404
    publish_problems = services.agreement_version_publish_problems(version) if version.status == Version.Status.DRAFT else {}
    return render(request, "agreements/version_detail.html", {
        "version": version,
        "template": version.template,
        "table": terms_side_by_side([version]),
        "manager": manager,
        "publish_problems": [message for messages_ in publish_problems.values() for message in messages_],
    })


@login_required
def signed_pdf(request: HttpRequest, pk: int) -> FileResponse:
    agreement = (
        SignedAgreement.objects.select_related("access_request", "society", "template_version").filter(pk=pk).first()
    )
    if agreement is None or not agreement.pdf or not may_read_signed_agreement(request.user, agreement):
        raise Http404
    with transaction.atomic():
        audit_record(
            action="agreements.pdf_downloaded", actor=request.user, target=agreement,  # type: ignore[arg-type]
            details={"access_request": agreement.access_request.reference, "society": agreement.society.slug,
                     "pdf_sha256": agreement.pdf_sha256},
        )
    reference = agreement.access_request.reference or f"request-{agreement.access_request_id}"
    response = FileResponse(
        agreement.pdf.open("rb"), as_attachment=True, content_type="application/pdf",
        filename=f"{reference}-{agreement.society.slug}-agreement.pdf",
    )
    response["Cache-Control"] = "private, no-store"
    return response
