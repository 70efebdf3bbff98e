from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _

from portal.accounts.roles import has_mfa, requires_mfa

# Paths a user who still has to set up a second factor may reach: the account pages themselves
# (MFA set-up, sign-out, password), the language switch, static files, health and the API (whose
# own permission refuses such users with a JSON error). The header's unread count is fetched by htmx on
# every page, the set-up page included: redirecting it would reload that page for ever.
_OPEN_PREFIXES = ("/accounts/", "/i18n/", "/static/", "/healthz", "/api/", "/notifications/unread-count/")


class MFARequiredMiddleware:
    """Sends users whose role needs a second factor to the TOTP set-up page until they have one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not request.path.startswith(_OPEN_PREFIXES)
            and requires_mfa(user)
            and not has_mfa(user)
        ):
            messages.warning(
                request,
                _(
                    "Your role requires two-factor authentication. Set up an authenticator app to continue."
                ),
            )
            target = reverse("mfa_activate_totp")
            if getattr(request, "htmx", False):
                return HttpResponse(status=204, headers={"HX-Redirect": target})
            return HttpResponseRedirect(target)
        return self.get_response(request)
