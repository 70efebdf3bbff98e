"""The auditor's filters, shared by the page, the CSV export and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.audit.selectors import AuditEventFilters

# Auditors read times as Japanese wall-clock time whatever their browser's zone.
PORTAL_ZONE = ZoneInfo("Asia/Tokyo")


class TokyoDateTimeField(forms.DateTimeField):
    """A datetime-local value read as Asia/Tokyo time; values with an explicit offset keep it."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value: Any) -> datetime | None:
        with timezone.override(PORTAL_ZONE):
            return super().to_python(value)


class AuditEventFilterForm(forms.Form):
    actor = forms.CharField(
        label=_("Actor"),
        required=False,
        max_length=255,
        help_text=_("An e-mail address, or the start of one followed by * (for example tanaka@*)."),
    )
    action = forms.CharField(
        label=_("Action"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"list": "audit-actions"}),
    )
    target_type = forms.CharField(
        label=_("Target type"),
        required=False,
        max_length=100,
        help_text=_("For example accounts.user"),
    )
    target_id = forms.CharField(label=_("Target id"), required=False, max_length=64)
    since = TokyoDateTimeField(
        label=_("From"), required=False, help_text=_("Japan time, inclusive")
    )
    until = TokyoDateTimeField(
        label=_("Until"), required=False, help_text=_("Japan time, exclusive")
    )
    # Keyset cursors: the page of events before or after this event id.
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def clean_actor(self) -> str:
        actor: str = self.cleaned_data["actor"].strip().lower()
        if actor and actor.strip("*") == "":
            raise ValidationError(_("Enter at least one character before the *."))
        if "*" in actor.rstrip("*"):
            raise ValidationError(_("A * may only come at the end."))
        return actor

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", _("Until must be later than From."))
        if cleaned.get("before") is not None and cleaned.get("after") is not None:
            raise ValidationError(_("A page is either before or after an event, not both."))
        return cleaned

    def filters(self) -> AuditEventFilters:
        """The cleaned filters; call only on a valid form."""
        data = self.cleaned_data
        return AuditEventFilters(
            actor=data["actor"],
            action=data["action"].strip(),
            target_type=data["target_type"].strip(),
            target_id=data["target_id"].strip(),
            since=data["since"],
            until=data["until"],
        )

    def filter_query(self) -> dict[str, str]:
        """The submitted filters (without cursors), to carry into paging and export links."""
        names = ("actor", "action", "target_type", "target_id", "since", "until")
        return {name: self.data[name] for name in names if self.data.get(name)}
