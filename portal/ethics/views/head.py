"""The head of the institution: the queue of approved protocols and the decision to permit."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.accounts.models import OrganizationMembership
from portal.ethics import services
from portal.ethics.forms import HeadDecisionForm
from portal.ethics.models import Protocol
from portal.ethics.views.common import S, _title_of_latest_version
from portal.ethics.views.protocol import _detail_action


@require_POST
@login_required
def head_decide(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_head, HeadDecisionForm, "head_form",
        lambda s, data: services.head_decide(protocol=s.protocol, by=s.user, **data),
        _("Your decision was recorded and sent to the applicant."),
    )


@never_cache
@login_required
def head_queue(request: HttpRequest) -> HttpResponse:
    institutions = OrganizationMembership.objects.filter(
        user=request.user, role=OrganizationMembership.Role.HEAD
    ).values("organization_id")
    if not institutions.exists():
        raise PermissionDenied
    protocols = (
        Protocol.objects.filter(institution_id__in=institutions, status=S.APPROVED)
        .select_related("committee", "principal_investigator", "institution")
        .annotate(title=_title_of_latest_version())
        .order_by("updated_at", "id")
    )
    return render(request, "ethics/head_queue.html", {"protocols": protocols})
