"""Grant pages, manifests and the download view (/access/…, namespace ``access``)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from portal.access.downloads import download_check, serve
from portal.access.grant_forms import GrantFileFilterForm, GrantTrainingForm
from portal.access.grant_selectors import grant_files, grant_training_rows
from portal.access.links import (
    Link,
    LinkRateLimited,
    LinkRefused,
    link_issue,
    link_verify,
    links_issue_for_release,
    refuse,
)
from portal.access.models import Grant
from portal.access.selectors import grant_role, grant_usability, grants_of
from portal.access.services.grants import grant_extend_to_release, grant_revoke
from portal.access.services.training import request_user_training_renew
from portal.access.workflow import GRANT
from portal.accounts.models import User
from portal.accounts.roles import has_mfa, requires_mfa
from portal.datasets.models import DatasetRelease, ReleaseFile
from portal.lib.client_ip import client_ip

FILES_PER_PAGE = 50


def request_user(request: HttpRequest) -> User | None:
    """The signed-in user: the session's, or the owner of an ``Authorization: Token`` (API token)."""
    if request.user.is_authenticated:
        return request.user  # type: ignore[return-value]
    if request.META.get("HTTP_AUTHORIZATION", "").startswith("Token "):
        from knox.auth import TokenAuthentication
        from rest_framework.exceptions import AuthenticationFailed
        from rest_framework.request import Request

        try:
            result = TokenAuthentication().authenticate(Request(request))
        except AuthenticationFailed:
            return None
        if result:
            user = result[0]
            return None if requires_mfa(user) and not has_mfa(user) else user
    return None


def _visible_grant(user: User, pk: int) -> tuple[Grant, set[str]]:
    grant = get_object_or_404(Grant.objects.select_related("society", "access_request"), pk=pk)
    roles = grant_role(user, grant)
    if not roles:
        raise Http404
    return grant, roles


@require_GET
@never_cache
@login_required
def grant_list(request: HttpRequest) -> HttpResponse:
    grants = list(grants_of(request.user))
    return render(request, "access/grant_list.html", {"grants": grants})


@require_GET
@never_cache
@login_required
def grant_detail(request: HttpRequest, pk: int) -> HttpResponse:
    grant, roles = _visible_grant(request.user, pk)  # type: ignore[arg-type]
    releases = list(grant.releases.select_related("dataset").order_by("dataset_id", "version"))
    usability = grant_usability(grant, request.user if "user" in roles else None)
    newer: list[DatasetRelease] = []
    if roles & {"admin", "operator"} and grant.status in (Grant.Status.ACTIVE, Grant.Status.PAUSED):
        for dataset_id in {r.dataset_id for r in releases}:
            top = max(r.version for r in releases if r.dataset_id == dataset_id)
            newer += list(DatasetRelease.objects.filter(
                dataset_id=dataset_id, version__gt=top, status=DatasetRelease.Status.AVAILABLE,
            ).select_related("dataset"))
    files_page, filter_form = None, None
    if "user" in roles:
        filter_form = GrantFileFilterForm(request.GET)
        filters = filter_form.cleaned_data if filter_form.is_valid() else {}
        files_page = Paginator(grant_files(releases, **filters), FILES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "access/grant_detail.html", {
        "grant": grant, "releases": releases, "usability": usability, "roles": roles,
        "files_page": files_page, "filter_form": filter_form, "filter_query": query.urlencode(),
        "may_see_request": grant.access_request is not None and (
            request.user.pk in (grant.access_request.applicant_id, grant.access_request.principal_investigator_id)
            or bool(roles & {"steward", "admin", "operator"})),
        "may_download": "user" in roles and usability.ok and not grant.restricted,
        "may_revoke": bool(roles & {"steward", "admin", "operator"}) and GRANT.allows("revoke", grant.status),
        "newer_releases": newer,
        "users": list(grant.users.order_by("email")),
        "training_rows": grant_training_rows(grant, request.user),
    })


@require_POST
@login_required
def grant_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    grant, _roles = _visible_grant(request.user, pk)  # type: ignore[arg-type]
    try:
        grant_revoke(grant=grant, reason=request.POST.get("reason", ""), by=request.user)  # type: ignore[arg-type]
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The grant has been revoked; its links no longer work."))
    return redirect("access:grant_detail", pk=grant.pk)


@require_POST
@login_required
def grant_extend_view(request: HttpRequest, pk: int) -> HttpResponse:
    grant, _roles = _visible_grant(request.user, pk)  # type: ignore[arg-type]
    release = get_object_or_404(DatasetRelease, pk=request.POST.get("release") or 0)
    try:
        grant_extend_to_release(grant=grant, release=release, by=request.user)  # type: ignore[arg-type]
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The grant now includes %(release)s.") % {"release": release})
    return redirect("access:grant_detail", pk=grant.pk)


@require_POST
@login_required
def grant_training_renew_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Record a named user's renewed research-ethics training (that user, or the applicant or PI)."""
    grant, _roles = _visible_grant(request.user, pk)  # type: ignore[arg-type]
    form = GrantTrainingForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect("access:grant_detail", pk=grant.pk)
    user = get_object_or_404(User, pk=form.cleaned_data["user"])
    try:
        request_user_training_renew(grant=grant, user=user, training_date=form.cleaned_data["training_date"],
                                    by=request.user)  # type: ignore[arg-type]
    except ValidationError as error:  # PermissionDenied (another named user) goes on to a 403
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The renewed training of %(email)s is recorded.") % {"email": user.email})
    return redirect("access:grant_detail", pk=grant.pk)


# --- Manifests and downloads ------------------------------------------------------------------------


@require_GET
@never_cache
@login_required
def grant_file_link(request: HttpRequest, pk: int, file_pk: int) -> HttpResponse:
    """One file from the grant's page: a fresh signed link (every check, audited), then the download."""
    grant, _roles = _visible_grant(request.user, pk)  # type: ignore[arg-type]
    file = get_object_or_404(ReleaseFile.objects.select_related("release__dataset"), pk=file_pk)
    try:
        link = link_issue(grant=grant, file=file, user=request.user, ip=client_ip(request))  # type: ignore[arg-type]
    except LinkRefused as error:
        messages.error(request, error.message)
        return redirect("access:grant_detail", pk=grant.pk)
    except LinkRateLimited as error:
        response = HttpResponse(error.message, status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(error.retry_after)
        return response
    return redirect("access:download", token=link.token)


def manifest_links(request: HttpRequest, user: User | None, pk: int, release_pk: int) -> list[Link] | HttpResponse:
    """The fresh links of a release's files, or the refusal response (403/404/429)."""
    if user is None:
        return HttpResponse(_("Sign in, or send your API token."), status=403, content_type="text/plain")
    grant = Grant.objects.select_related("access_request").filter(pk=pk).first()
    if grant is None or not grant_role(user, grant):
        raise Http404
    release = get_object_or_404(DatasetRelease.objects.select_related("dataset"), pk=release_pk)
    if not grant.users.filter(pk=user.pk).exists():
        refuse(code="not_named", message=_("You are not a named user of this grant."), user=user,
               grant_id=grant.pk, file_id=None, action="access.link_refused", ip=client_ip(request))
        return HttpResponse(_("You are not a named user of this grant."), status=403, content_type="text/plain")
    try:
        return links_issue_for_release(grant=grant, release=release, user=user, ip=client_ip(request))
    except LinkRefused as error:
        return HttpResponse(error.message, status=403, content_type="text/plain; charset=utf-8")
    except LinkRateLimited as error:
        response = HttpResponse(error.message, status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(error.retry_after)
        return response


def manifest_rows(request: HttpRequest, links: list[Link]) -> list[dict[str, Any]]:
    return [
        {"path": link.file.path, "size": link.file.size, "sha256": link.file.sha256,
         "media_type": link.file.media_type,
         "link": request.build_absolute_uri(reverse("access:download", args=[link.token])),
         "expires_at": link.expires_at.isoformat()}
        for link in links
    ]


@require_GET
@never_cache
def manifest_json(request: HttpRequest, pk: int, release_pk: int) -> HttpResponse:
    links = manifest_links(request, request_user(request), pk, release_pk)
    if isinstance(links, HttpResponse):
        return links
    return JsonResponse({"grant": pk, "release": release_pk, "files": manifest_rows(request, links)},
                        json_dumps_params={"ensure_ascii": False})


@require_GET
@never_cache
def manifest_tsv(request: HttpRequest, pk: int, release_pk: int) -> HttpResponse:
    links = manifest_links(request, request_user(request), pk, release_pk)
    if isinstance(links, HttpResponse):
        return links
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(["path", "size", "sha256", "media_type", "link"])
    for row in manifest_rows(request, links):
        writer.writerow([row["path"], row["size"], row["sha256"], row["media_type"], row["link"]])
    response = HttpResponse(buffer.getvalue(), content_type="text/tab-separated-values; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="grant-{pk}-release-{release_pk}.tsv"'
    return response


@require_GET
@never_cache
def download(request: HttpRequest, token: str) -> HttpResponse:
    """Serve one file through its signed link: 403 (audited) unless every check passes again."""
    user = request_user(request)
    ip = client_ip(request)
    try:
        claims = link_verify(token)
    except LinkRefused as error:
        refuse(code=error.code, message=error.message, user=user, grant_id=None, file_id=None, ip=ip)
        return _forbidden(error)
    try:
        grant, file = download_check(claims=claims, user=user, ip=ip)
    except LinkRefused as error:
        return _forbidden(error)
    return serve(request, grant=grant, file=file, user=user)  # type: ignore[arg-type]


def _forbidden(error: LinkRefused) -> HttpResponse:
    body = json.dumps({"detail": str(error.message), "reason": error.code}, ensure_ascii=False)
    return HttpResponse(body, status=403, content_type="application/json")
