"""Reads for the one-click extension (延長申請) and for the decider's view of what changes.

- ``extension_prefill``: the request as a lapse warning offers it — the current last day of use
  plus the usual period (``PORTAL_EXTENSION_MONTHS``, never beyond the limit of the period of use),
  the same users and purpose, a reason already written. The page (``?extend=1``) and the API
  (``GET /api/v1/access/grants/<pk>/extension-prefill/``) show the same values.
- ``amendment_changes``: every field of the grant an amendment touches, before and after, each
  marked changed or not, so the steward sees only what differs and the rest collapsed.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.access.models import Grant, GrantAmendment
from portal.access.services.amendments import MAX_YEARS, grant_period_start, last_day_of
from portal.access.services.records import add_years
from portal.accounts.models import User


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day when it has no such day."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class ExtensionPrefill:
    """The extension request as offered: ``new_expires_on`` is None when no extension is possible."""

    grant: Grant
    current_last_day: date
    new_expires_on: date | None
    limit: date
    reason: str
    users: list[User]
    purpose: str

    def as_data(self) -> dict[str, Any]:
        """The body to send to the amendment endpoint, with what stays the same for reading."""
        return {
            "grant": self.grant.pk,
            "current_last_day": self.current_last_day.isoformat(),
            "new_expires_on": self.new_expires_on.isoformat() if self.new_expires_on else None,
            "limit": self.limit.isoformat(),
            "users_to_add": [],
            "users_to_remove": [],
            "reason": self.reason,
            "users": [user.email for user in self.users],
            "purpose": self.purpose,
        }


def extension_prefill(grant: Grant) -> ExtensionPrefill:
    """The extension request pre-filled from the grant: same users and purpose, a longer period."""
    current = last_day_of(grant)
    limit = add_years(grant_period_start(grant), MAX_YEARS)
    wanted = min(add_months(current, settings.PORTAL_EXTENSION_MONTHS), limit)
    new_last_day = wanted if wanted > current else None
    request = grant.access_request
    return ExtensionPrefill(
        grant=grant,
        current_last_day=current,
        new_expires_on=new_last_day,
        limit=limit,
        reason=_("Extension of the period of use, which ends on %(date)s, with the same users and purpose.")
        % {"date": current.isoformat()} if new_last_day else "",
        users=list(grant.users.order_by("email")),
        purpose=request.get_purpose_display() if request is not None else "",
    )


@dataclass(frozen=True)
class Change:
    """One field of the grant as an amendment leaves it: ``before`` and ``after`` as text."""

    key: str
    label: str
    before: str
    after: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def amendment_changes(amendment: GrantAmendment) -> list[Change]:
    """Each field of the grant the request concerns, before and after (changed ones first)."""
    grant = amendment.grant
    request = grant.access_request
    expiry = timezone.localtime(amendment.previous_expires_at)
    before_day = expiry.date() - timedelta(days=1) if expiry.time() == time.min else expiry.date()
    after_day = amendment.new_expires_on or before_day
    removed = sorted(amendment.users_removed.values_list("email", flat=True))
    added = sorted(row["email"] for row in amendment.users_to_add)
    current = set(grant.users.values_list("email", flat=True))
    if amendment.status == GrantAmendment.Status.APPROVED:
        before_users = (current - set(added)) | set(removed)
    else:
        before_users = current | set(removed)
    after_users = (before_users - set(removed)) | set(added)
    training = {row["email"]: row.get("ethics_training_date") or "—" for row in amendment.users_to_add}
    changes = [
        Change("last_day", _("Last day of use"), before_day.isoformat(), after_day.isoformat()),
        Change("users", _("Named users"), ", ".join(sorted(before_users)), ", ".join(sorted(after_users)),
               added=[f"{email} ({_('training')} {training[email]})" for email in added], removed=removed),
        Change("releases", _("Releases"), *([", ".join(str(r) for r in grant.releases.order_by("pk"))] * 2)),
    ]
    if request is not None:
        changes += [
            Change("purpose", _("Purpose"), *([request.get_purpose_display()] * 2)),
            Change("title", _("Research title"), *([request.title] * 2)),
            Change("environment", _("Environment"), *([request.get_environment_display()] * 2)),
            Change("processing_level", _("Required processing level"), *([request.get_processing_level_display()] * 2)),
        ]
    return sorted(changes, key=lambda c: not c.changed)
