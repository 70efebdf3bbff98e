"""Creating grants. Until the access-request workflow exists, only the platform operator grants."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.access.models import Grant
from portal.accounts.models import User
from portal.accounts.roles import Role, has_role
from portal.audit.services import audit_record
from portal.datasets.models import DatasetRelease

_ATTEMPTS = 5


def _next_grant_reference(year: int) -> str:
    prefix = f"G-{year}-"
    numbers = [
        int(match.group(1))
        for reference in Grant.objects.filter(reference__startswith=prefix).values_list("reference", flat=True)
        if (match := re.fullmatch(rf"{re.escape(prefix)}(\d+)", reference))
    ]
    return f"{prefix}{max(numbers, default=0) + 1:05d}"


def grant_create(
    *, users: Iterable[User], releases: Iterable[DatasetRelease], expires_at: datetime, by: User
) -> Grant:
    """Grant named users access to releases until ``expires_at`` (platform operator only)."""
    if not has_role(by, Role.OPERATOR):
        raise PermissionDenied(_("Only the platform operator can create grants."))
    users = list(users)
    releases = list(releases)
    if not users:
        raise ValidationError({"users": _("Name at least one user.")})
    if not releases:
        raise ValidationError({"releases": _("Choose at least one release.")})
    if expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry must be in the future.")})
    unavailable = [str(r) for r in releases if r.status != DatasetRelease.Status.AVAILABLE]
    if unavailable:
        raise ValidationError(
            {"releases": _("These releases were withdrawn: %(names)s") % {"names": ", ".join(unavailable)}}
        )
    for attempt in range(_ATTEMPTS):
        try:
            with transaction.atomic():
                grant = Grant.objects.create(
                    reference=_next_grant_reference(timezone.localdate().year),
                    expires_at=expires_at, created_by=by,
                )
                grant.users.set(users)
                grant.releases.set(releases)
                audit_record(
                    action="access.grant_created", actor=by, target=grant,
                    details={
                        "users": sorted(u.email for u in users),
                        "releases": sorted(str(r) for r in releases),
                        "expires_at": expires_at.isoformat(),
                    },
                )
            return grant
        except IntegrityError:
            # Two grants took the same number at once: take the next one.
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
