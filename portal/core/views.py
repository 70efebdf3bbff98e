from __future__ import annotations

from dataclasses import asdict

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.core.health import run_checks
from portal.optout.selectors import pending_confirmations_for
from portal.societies.selectors import society_list_public


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "core/home.html", {"societies": society_list_public()})


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    pending_deletions = pending_confirmations_for(request.user).count()
    return render(request, "core/dashboard.html", {"pending_deletions": pending_deletions})


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    healthy = all(result.ok for result in results.values())
    body = {
        "status": "ok" if healthy else "fail",
        "checks": {name: asdict(result) for name, result in results.items()},
    }
    return JsonResponse(body, status=200 if healthy else 503)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """An expired or missing form token: explain it in the person's language."""
    return render(request, "csrf_failure.html", status=403)
