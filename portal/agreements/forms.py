"""Forms of the agreement pages; the services decide, the forms only parse."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.agreements.models import AgreementTemplate, AgreementTemplateVersion
from portal.agreements.services import VERSION_FIELDS
from portal.societies.models import Society

_TEXTAREA = forms.Textarea(attrs={"rows": 4})
_LONG_TEXTAREA = forms.Textarea(attrs={"rows": 16})


class VersionForm(forms.ModelForm):
    """The full text and every structured term of a draft version."""

    class Meta:
        model = AgreementTemplateVersion
        fields = list(VERSION_FIELDS)
        widgets = {
            "body_ja": _LONG_TEXTAREA,
            "body_en": _LONG_TEXTAREA,
            "change_summary": _TEXTAREA,
            "publication_duties_ja": _TEXTAREA,
            "fee_terms_ja": _TEXTAREA,
            "security_obligations_ja": _TEXTAREA,
            "benefit_sharing_ja": _TEXTAREA,
        }

    def __init__(self, *args: Any, with_change_summary: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_change_summary:
            del self.fields["change_summary"]
        # Drafts may be saved half-written; publishing checks the text and every term.
        for name in ("body_ja", "publication_duties_ja", "fee_terms_ja", "security_obligations_ja",
                     "benefit_sharing_ja"):
            self.fields[name].required = False

    def validate_unique(self) -> None:
        pass

    def _post_clean(self) -> None:
        # The service validates and saves; the instance is not touched here.
        pass

    def service_fields(self) -> dict[str, Any]:
        return {name: value for name, value in self.cleaned_data.items() if name in VERSION_FIELDS}


class TemplateCreateForm(VersionForm):
    """A new template: its society, kind and names, then its first draft."""

    society = forms.ModelChoiceField(label=_("Society"), queryset=Society.objects.none(), empty_label=None)
    kind = forms.ChoiceField(label=_("Kind"), choices=AgreementTemplate.Kind.choices)
    name_ja = forms.CharField(label=_("Name (Japanese)"), max_length=200)
    name_en = forms.CharField(label=_("Name (English)"), max_length=200, required=False)

    field_order = ["society", "kind", "name_ja", "name_en"]

    def __init__(self, *args: Any, societies: Any, **kwargs: Any) -> None:
        super().__init__(*args, with_change_summary=False, **kwargs)
        society = self.fields["society"]
        assert isinstance(society, forms.ModelChoiceField)
        society.queryset = societies
