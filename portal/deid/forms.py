"""Forms of the anonymisation pages: they parse input; the services decide."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.datasets.models import Dataset
from portal.deid.models import DeidJob
from portal.societies.models import Society

# Japanese labels come from the translations of these English ones.
OPTION_LABELS = {
    "LMD": _("Retain longitudinal temporal information with modified dates"),
    "LFD": _("Retain longitudinal temporal information with full dates"),
    "PAT": _("Retain patient characteristics (sex, age, size, weight)"),
    "DEV": _("Retain device identity"),
    "INST": _("Retain institution identity"),
    "DESC": _("Clean descriptors (keep descriptions after cleaning)"),
    "UID": _("Retain original UIDs"),
    "SP": _("Retain safe private attributes"),
}


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class DeidJobForm(forms.Form):
    society = forms.ModelChoiceField(label=_("Society"), queryset=Society.objects.none())
    dataset = forms.ModelChoiceField(
        label=_("Dataset"), queryset=Dataset.objects.none(), required=False,
        help_text=_("The dataset the output will become a release of."),
    )
    source_kind = forms.ChoiceField(label=_("Source"), choices=DeidJob.SourceKind.choices, widget=forms.RadioSelect)
    uploads = MultipleFileField(label=_("Files"), required=False)
    source = forms.CharField(
        label=_("Folder or storage prefix"), required=False, max_length=500,
        help_text=_("A folder inside the server's import folder, or a prefix in the storage."),
    )
    options = forms.MultipleChoiceField(
        label=_("Options"), required=False, widget=forms.CheckboxSelectMultiple,
    )
    institution_code = forms.CharField(label=_("Institution code"), max_length=40)
    table_roles = forms.CharField(
        label=_("Column roles of tables (JSON)"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            'For CSV files: {"file.csv": {"column": "pseudonymise|drop|shift_date|generalise_age|keep"}}.'
        ),
    )

    def __init__(self, *args: Any, societies: Any, datasets: Any, options: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["society"].queryset = societies
        self.fields["dataset"].queryset = datasets
        self.fields["options"].choices = [
            (code, f"{code} — {OPTION_LABELS.get(code, code)}") for code in sorted(options)
        ]

    def clean_table_roles(self) -> dict[str, Any]:
        text = self.cleaned_data.get("table_roles", "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as error:
            raise ValidationError(_("Enter the column roles as JSON.")) from error
        if not isinstance(value, dict):
            raise ValidationError(_("Enter the column roles as JSON."))
        return value


class ReleaseForm(forms.Form):
    notes_ja = forms.CharField(label=_("Release notes (Japanese)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    notes_en = forms.CharField(label=_("Release notes (English)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    include_partial = forms.BooleanField(
        label=_("Release only the files that succeeded, leaving out the failed ones"), required=False,
    )


class FileReviewForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Review decision"), widget=forms.RadioSelect,
        choices=[("no_burned_in_text", _("No burned-in text: process and release it")),
                 ("withhold", _("Keep it held back"))],
    )
    note = forms.CharField(label=_("Review note"), required=False, max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 2}))


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)
