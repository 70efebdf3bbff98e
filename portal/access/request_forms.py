"""Forms of the data-access application pages. They parse input; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.access.models import (
    CommitteeVote,
    Custodian,
    Environment,
    LegalBasis,
    ProcessingLevel,
    Purpose,
    RequestComment,
    RequestUser,
    ResearcherNumberKind,
    SecurityAnswer,
    SecurityLevel,
    SocietyReview,
)
from portal.access.security_items import CATEGORY_LABELS, SECURITY_ITEMS
from portal.accounts.models import Organization, User
from portal.datasets.models import DatasetRelease, DatasetStatus
from portal.ethics.fields import ProtocolChoiceField
from portal.ethics.models import Protocol

NAMED_USER_ROWS = 5
EXPECTED_OUTPUT_CHOICES = [
    ("paper", _("Papers")),
    ("ai_model", _("AI models")),
    ("samd", _("Software as a medical device (SaMD)")),
    ("other", _("Other outputs")),
]
YES_NO = [("", "—"), ("yes", _("Yes")), ("no", _("No"))]
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError next to the fields it names, the rest above the form."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def requestable_releases():  # type: ignore[no-untyped-def]
    return (
        DatasetRelease.objects.filter(status=DatasetRelease.Status.AVAILABLE, dataset__status=DatasetStatus.PUBLISHED)
        .select_related("dataset", "dataset__society")
        .order_by("dataset__society__name_ja", "dataset__title_ja", "-version")
    )


class ReleaseChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: DatasetRelease) -> str:
        return f"{obj.dataset.society.name_ja} / {obj.dataset.title_ja} v{obj.version} ({obj.case_count})"


class RequestCreateForm(forms.Form):
    organization = forms.ModelChoiceField(label=_("Applicant organisation"), queryset=Organization.objects.none(),
                                          empty_label=None)
    title = forms.CharField(label=_("Research title"), max_length=300)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = Organization.objects.filter(memberships__user=user).distinct()


def _user_by_email(email: str) -> User | None:
    return User.objects.filter(email__iexact=email.strip()).first() if email.strip() else None


class RequestForm(forms.Form):
    """The whole application, in the sections of REGULATION.md a6 and a7."""

    SECTIONS = (
        ("team", _("Applicant and team"), ["organization", "principal_investigator_email", "pi_title",
                                           "pi_researcher_number_kind", "pi_researcher_number", "pi_research_record",
                                           "signatory_email"]),
        ("head", _("Head of the applicant's institution"), ["head_name", "head_title", "head_email"]),
        ("approvals", _("Ethics approval"), ["ethics_protocol", "ethics_committee_name", "ethics_approval_number",
                                             "ethics_approval_date", "ethics_approval_file"]),
        ("purpose", _("Purpose and legal basis"), ["title", "summary", "purpose", "expected_outputs", "legal_basis",
                                                   "joint_research_number", "joint_research_parties",
                                                   "joint_research_date"]),
        ("data", _("Data requested"), ["releases", "wants_linkage", "processing_level"]),
        ("environment", _("Environment"), ["environment", "security_level", "foreign_access", "foreign_country"]),
        ("period", _("Period of use"), ["period_start", "period_end"]),
    )

    organization = forms.ModelChoiceField(label=_("Applicant organisation"), queryset=Organization.objects.none(),
                                          empty_label=None)
    principal_investigator_email = forms.EmailField(label=_("Principal investigator (e-mail)"), required=False)
    pi_title = forms.CharField(label=_("Principal investigator's title"), max_length=200, required=False)
    pi_researcher_number_kind = forms.ChoiceField(
        label=_("Kind of researcher number"), choices=[("", "—"), *ResearcherNumberKind.choices], required=False)
    pi_researcher_number = forms.CharField(
        label=_("Researcher number"), max_length=100, required=False,
        help_text=_("e-Rad researcher number (8 digits) or researchmap ID."))
    pi_research_record = forms.CharField(
        label=_("Research record (related papers)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    head_name = forms.CharField(label=_("Name of the head of the institution"), max_length=200, required=False,
                                help_text=_("The person who permits the research at your institution."))
    head_title = forms.CharField(label=_("Title of the head of the institution"), max_length=200, required=False)
    head_email = forms.EmailField(label=_("E-mail of the head of the institution"), required=False)
    security_level = forms.ChoiceField(
        label=_("Security level claimed"), choices=[("", "—"), *SecurityLevel.choices], required=False,
        help_text=_("The level of the NBDC security guideline for data users. The self-assessment below must "
                    "show every item the level needs as in place."))
    signatory_email = forms.EmailField(
        label=_("Authorised signatory (e-mail)"), required=False,
        help_text=_("The representative of the organisation, or their delegate, who signs the agreements."))
    title = forms.CharField(label=_("Research title"), max_length=300)
    summary = forms.CharField(label=_("Summary"), widget=forms.Textarea(attrs={"rows": 4}), required=False)
    purpose = forms.ChoiceField(label=_("Purpose of use"), choices=[("", "—"), *Purpose.choices], required=False)
    expected_outputs = forms.MultipleChoiceField(label=_("Expected outputs"), choices=EXPECTED_OUTPUT_CHOICES,
                                                 widget=forms.CheckboxSelectMultiple, required=False)
    legal_basis = forms.ChoiceField(
        label=_("Legal basis for the provision"), choices=[("", "—"), *LegalBasis.choices], required=False,
        help_text=_("On what ground under the ethics guideline and the APPI the society may provide the data to "
                    "you; it is printed on the provision record."))
    joint_research_number = forms.CharField(label=_("Joint-research agreement number"), max_length=100,
                                            required=False)
    joint_research_parties = forms.CharField(label=_("Joint-research agreement parties"), required=False,
                                             widget=forms.Textarea(attrs={"rows": 2}))
    joint_research_date = forms.DateField(label=_("Joint-research agreement date"), required=False, widget=DATE)
    ethics_protocol = ProtocolChoiceField(
        label=_("Ethics approval in the portal"), required=False,
        help_text=_("A protocol of yours approved by an ethics committee in this portal; otherwise give the "
                    "committee, approval number and date below."))
    ethics_committee_name = forms.CharField(label=_("Ethics committee (outside the portal)"), max_length=200,
                                            required=False)
    ethics_approval_number = forms.CharField(label=_("Approval number"), max_length=100, required=False)
    ethics_approval_date = forms.DateField(label=_("Approval date"), required=False, widget=DATE)
    ethics_approval_file = forms.FileField(label=_("Approval notice (PDF)"), required=False)
    releases = ReleaseChoiceField(label=_("Releases requested"), queryset=DatasetRelease.objects.none(),
                                  required=False, widget=forms.CheckboxSelectMultiple)
    wants_linkage = forms.BooleanField(label=_("Linked records across societies requested"), required=False)
    processing_level = forms.ChoiceField(
        label=_("Required processing level"), choices=[("", "—"), *ProcessingLevel.choices], required=False,
        help_text=_("The form in which your research needs the data: pseudonymised (subjects can be followed by "
                    "a code), anonymised, or statistics only."))
    environment = forms.ChoiceField(label=_("Environment"), choices=[("", "—"), *Environment.choices],
                                    required=False)
    foreign_access = forms.BooleanField(label=_("Access or transfer from abroad"), required=False)
    foreign_country = forms.CharField(label=_("Country"), max_length=100, required=False)
    period_start = forms.DateField(label=_("Period from"), required=False, widget=DATE)
    period_end = forms.DateField(label=_("Period to"), required=False, widget=DATE)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = Organization.objects.filter(memberships__user=user).distinct()
        self.fields["ethics_protocol"].queryset = Protocol.objects.filter(
            principal_investigator=user, number__isnull=False).order_by("-id")
        self.fields["releases"].queryset = requestable_releases()
        for index in range(NAMED_USER_ROWS):
            self.fields[f"user_{index}_email"] = forms.EmailField(label=_("E-mail"), required=False)
            self.fields[f"user_{index}_role"] = forms.ChoiceField(
                label=_("Role"), choices=RequestUser.Role.choices, required=False)
            self.fields[f"user_{index}_training"] = forms.ChoiceField(
                label=_("Research-ethics training completed"), choices=YES_NO, required=False)
            self.fields[f"user_{index}_training_date"] = forms.DateField(
                label=_("Training date"), required=False, widget=DATE)
        for item in SECURITY_ITEMS:
            self.fields[f"sec_{item.key}_status"] = forms.ChoiceField(
                label=item.label_ja, choices=[("", "—"), *SecurityAnswer.Status.choices], required=False)
            self.fields[f"sec_{item.key}_evidence"] = forms.CharField(
                label=_("Evidence"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
            self.fields[f"sec_{item.key}_comment"] = forms.CharField(label=_("Comment"), required=False)
        self.fields["named_users"] = forms.CharField(required=False, widget=forms.HiddenInput)
        self.fields["security_answers"] = forms.CharField(required=False, widget=forms.HiddenInput)
        self.fields["ethics_approval"] = forms.CharField(required=False, widget=forms.HiddenInput)
        self.fields["joint_research"] = forms.CharField(required=False, widget=forms.HiddenInput)
        self.fields["period"] = forms.CharField(required=False, widget=forms.HiddenInput)
        self.fields["head"] = forms.CharField(required=False, widget=forms.HiddenInput)

    @staticmethod
    def initial_for(access_request) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        r = access_request
        initial: dict[str, Any] = {
            name: getattr(r, name) for name in (
                "title", "summary", "purpose", "expected_outputs", "legal_basis", "joint_research_number",
                "joint_research_parties", "joint_research_date", "ethics_committee_name", "ethics_approval_number",
                "ethics_approval_date", "wants_linkage", "processing_level", "environment", "foreign_access",
                "foreign_country", "period_start", "period_end", "pi_title", "pi_researcher_number_kind",
                "pi_researcher_number", "pi_research_record", "head_name", "head_title", "head_email",
                "security_level",
            )
        }
        initial |= {
            "organization": r.organization_id, "ethics_protocol": r.ethics_protocol_id,
            "principal_investigator_email": r.principal_investigator.email,
            "signatory_email": r.signatory.email if r.signatory_id else "",
            "releases": [release.pk for release in r.releases.all()],
        }
        for index, row in enumerate(r.named_users.select_related("user").order_by("id")[:NAMED_USER_ROWS]):
            initial[f"user_{index}_email"] = row.user.email
            initial[f"user_{index}_role"] = row.role
            initial[f"user_{index}_training"] = "yes" if row.ethics_training else "no"
            initial[f"user_{index}_training_date"] = row.ethics_training_date
        for answer in r.security_answers.all():
            initial[f"sec_{answer.item}_status"] = answer.status
            initial[f"sec_{answer.item}_evidence"] = answer.evidence
            initial[f"sec_{answer.item}_comment"] = answer.comment
        return initial

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("principal_investigator_email", "signatory_email"):
            email = data.get(name) or ""
            user = _user_by_email(email)
            if email and user is None:
                self.add_error(name, _("No account uses this e-mail address."))
            data[name.removesuffix("_email")] = user
        rows = []
        for index in range(NAMED_USER_ROWS):
            email = data.get(f"user_{index}_email") or ""
            if not email:
                continue
            user = _user_by_email(email)
            if user is None:
                self.add_error(f"user_{index}_email", _("No account uses this e-mail address."))
                continue
            rows.append({"user": user, "role": data.get(f"user_{index}_role") or RequestUser.Role.CO_INVESTIGATOR,
                         "ethics_training": data.get(f"user_{index}_training") == "yes",
                         "ethics_training_date": data.get(f"user_{index}_training_date")})
        data["named_user_rows"] = rows
        data["security"] = {
            item.key: {"status": data.get(f"sec_{item.key}_status") or "",
                       "evidence": data.get(f"sec_{item.key}_evidence") or "",
                       "comment": data.get(f"sec_{item.key}_comment") or ""}
            for item in SECURITY_ITEMS
        }
        return data

    def service_fields(self) -> dict[str, Any]:
        d = self.cleaned_data
        fields = {name: d.get(name) for name in (
            "organization", "title", "summary", "purpose", "legal_basis", "joint_research_number",
            "joint_research_parties", "joint_research_date", "ethics_protocol", "ethics_committee_name",
            "ethics_approval_number", "ethics_approval_date", "wants_linkage", "processing_level", "environment",
            "foreign_access", "foreign_country", "period_start", "period_end", "pi_title",
            "pi_researcher_number_kind", "pi_researcher_number", "pi_research_record", "head_name", "head_title",
            "head_email", "security_level",
        )}
        fields = {k: ("" if v is None and k not in {"joint_research_date", "ethics_protocol", "ethics_approval_date",
                                                     "period_start", "period_end"} else v)
                  for k, v in fields.items()}
        fields["expected_outputs"] = list(d.get("expected_outputs") or [])
        if d.get("principal_investigator"):
            fields["principal_investigator"] = d["principal_investigator"]
        fields["signatory"] = d.get("signatory")
        if d.get("ethics_approval_file"):
            fields["ethics_approval_file"] = d["ethics_approval_file"]
        return fields

    def team_rows(self) -> list[list[forms.BoundField]]:
        return [[self[f"user_{i}_{part}"] for part in ("email", "role", "training", "training_date")]
                for i in range(NAMED_USER_ROWS)]

    def security_groups(self) -> list[tuple[str, list[tuple[Any, forms.BoundField, forms.BoundField, forms.BoundField]]]]:
        groups = []
        for category, label in CATEGORY_LABELS.items():
            rows = [(item, self[f"sec_{item.key}_status"], self[f"sec_{item.key}_evidence"],
                     self[f"sec_{item.key}_comment"]) for item in SECURITY_ITEMS if item.category == category]
            groups.append((label, rows))
        return groups

    def sections(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        return [(key, label, [self[name] for name in names]) for key, label, names in self.SECTIONS]


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}))


class ScreenForm(forms.Form):
    comment = forms.CharField(label=_("Note for the committee"), required=False,
                              widget=forms.Textarea(attrs={"rows": 3}))


class VoteForm(forms.Form):
    vote = forms.ChoiceField(label=_("Your vote"), choices=CommitteeVote.Vote.choices)
    comment = forms.CharField(label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 3}))


class DecisionForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Decision"), choices=[
        (SocietyReview.Status.APPROVED, SocietyReview.Status.APPROVED.label),
        (SocietyReview.Status.APPROVED_WITH_CONDITIONS, SocietyReview.Status.APPROVED_WITH_CONDITIONS.label),
        (SocietyReview.Status.REJECTED, SocietyReview.Status.REJECTED.label),
    ])
    conditions = forms.CharField(label=_("Conditions"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    reasons = forms.CharField(label=_("Reasons"), required=False, widget=forms.Textarea(attrs={"rows": 3}))


class CommentForm(forms.Form):
    body = forms.CharField(label=_("Comment"), widget=forms.Textarea(attrs={"rows": 3}))
    audience = forms.ChoiceField(label=_("Who may read it"), choices=RequestComment.Audience.choices)


class SignForm(forms.Form):
    signatory_name = forms.CharField(label=_("Your name"), max_length=200)
    signatory_title = forms.CharField(label=_("Your title"), max_length=200)
    agree = forms.BooleanField(label=_("I have read the terms of every agreement above and sign them for the "
                                       "organisation."))


class CountersignForm(forms.Form):
    countersigner_name = forms.CharField(label=_("Your name"), max_length=200)
    countersigner_title = forms.CharField(label=_("Your title"), max_length=200)
    record_custodian = forms.ChoiceField(
        label=_("Custodian of the provision record"), choices=Custodian.choices, initial=Custodian.PROVIDER,
        widget=forms.RadioSelect, required=False,
        help_text=_("The society keeps the provision record, or delegates its custody to the recipient."))

    def clean_record_custodian(self) -> str:
        return self.cleaned_data.get("record_custodian") or Custodian.PROVIDER
