"""Grants in the operator's admin: created through ``grant_create`` (numbered, audited), never edited."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.access.models import Download, Grant, GrantAmendment, LapseWarning
from portal.access.services.grants import grant_create
from portal.core.admin_readonly import ReadOnlyAdmin
from portal.datasets.models import DatasetRelease

_SHOWN = ["reference", "status", "access_request", "society", "paused_reasons", "restricted", "users", "releases",
          "starts_at", "expires_at", "ended_at", "created_by", "revoked_at", "revoked_by", "revoke_reason"]


class GrantCreateForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Grant
        fields = ["users", "releases", "expires_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "releases" in self.fields:  # absent on the read-only change page
            self.fields["releases"].queryset = DatasetRelease.objects.filter(  # type: ignore[attr-defined]
                status=DatasetRelease.Status.AVAILABLE
            ).select_related("dataset")

    def clean_expires_at(self) -> Any:
        value = self.cleaned_data["expires_at"]
        if value <= timezone.now():
            raise forms.ValidationError(_("The expiry must be in the future."))
        return value


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = ["reference", "status", "starts_at", "expires_at", "created_by"]
    list_filter = ["status"]
    search_fields = ["reference"]
    form = GrantCreateForm
    filter_horizontal = ["users", "releases"]

    def get_fields(self, request: HttpRequest, obj: Grant | None = None) -> list[str]:
        return _SHOWN if obj is not None else ["users", "releases", "expires_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Grant | None = None) -> list[str]:
        return _SHOWN if obj is not None else []

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewing only: a grant changes through its own services (revoke, expire), not by editing.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Grant, form: Any, change: bool) -> None:
        grant = grant_create(
            users=form.cleaned_data["users"], releases=form.cleaned_data["releases"],
            expires_at=form.cleaned_data["expires_at"], by=request.user,  # type: ignore[arg-type]
        )
        # The admin logs and redirects to ``obj``: make it the grant the service created.
        obj.__dict__.update(grant.__dict__)
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """The service has set users and releases already."""


@admin.register(Download)
class DownloadAdmin(ReadOnlyAdmin):
    """Each use of a signed link, for the operator to read; never changed."""

    list_display = ["started_at", "grant", "user", "file", "byte_range", "via"]
    list_filter = ["via"]
    search_fields = ["grant__reference", "user__email"]
    list_select_related = ["grant", "user", "file"]
    raw_id_fields = ["grant", "user", "file"]


@admin.register(GrantAmendment)
class GrantAmendmentAdmin(ReadOnlyAdmin):
    """Extensions and changes of users: requested and decided on the portal's own pages."""

    list_display = ["created_at", "grant", "requested_by", "new_expires_on", "status", "decided_by", "decided_at"]
    list_filter = ["status"]
    search_fields = ["grant__reference", "requested_by__email"]
    list_select_related = ["grant", "requested_by", "decided_by"]


@admin.register(LapseWarning)
class LapseWarningAdmin(ReadOnlyAdmin):
    """Warnings sent before a grant or what it rests on lapses (beat): a record, never edited."""

    list_display = ["sent_at", "grant", "kind", "subject", "lapses_on", "days_before"]
    list_filter = ["kind", "days_before"]
    search_fields = ["grant__reference", "subject"]
    list_select_related = ["grant"]
