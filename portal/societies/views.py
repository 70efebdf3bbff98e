from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from portal.societies.models import Society
from portal.societies.selectors import society_list_public


def society_list(request: HttpRequest) -> HttpResponse:
    return render(request, "societies/society_list.html", {"societies": society_list_public()})


def society_detail(request: HttpRequest, slug: str) -> HttpResponse:
    society = get_object_or_404(Society, slug=slug)
    return render(request, "societies/society_detail.html", {"society": society})
