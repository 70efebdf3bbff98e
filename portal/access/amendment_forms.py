"""Forms of the extension and change-of-users pages (延長・変更申請). They parse input; the services decide."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.access.models import Grant, RequestUser
from portal.accounts.models import User

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
ADD_ROLES = {
    "co_investigator": RequestUser.Role.CO_INVESTIGATOR,
    "contractor": RequestUser.Role.CONTRACTOR,
}


class UserChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: User) -> str:
        name = getattr(obj, "full_name", "") or ""
        return f"{name} <{obj.email}>" if name else obj.email


class AmendmentForm(forms.Form):
    new_expires_on = forms.DateField(
        label=_("New last day of use"), required=False, widget=DATE,
        help_text=_("Leave empty unless you ask to extend the period of use."),
    )
    users_to_add = forms.CharField(
        label=_("Users to add"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One user a line: e-mail address, date of research-ethics training (YYYY-MM-DD), and "
                    "optionally \"contractor\" for an analysis contractor. Each must already have an account."),
    )
    users_to_remove = UserChoiceField(
        label=_("Users to remove (at once)"), required=False, queryset=User.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args: Any, grant: Grant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["users_to_remove"].queryset = grant.users.order_by("email")  # type: ignore[attr-defined]

    def clean_users_to_add(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        problems: list[str] = []
        for number, line in enumerate(self.cleaned_data.get("users_to_add", "").splitlines(), start=1):
            parts = [p.strip() for p in line.split(",")]
            if not any(parts):
                continue
            email = parts[0]
            user = User.objects.filter(email__iexact=email, is_active=True).first()
            if user is None:
                problems.append(str(_("Line %(line)s: no active account has the address %(email)s."))
                                % {"line": number, "email": email})
                continue
            training: date | None = None
            if len(parts) > 1 and parts[1]:
                try:
                    training = date.fromisoformat(parts[1])
                except ValueError:
                    problems.append(str(_("Line %(line)s: write the training date as YYYY-MM-DD."))
                                    % {"line": number})
                    continue
            role_word = parts[2].lower() if len(parts) > 2 and parts[2] else "co_investigator"
            if role_word not in ADD_ROLES:
                problems.append(str(_("Line %(line)s: the role is \"contractor\" or empty.")) % {"line": number})
                continue
            rows.append({"user": user, "role": ADD_ROLES[role_word], "ethics_training": training is not None,
                         "ethics_training_date": training})
        if problems:
            raise forms.ValidationError(problems)
        return rows


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Decision"), choices=[("approve", _("Approve")), ("reject", _("Reject"))],
        widget=forms.RadioSelect,
    )
    reasons = forms.CharField(label=_("Reasons"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
                              help_text=_("Required when rejecting; shown to the applicant."))
