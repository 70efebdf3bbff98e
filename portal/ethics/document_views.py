"""Downloading a protocol's notices: for the applicant, the committee and the head, audited."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404

from portal.audit.services import audit_record
from portal.ethics.documents import notice_issue_for
from portal.ethics.models import EthicsNotice, ProtocolVersion
from portal.ethics.selectors import protocols_visible_to


@login_required
def notice_download(request: HttpRequest, protocol_id: int, version: int, kind: str) -> FileResponse:
    # Outsiders get 404 from the visibility selector: they cannot learn that a protocol exists.
    protocol = get_object_or_404(protocols_visible_to(request.user), pk=protocol_id)  # type: ignore[arg-type]
    protocol_version = get_object_or_404(
        ProtocolVersion.objects.select_related("protocol"), protocol=protocol, number=version
    )
    if kind not in EthicsNotice.Kind.values:
        raise Http404
    # Issued on first download if the service that recorded the decision has not issued it yet.
    notice = notice_issue_for(version=protocol_version, kind=kind, by=request.user)  # type: ignore[arg-type]
    if notice is None:
        raise Http404
    with transaction.atomic():
        audit_record(
            action="ethics.notice_downloaded", actor=request.user, target=notice,  # type: ignore[arg-type]
            details={"protocol": protocol.number, "version": version, "kind": kind, "sha256": notice.sha256},
        )
    response = FileResponse(
        notice.file.open("rb"), as_attachment=True, content_type="application/pdf",
        filename=f"{protocol.number}-v{version}-{kind}.pdf",
    )
    response["Cache-Control"] = "private, no-store"
    return response
