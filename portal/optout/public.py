"""The public opt-out pages (no sign-in): published notices, their history, and a poster as a PDF.

The guideline asks that the people whose data are used be told, or be able to learn easily, what is
done with their data and how to refuse (REGULATION.md a3). Counts of requests are shown; who made
them never is. Requests are platform-wide: the pseudonym is society-common, so a request made
through any society's hospital stops use in every society's datasets in its scope.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation

from portal.ethics.documents import japanese_date
from portal.ethics.models import HeadDecision
from portal.lib.pdf import render_pdf
from portal.optout.items import LEAD_PARAGRAPH, NOTICE_ITEMS, items_as_read, research_title
from portal.optout.models import OptOutNotice, OptOutNoticeVersion
from portal.optout.selectors import public_notice, published_notices, request_counts_by_society
from portal.societies.models import Society


def notice_list(request: HttpRequest) -> HttpResponse:
    notices = published_notices()
    societies = list(Society.objects.filter(optout_notices__status=OptOutNotice.Status.PUBLISHED).distinct()
                     .order_by("kind", "id"))
    chosen = request.GET.get("society", "")
    if chosen:
        notices = notices.filter(society__slug=chosen)
    counts = request_counts_by_society()
    all_societies = Society.objects.order_by("kind", "id")
    return render(request, "optout/public/notice_list.html", {
        "notices": notices,
        "societies": societies,
        "chosen": chosen,
        "lead": LEAD_PARAGRAPH,
        "counts": [(society, counts.get(society.pk, 0)) for society in all_societies if counts.get(society.pk)],
        "total_requests": sum(counts.values()),
    })


def _permission(notice: OptOutNotice) -> HeadDecision | None:
    """The head's permission of the protocol's latest permitted version (approval reference)."""
    return (
        HeadDecision.objects.filter(version__protocol_id=notice.protocol_id, permitted=True)
        .order_by("-version__number").first()
    )


def _public_notice_or_404(reference: str) -> OptOutNotice:
    notice = public_notice(reference)
    if notice is None or notice.current_version is None:
        raise Http404
    return notice


def notice_detail(request: HttpRequest, reference: str) -> HttpResponse:
    notice = _public_notice_or_404(reference)
    version: OptOutNoticeVersion = notice.current_version  # type: ignore[assignment]
    counts = request_counts_by_society()
    return render(request, "optout/public/notice_detail.html", {
        "notice": notice,
        "version": version,
        "items": items_as_read(version, title=research_title(notice.protocol_id)),
        "history": notice.published_versions,  # type: ignore[attr-defined]
        "datasets": notice.datasets.all(),
        "permission": _permission(notice),
        "lead": LEAD_PARAGRAPH,
        "how_to_request": version.text("how_to_request"),
        "contact": version.text("contact"),
        "request_count": counts.get(notice.society_id, 0),
        "page_url": request.build_absolute_uri(reverse("optout_public:detail", args=[notice.reference])),
        "english_missing": translation.get_language() == "en" and not version.title_en,
    })


def notice_poster(request: HttpRequest, reference: str) -> HttpResponse:
    """An A4 poster of the current version for hospital notice boards.

    Its fixed text is Japanese whatever the reader's language, like the ethics notices: it is put up
    in Japanese hospitals.
    """
    notice = _public_notice_or_404(reference)
    if notice.status != OptOutNotice.Status.PUBLISHED:
        raise Http404
    version: OptOutNoticeVersion = notice.current_version  # type: ignore[assignment]
    url = f"{settings.PORTAL_BASE_URL}{reverse('optout_public:detail', args=[notice.reference])}"
    with translation.override("ja"):
        pdf = render_pdf("optout_poster.html", {
            "notice": notice,
            "version": version,
            "items": {item.key: getattr(version, f"{item.key}_ja") for item in NOTICE_ITEMS},
            "url": url,
            "published_on": japanese_date(version.published_at),
            "start_on": japanese_date(version.start_date),
            "end_on": japanese_date(version.end_date),
        })
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{notice.reference}-v{version.number}.pdf"'
    return response
