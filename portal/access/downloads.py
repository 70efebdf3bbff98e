"""Serving a file through a signed link, after every check again.

Local storage: the bytes are streamed in chunks from ``default_storage.open()`` (never read whole),
with one ``Range`` (206, or 416 when out of bounds; a malformed or multi-part Range is ignored
and the whole file sent), ``Accept-Ranges``, ``Content-Length``, the manifest's media type and the
file's SHA-256 as ETag. With ``PORTAL_DOWNLOAD_ACCEL_PREFIX`` set, nginx sends the bytes
(``X-Accel-Redirect``). S3: a redirect to a presigned URL valid for about a minute.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)

from portal.access.links import LinkClaims, _check_file, _check_grant, refuse
from portal.access.models import Download, Grant
from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.datasets.models import ReleaseFile
from portal.lib.client_ip import client_ip

CHUNK = 1024 * 1024


def presigned_seconds() -> int:
    """Life of a presigned S3 URL (``PORTAL_SIGNED_URL_SECONDS``): issued only after the checks."""
    return int(settings.AWS_QUERYSTRING_EXPIRE)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``Range``; None for none/malformed/multi-part (send it all)."""
    match = _RANGE.match(header.strip()) if header else None
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # malformed: ignored
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size - 1)


def _chunks(key: str, start: int, length: int) -> Iterator[bytes]:
    handle = default_storage.open(key, "rb")
    try:
        if start:
            handle.seek(start)
        remaining = length
        while remaining > 0:
            data = handle.read(min(CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        handle.close()


def _is_s3(storage: object) -> bool:
    return hasattr(storage, "bucket_name") and hasattr(storage, "connection")


def download_check(*, claims: LinkClaims, user: User | None, ip: str | None = None) -> tuple[Grant, ReleaseFile]:
    """The grant and file a verified link names, after every check; raises an audited refusal."""
    def no(code: str, message: str) -> Exception:
        return refuse(code=code, message=message, user=user, grant_id=claims.grant_id, file_id=claims.file_id, ip=ip)

    from django.utils.translation import gettext as _

    if user is None or not user.is_authenticated:
        raise no("not_signed_in", _("Sign in as the user the link was issued to."))
    if user.pk != claims.user_id:
        raise no("other_user", _("This link was issued to another user."))
    grant = Grant.objects.select_related("access_request").filter(pk=claims.grant_id).first()
    file = ReleaseFile.objects.select_related("release__dataset").filter(pk=claims.file_id).first()
    if grant is None or file is None:
        raise no("not_found", _("This download link is not valid."))
    problem = _check_grant(grant, user, issuing=False) or _check_file(grant, file)
    if problem:
        raise no(*problem)
    return grant, file


def serve(request: HttpRequest, *, grant: Grant, file: ReleaseFile, user: User) -> HttpResponse:
    """The response that delivers ``file`` (bytes, X-Accel-Redirect or an S3 redirect); recorded."""
    storage = default_storage
    size = file.size
    byte_range = ""
    recorded = False
    if _is_s3(storage):
        url = storage.url(file.storage_key, expire=presigned_seconds())  # type: ignore[call-arg]
        response: HttpResponse = HttpResponseRedirect(url)
        via = "s3"
    else:
        try:
            wanted = parse_range(request.META.get("HTTP_RANGE", ""), size)
        except RangeNotSatisfiable:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            response["Accept-Ranges"] = "bytes"
            return response
        prefix = getattr(settings, "PORTAL_DOWNLOAD_ACCEL_PREFIX", "")
        if prefix:
            response = HttpResponse(content_type=file.media_type)
            response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(file.storage_key)
            response["X-Accel-Buffering"] = "no"
            via = "accel"
            if wanted:
                byte_range = f"{wanted[0]}-{wanted[1]}"
        elif wanted is None:
            # The whole file: FileResponse lets the WSGI server send it with sendfile when it can.
            via = "stream"
            _record(request, grant=grant, file=file, user=user, via=via, byte_range="")
            response = FileResponse(storage.open(file.storage_key, "rb"), content_type=file.media_type)
            response.block_size = CHUNK
            response["Content-Length"] = str(size)
            recorded = True
        else:
            start, end = wanted
            length = end - start + 1
            response = StreamingHttpResponse(_chunks(file.storage_key, start, length), content_type=file.media_type,
                                             status=206)
            response["Content-Length"] = str(length)
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
            byte_range = f"{start}-{end}"
            via = "stream"
        response["Accept-Ranges"] = "bytes"
        response["ETag"] = f'"{file.sha256}"'
        filename = file.path.rsplit("/", 1)[-1]
        response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    response["Cache-Control"] = "private, no-store"
    if not recorded:
        _record(request, grant=grant, file=file, user=user, via=via, byte_range=byte_range)
    return response


def _record(request: HttpRequest, *, grant: Grant, file: ReleaseFile, user: User, via: str, byte_range: str) -> None:
    Download.objects.create(grant=grant, user=user, file=file, byte_range=byte_range, via=via)
    audit_record(action="access.downloaded", actor=user, target=grant,
                 details={"file": file.pk, "path": file.path, "range": byte_range, "via": via},
                 ip=client_ip(request))
