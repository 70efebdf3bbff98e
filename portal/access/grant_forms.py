"""The filter of a grant's file list (a GET form: it only parses)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.core.vocabulary import Modality


class GrantFileFilterForm(forms.Form):
    path = forms.CharField(label=_("Path contains"), max_length=200, required=False)
    modality = forms.ChoiceField(label=_("Modality"), choices=[("", _("Any modality")), *Modality.choices],
                                 required=False)
    subject = forms.CharField(
        label=_("Subject (pseudonymous ID)"), max_length=32, required=False,
        help_text=_("The whole pseudonymous subject ID or its first characters."),
    )


class GrantTrainingForm(forms.Form):
    """A renewed research-ethics training of one named user of the grant."""

    user = forms.IntegerField(widget=forms.HiddenInput)
    training_date = forms.DateField(label=_("Date of the renewed training"),
                                    widget=forms.DateInput(attrs={"type": "date"}))
