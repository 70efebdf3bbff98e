"""Forms of the matching tool and of the operator's approval pages: they parse input only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import User
from portal.linkage.selectors import MAX_TOLERANCE_DAYS, decode_cursor
from portal.societies.models import Society

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class LinkageSearchForm(forms.Form):
    """The matching query, read from the query string (the page, its next pages and the export)."""

    date_from = forms.DateField(label=_("Exam dates from"), widget=_DATE)
    date_to = forms.DateField(label=_("Exam dates to"), widget=_DATE)
    # Any society validates, so that a query over a society no approval covers reaches the service,
    # which refuses it and audits the refusal; the checkboxes offer only the approved ones.
    societies = forms.ModelMultipleChoiceField(
        label=_("Societies to link"),
        queryset=Society.objects.order_by("kind", "id"),
        to_field_name="slug",
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only the societies your linkage approvals cover are offered."),
    )
    tolerance_days = forms.IntegerField(
        label=_("Tolerance (days)"),
        min_value=0,
        max_value=MAX_TOLERANCE_DAYS,
        initial=0,
        help_text=_(
            "Records of one subject up to this many days after the earliest date of a group count "
            "as one exam date."
        ),
    )
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, offered: list[Society], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["societies"].widget.choices = [(society.slug, society.name_ja) for society in offered]

    def clean_societies(self) -> list[Society]:
        societies = list(self.cleaned_data["societies"])
        if len(societies) < 2:
            raise ValidationError(_("Choose at least two societies."), code="too_few")
        return societies

    def clean_after(self) -> Any:
        try:
            return decode_cursor(self.cleaned_data.get("after") or "")
        except ValueError:
            raise ValidationError(_("This page link is not valid."), code="cursor") from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", _("The end of the range must not be before its start."))
        return cleaned

    def query(self) -> dict[str, Any]:
        """The query as keyword arguments of the services, without the page cursor."""
        data = self.cleaned_data
        return {
            "societies": data["societies"],
            "date_from": data["date_from"],
            "date_to": data["date_to"],
            "tolerance_days": data["tolerance_days"],
        }

    def query_string_items(self) -> list[tuple[str, str]]:
        data = self.cleaned_data
        items = [
            ("date_from", data["date_from"].isoformat()),
            ("date_to", data["date_to"].isoformat()),
        ]
        items += [("societies", society.slug) for society in data["societies"]]
        items.append(("tolerance_days", str(data["tolerance_days"])))
        return items


class ApprovalGrantForm(forms.Form):
    user_email = forms.EmailField(label=_("E-mail address of the user"))
    societies = forms.ModelMultipleChoiceField(
        label=_("Covered societies"),
        queryset=Society.objects.filter(kind=Society.Kind.ACADEMIC).order_by("id"),
        widget=forms.CheckboxSelectMultiple,
    )
    purpose = forms.CharField(label=_("Purpose"), widget=forms.Textarea(attrs={"rows": 4}))
    valid_until = forms.DateField(label=_("Valid until"), widget=_DATE)

    def clean_user_email(self) -> User:
        email = self.cleaned_data["user_email"]
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise ValidationError(_("No active account has this e-mail address."), code="unknown")
        return user
