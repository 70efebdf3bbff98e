"""Forms of the usage-report and provision-record pages; the services do the real checks."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.access.models import LegalBasis, UsageReport
from portal.access.report_selectors import ProvisionFilters
from portal.access.services.reports import OUTPUT_KINDS, output_kind_labels

OUTPUT_ROWS = 5
OUTPUT_PARTS = ("kind", "title", "doi", "number", "citation")


def _kind_choices() -> list[tuple[str, str]]:
    labels = output_kind_labels()
    return [("", "—")] + [(kind, labels[kind]) for kind in OUTPUT_KINDS]


class ProvisionFilterForm(forms.Form):
    society = forms.TypedChoiceField(label=_("Society"), required=False, coerce=int, empty_value=None)
    q = forms.CharField(label=_("Search"), required=False, max_length=100,
                        help_text=_("Grant number, recipient, research title or approval number."))
    legal_basis = forms.ChoiceField(label=_("Legal basis"), required=False,
                                    choices=[("", "—"), *LegalBasis.choices])
    provided_from = forms.DateField(label=_("Provided on or after"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}))
    provided_to = forms.DateField(label=_("Provided on or before"), required=False,
                                  widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, societies: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["society"].choices = [("", "—")] + [(s.pk, s.name) for s in societies]  # type: ignore[attr-defined]

    def filters(self) -> ProvisionFilters:
        if not self.is_valid():
            return ProvisionFilters()
        data = self.cleaned_data
        return ProvisionFilters(
            society=data.get("society"), q=data.get("q") or "", legal_basis=data.get("legal_basis") or "",
            provided_from=data.get("provided_from"), provided_to=data.get("provided_to"),
        )


class UsageReportForm(forms.Form):
    progress = forms.CharField(label=_("Progress of the research"), widget=forms.Textarea(attrs={"rows": 4}),
                               required=False, help_text=_("Cases analysed, state of the analysis."))
    deviations = forms.CharField(label=_("Non-compliance, deviations or leaks"), required=False,
                                 widget=forms.Textarea(attrs={"rows": 3}), help_text=_("Write “none” if there were none."))
    user_changes = forms.CharField(label=_("Users added or removed"), required=False,
                                   widget=forms.Textarea(attrs={"rows": 2}), help_text=_("Write “none” if there were none."))
    security_recheck = forms.CharField(label=_("Security measures re-checked"), required=False,
                                       widget=forms.Textarea(attrs={"rows": 3}))
    results_summary = forms.CharField(label=_("Summary of results"), required=False,
                                      widget=forms.Textarea(attrs={"rows": 4}))
    deletion_date = forms.DateField(label=_("Data deleted on"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}))
    deletion_method = forms.CharField(label=_("How the data (and intermediate files) were deleted"), required=False,
                                      widget=forms.Textarea(attrs={"rows": 3}))
    deletion_certificate = forms.FileField(label=_("Deletion certificate (PDF or image)"), required=False)
    stop_reason = forms.CharField(label=_("Why the research stopped"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    registry_number = forms.CharField(
        label=_("Registration of results (jRCT or UMIN-CTR number)"), required=False, max_length=20,
        help_text=_("For a registered study: jRCT1234567890, jRCTs031180001 or UMIN000012345."))
    retained_items = forms.CharField(
        label=_("What is kept after the end"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Leave empty when everything was deleted."))
    retention_reason = forms.CharField(label=_("Why it is kept"), required=False,
                                       widget=forms.Textarea(attrs={"rows": 2}))
    retained_until = forms.DateField(label=_("Kept until"), required=False,
                                     widget=forms.DateInput(attrs={"type": "date"}))

    FINAL_FIELDS = ("registry_number", "retained_items", "retention_reason", "retained_until",
                    "deletion_date", "deletion_method", "deletion_certificate")

    def __init__(self, *args: Any, report: UsageReport, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.report = report
        self.end_of_use = report.kind in UsageReport.FINAL_KINDS
        if not self.end_of_use:
            for name in self.FINAL_FIELDS:
                del self.fields[name]
        if report.kind != UsageReport.Kind.STOP:
            del self.fields["stop_reason"]
        else:
            self.fields["stop_reason"].initial = report.stop_reason
        for index in range(1, OUTPUT_ROWS + 1):
            self.fields[f"output_{index}_kind"] = forms.ChoiceField(
                label=_("Kind"), required=False, choices=_kind_choices())
            self.fields[f"output_{index}_title"] = forms.CharField(label=_("Title"), required=False, max_length=500)
            self.fields[f"output_{index}_doi"] = forms.CharField(label=_("DOI"), required=False, max_length=200)
            self.fields[f"output_{index}_number"] = forms.CharField(
                label=_("Application or approval number"), required=False, max_length=100)
            self.fields[f"output_{index}_citation"] = forms.CharField(
                label=_("Citation of the dataset in the output"), required=False, max_length=500)

    def output_rows(self) -> list[list[forms.BoundField]]:
        return [
            [self[f"output_{index}_{part}"] for part in OUTPUT_PARTS]
            for index in range(1, OUTPUT_ROWS + 1)
        ]

    def main_fields(self) -> list[forms.BoundField]:
        names = ["progress", "deviations", "user_changes", "security_recheck", "results_summary"]
        if "stop_reason" in self.fields:
            names.insert(0, "stop_reason")
        return [self[name] for name in names]

    def after_end_fields(self) -> list[forms.BoundField]:
        if not self.end_of_use:
            return []
        return [self[name] for name in ("registry_number", "retained_items", "retention_reason", "retained_until")]

    def deletion_fields(self) -> list[forms.BoundField]:
        if not self.end_of_use:
            return []
        return [self[name] for name in ("deletion_date", "deletion_method", "deletion_certificate")]

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        outputs = [
            {part: data.get(f"output_{index}_{part}") or "" for part in OUTPUT_PARTS}
            for index in range(1, OUTPUT_ROWS + 1)
        ]
        fields: dict[str, Any] = {
            name: data.get(name) or "" for name in
            ("progress", "deviations", "user_changes", "security_recheck", "results_summary")
        }
        fields["outputs"] = outputs
        if self.end_of_use:
            fields["deletion_date"] = data.get("deletion_date")
            fields["deletion_method"] = data.get("deletion_method") or ""
            fields["deletion_certificate"] = data.get("deletion_certificate")
            for name in ("registry_number", "retained_items", "retention_reason"):
                fields[name] = data.get(name) or ""
            fields["retained_until"] = data.get("retained_until")
        if "stop_reason" in self.fields:
            fields["stop_reason"] = data.get("stop_reason") or ""
        return fields

    def add_service_errors(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for field, messages in error.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        else:
            self.add_error(None, error.messages)


class StopForm(forms.Form):
    reason = forms.CharField(label=_("Why the research stopped"), widget=forms.Textarea(attrs={"rows": 3}))

    def add_service_errors(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for field, messages in error.message_dict.items():
                self.add_error("reason" if field == "stop_reason" else None, messages)
        else:
            self.add_error(None, error.messages)
