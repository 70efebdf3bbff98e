from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from knox.models import AuthToken

from portal.accounts import services


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    tokens = AuthToken.objects.filter(user=request.user).order_by("-created")
    return render(request, "accounts/token_list.html", {"tokens": tokens})


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    try:
        instance, raw = services.api_token_create(user=request.user, by=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return redirect("accounts:token_list")
    tokens = AuthToken.objects.filter(user=request.user).order_by("-created")
    return render(
        request,
        "accounts/token_list.html",
        {"tokens": tokens, "new_token": raw, "new_token_instance": instance},
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_key: str) -> HttpResponse:
    try:
        services.api_token_revoke(user=request.user, token_key=token_key, by=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("The token was revoked."))
    return redirect("accounts:token_list")
