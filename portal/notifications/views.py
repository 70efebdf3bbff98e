"""The inbox (通知) under /notifications/: a person's own messages only; anyone else's is a 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.notifications import services
from portal.notifications.selectors import (
    notification_get_for,
    notification_list_for,
    notification_unread_count,
)

PER_PAGE = 20


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("show") == "unread"
    notifications = notification_list_for(request.user, unread_only=unread_only)  # type: ignore[arg-type]
    page = Paginator(notifications, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "notifications/inbox.html", {
        "page": page, "notifications": page.object_list, "unread_only": unread_only,
        "query": "show=unread" if unread_only else "",
        "unread_count": notification_unread_count(request.user),  # type: ignore[arg-type]
    })


@login_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    notification = notification_get_for(request.user, pk)  # type: ignore[arg-type]
    services.notification_mark_read(notification=notification, by=request.user)  # type: ignore[arg-type]
    return render(request, "notifications/detail.html", {"notification": notification})


@login_required
def go(request: HttpRequest, pk: int) -> HttpResponse:
    """Open what the message is about, marking the message read on the way."""
    notification = notification_get_for(request.user, pk)  # type: ignore[arg-type]
    services.notification_mark_read(notification=notification, by=request.user)  # type: ignore[arg-type]
    # ``url`` is a path inside the portal (a constraint of the table): never a redirect elsewhere.
    if notification.url:
        return redirect(notification.url)
    return redirect("notifications:detail", pk=pk)


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    count = services.notification_mark_all_read(by=request.user)  # type: ignore[arg-type]
    messages.success(request, _("Marked %(count)d notifications read.") % {"count": count})
    return redirect("notifications:inbox")


def unread_badge(request: HttpRequest) -> HttpResponse:
    """The header's unread count, fetched by htmx after the page: pages themselves query nothing for it."""
    count = notification_unread_count(request.user)  # type: ignore[arg-type]
    # Without the request: the navigation's context (the person's roles) is not needed for a number.
    return HttpResponse(render_to_string("notifications/_unread_badge.html", {"unread_count": count}))
