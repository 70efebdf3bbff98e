"""Short-lived signed download links, one per file, bound to a user, a grant and an expiry.

A token is ``django.core.signing.dumps`` of ``{"g": grant, "f": file, "u": user, "e": expiry}``
with its own salt: tampering breaks the signature, and the expiry (``PORTAL_LINK_SECONDS``,
default 10 minutes) is checked when it is used. Issuing re-checks the grant (``grant_usability``)
and is rate-limited per user; every link issued and every refusal is audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from portal.access.models import Grant
from portal.access.selectors import grant_usability
from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.datasets.models import DatasetRelease, ReleaseFile
from portal.optout.selectors import excluded_pseudonyms

SALT = "portal.access.download-link"
DEFAULT_LINK_SECONDS = 600
DEFAULT_RATE = 600  # link requests (a single link, or a manifest) per user per window
DEFAULT_RATE_WINDOW = 600  # seconds

# The clock links are checked against (tests move it).
_now = time.time


def link_seconds() -> int:
    return int(getattr(settings, "PORTAL_LINK_SECONDS", DEFAULT_LINK_SECONDS))


class LinkRefused(PermissionDenied):
    """A link may not be issued or used; ``code`` is the audited reason, ``message`` is shown."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LinkRateLimited(Exception):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Link:
    token: str
    file: ReleaseFile
    expires_at: datetime


@dataclass(frozen=True)
class LinkClaims:
    grant_id: int
    file_id: int
    user_id: int
    expires: int


def _token(*, grant_id: int, file_id: int, user_id: int, expires: int) -> str:
    return signing.dumps({"g": grant_id, "f": file_id, "u": user_id, "e": expires}, salt=SALT, compress=False)


def link_verify(token: str) -> LinkClaims:
    """The claims of a genuine, unexpired token; ``LinkRefused`` otherwise."""
    try:
        data = signing.loads(token, salt=SALT)
        claims = LinkClaims(int(data["g"]), int(data["f"]), int(data["u"]), int(data["e"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkRefused("tampered", _("This download link is not valid.")) from None
    if _now() >= claims.expires:
        raise LinkRefused("expired", _("This download link has expired. Fetch a new one from the grant's page."))
    return claims


def _rate_limit(user: User, count: int) -> None:
    limit = int(getattr(settings, "PORTAL_LINK_RATE", DEFAULT_RATE))
    window = int(getattr(settings, "PORTAL_LINK_RATE_SECONDS", DEFAULT_RATE_WINDOW))
    bucket = int(_now()) // window
    key = f"access:links:{user.pk}:{bucket}"
    cache.add(key, 0, timeout=window + 5)
    try:
        used = cache.incr(key, count)
    except ValueError:  # expired between add and incr
        cache.set(key, count, timeout=window + 5)
        used = count
    if used > limit:
        raise LinkRateLimited(
            _("Too many download links: at most %(limit)s every %(minutes)s minutes. Try again shortly.")
            % {"limit": limit, "minutes": window // 60},
            retry_after=window - int(_now()) % window,
        )


def refuse(*, code: str, message: str, user: User | None, grant_id: int | None, file_id: int | None,
           action: str = "access.download_refused", ip: str | None = None) -> LinkRefused:
    """Audit a refusal (in its own write, so a 403 keeps it) and return the error to raise."""
    grant = Grant.objects.filter(pk=grant_id).first() if grant_id else None
    audit_record(
        action=action, actor=user if getattr(user, "is_authenticated", False) else None, target=grant,
        details={"reason": code, "message": str(message), "file": file_id}, ip=ip,
    )
    return LinkRefused(code, message)


def _check_file(grant: Grant, file: ReleaseFile, excluded: set[str] | None = None) -> tuple[str, str] | None:
    release = file.release
    if not grant.releases.filter(pk=release.pk).exists():
        return "not_in_grant", _("This file is not part of the grant.")
    if release.status != DatasetRelease.Status.AVAILABLE:
        return "release_withdrawn", _("The release was withdrawn.")
    if excluded is None:
        excluded = excluded_pseudonyms(dataset=release.dataset)
    if file.subject_pseudonym in excluded:
        return "opted_out", _("The subject of this file has opted out: it can no longer be downloaded.")
    return None


def _check_grant(grant: Grant, user: User, *, issuing: bool) -> tuple[str, str] | None:
    # Always the stored state: a caller's copy may predate a revocation or a lapse.
    grant = Grant.objects.select_related("access_request").get(pk=grant.pk)
    usability = grant_usability(grant, user)
    if not usability.ok:
        return _reason_code(grant, usability.reasons), " ".join(str(r) for r in usability.reasons)
    if issuing and grant.restricted:
        return "restricted", _("A usage report is overdue: no new links until it is submitted.")
    return None


def _reason_code(grant: Grant, reasons: list[str]) -> str:
    from django.utils import timezone

    if grant.status == Grant.Status.REVOKED:
        return "revoked"
    if grant.status in (Grant.Status.EXPIRED, Grant.Status.ENDED) or grant.expires_at <= timezone.now():
        return "grant_expired" if grant.status != Grant.Status.ENDED else "ended"
    return "grant_unusable"


def link_issue(*, grant: Grant, file: ReleaseFile, user: User, ip: str | None = None) -> Link:
    """One signed link to ``file`` for ``user`` under ``grant``; refusals are audited."""
    problem = _check_grant(grant, user, issuing=True) or _check_file(grant, file)
    if problem:
        raise refuse(code=problem[0], message=problem[1], user=user, grant_id=grant.pk, file_id=file.pk,
                     action="access.link_refused", ip=ip)
    _rate_limit(user, 1)
    expires = int(_now()) + link_seconds()
    token = _token(grant_id=grant.pk, file_id=file.pk, user_id=user.pk, expires=expires)
    audit_record(action="access.link_issued", actor=user, target=grant,
                 details={"file": file.pk, "path": file.path, "release": file.release_id}, ip=ip)
    return Link(token, file, datetime.fromtimestamp(expires, tz=UTC))


def links_issue_for_release(*, grant: Grant, release: DatasetRelease, user: User,
                            ip: str | None = None) -> list[Link]:
    """A fresh link for every file of ``release`` (a manifest): one check, then the tokens.

    Files of subjects who opted out are left out. One audit event records the links issued.
    """
    problem = _check_grant(grant, user, issuing=True)
    if problem is None and not grant.releases.filter(pk=release.pk).exists():
        problem = ("not_in_grant", _("This release is not part of the grant."))
    if problem is None and release.status != DatasetRelease.Status.AVAILABLE:
        problem = ("release_withdrawn", _("The release was withdrawn."))
    if problem:
        raise refuse(code=problem[0], message=problem[1], user=user, grant_id=grant.pk, file_id=None,
                     action="access.link_refused", ip=ip)
    excluded = excluded_pseudonyms(dataset=release.dataset)
    files = [f for f in ReleaseFile.objects.filter(release=release).order_by("path")
             if f.subject_pseudonym not in excluded]
    # The limit counts requests for links: a manifest is one, whatever the number of its files.
    _rate_limit(user, 1)
    expires = int(_now()) + link_seconds()
    at = datetime.fromtimestamp(expires, tz=UTC)
    links = [Link(_token(grant_id=grant.pk, file_id=f.pk, user_id=user.pk, expires=expires), f, at) for f in files]
    audit_record(action="access.link_issued", actor=user, target=grant,
                 details={"release": release.pk, "files": len(links), "manifest": True}, ip=ip)
    return links
