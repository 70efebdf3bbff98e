"""The ethics review over the API: every action of the pages, under /api/v1/ethics/protocols/.

Each endpoint asks the pages' own permission policy first (``Standing`` of ``portal.ethics.permissions``:
applicant, member, secretariat, chair, head of the institution) — an outsider gets 404, a person
who sees the protocol without the role the action needs gets 403 — then calls the one service the
page calls. What the service refuses changes nothing and answers 409 with its translated message
(wrong state or a rule of the workflow), bad input 400 with the messages by field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.accounts.models import Organization, User
from portal.core.api import call_service
from portal.ethics import services
from portal.ethics.api import ProtocolList
from portal.ethics.items import PROTOCOL_ITEMS
from portal.ethics.models import (
    CommitteeMembership,
    Decision,
    EthicsCommittee,
    OrganizationEntry,
    Protocol,
    ProtocolAttachment,
    ProtocolVersion,
    Review,
    Vote,
)
from portal.ethics.permissions import REFUSALS, Standing, _review_of
from portal.ethics.permissions import _standing as page_standing
from portal.societies.models import Society

# --- The page's permission policy ----------------------------------------------------------------


def _standing(request: Request, pk: int, allowed: Callable[[Standing], bool]) -> Standing:
    """The pages' own check: 404 unless the caller may see the protocol, 403 without the role."""
    return page_standing(request, pk, allowed)  # type: ignore[arg-type]


def applicant(s: Standing) -> bool:
    return s.is_applicant


def secretariat(s: Standing) -> bool:
    return s.is_secretariat


def member(s: Standing) -> bool:
    return s.is_member


def chair(s: Standing) -> bool:
    return s.is_chair


def chair_or_head(s: Standing) -> bool:
    return s.is_chair or s.is_head


def head(s: Standing) -> bool:
    return s.is_head


# --- Serializers ---------------------------------------------------------------------------------


class EthicsProtocolStateSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """Where the protocol stands after the action."""

    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Protocol
        fields = ["id", "number", "status", "latest_version"]
        read_only_fields = fields

    def get_latest_version(self, protocol: Protocol) -> int:
        return services.latest_version(protocol).number


class EthicsProtocolCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    committee = serializers.SlugRelatedField(slug_field="slug", queryset=EthicsCommittee.objects.all())
    institution = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.all(), help_text="Id of an institution the caller belongs to.")
    title = serializers.CharField(max_length=500)
    kind = serializers.ChoiceField(choices=Protocol.Kind.choices, required=False, default=Protocol.Kind.RESEARCH)

    def validate_institution(self, institution: Organization) -> Organization:
        # As the page's form: only the institutions the caller belongs to are offered.
        if not Organization.objects.filter(pk=institution.pk, memberships__user=self.context["request"].user).exists():
            raise serializers.ValidationError(_("You can only apply for an institution you belong to."))
        return institution


class EthicsItemInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    body = serializers.CharField(allow_blank=True, required=False, default="")
    not_applicable_reason = serializers.CharField(allow_blank=True, required=False, default="")


class EthicsOrganizationEntrySerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A row of item ② (研究機関の名称及び研究者等の氏名): institution × person × role."""

    institution_name = serializers.CharField(max_length=200)
    institution_role = serializers.ChoiceField(choices=OrganizationEntry.InstitutionRole.choices)
    person_name = serializers.CharField(max_length=200)
    person_role = serializers.ChoiceField(choices=OrganizationEntry.PersonRole.choices)
    user = serializers.SlugRelatedField(
        slug_field="email", queryset=User.objects.all(), required=False, allow_null=True, default=None,
        help_text="The person's portal account (e-mail), so that a committee member named here is recused.")


class EthicsDraftSerializer(serializers.Serializer):  # type: ignore[type-arg]
    organization_entries = EthicsOrganizationEntrySerializer(
        many=True, required=False, help_text="Item ② as rows (replaces the rows).")
    fields = serializers.DictField(
        required=False, help_text="Fields of the version, by name (as on the edit page): "
        + ", ".join(services.VERSION_FIELDS))
    items = serializers.DictField(
        child=EthicsItemInputSerializer(), required=False,
        help_text="The guideline's items by key: " + ", ".join(spec.key for spec in PROTOCOL_ITEMS))
    named_researchers = serializers.ListField(
        child=serializers.EmailField(), required=False,
        help_text="E-mail addresses of the researchers named in the protocol (replaces the list).")
    societies = serializers.ListField(
        child=serializers.SlugField(), required=False, help_text="Slugs of the societies involved (replaces the list).")

    def validate_named_researchers(self, emails: list[str]) -> list[User]:
        wanted = {email.strip().lower() for email in emails}
        users = list(User.objects.filter(email__in=wanted))
        unknown = sorted(wanted - {user.email.lower() for user in users})
        if unknown:
            raise serializers.ValidationError(_("No account has these addresses: %(emails)s") % {"emails": ", ".join(unknown)})
        return users

    def validate_societies(self, slugs: list[str]) -> list[Society]:
        societies = list(Society.objects.filter(slug__in=slugs))
        unknown = sorted(set(slugs) - {society.slug for society in societies})
        if unknown:
            raise serializers.ValidationError(_("Unknown societies: %(slugs)s") % {"slugs": ", ".join(unknown)})
        return societies


class EthicsAttachmentSerializer(serializers.Serializer):  # type: ignore[type-arg]
    kind = serializers.ChoiceField(choices=ProtocolAttachment.Kind.choices)
    file = serializers.FileField()


class EthicsAttachmentResultSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = ProtocolAttachment
        fields = ["id", "kind", "sha256"]
        read_only_fields = fields


class EthicsReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField()


class EthicsSummarySerializer(serializers.Serializer):  # type: ignore[type-arg]
    summary = serializers.CharField()


# The kinds of version an applicant may open on an active protocol (named in the schema's enums).
AMENDMENT_KINDS = [
    (ProtocolVersion.Kind.MINOR_AMENDMENT.value, ProtocolVersion.Kind.MINOR_AMENDMENT.label),
    (ProtocolVersion.Kind.MAJOR_AMENDMENT.value, ProtocolVersion.Kind.MAJOR_AMENDMENT.label),
]


class EthicsAmendmentSerializer(serializers.Serializer):  # type: ignore[type-arg]
    kind = serializers.ChoiceField(choices=AMENDMENT_KINDS)
    summary = serializers.CharField()


class EthicsConditionsAnswerSerializer(serializers.Serializer):  # type: ignore[type-arg]
    answer = serializers.CharField()


class EthicsConditionsVerifySerializer(serializers.Serializer):  # type: ignore[type-arg]
    accepted = serializers.BooleanField(help_text="Whether the answer meets the conditions.")
    note = serializers.CharField(required=False, allow_blank=True, default="")


class EthicsCompletionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    report = serializers.CharField()


class EthicsPeriodicReportSerializer(serializers.Serializer):  # type: ignore[type-arg]
    period_end = serializers.DateField()
    subjects_enrolled = serializers.IntegerField(min_value=0)
    body = serializers.CharField()


class EthicsHeadDecisionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    permitted = serializers.BooleanField()
    conditions = serializers.CharField(required=False, allow_blank=True, default="")
    reasons = serializers.CharField(required=False, allow_blank=True, default="")


class EthicsReviewOpenSerializer(serializers.Serializer):  # type: ignore[type-arg]
    mode = serializers.ChoiceField(choices=Review.Mode.choices)
    expedited_ground = serializers.ChoiceField(
        choices=Review.ExpeditedGround.choices, required=False, allow_blank=True, default="")
    meeting_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    meeting_format = serializers.ChoiceField(
        choices=[("in_person", "In person"), ("web", "Web meeting")], required=False, allow_blank=True, default="")


class EthicsCommentInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    item_key = serializers.ChoiceField(
        choices=[spec.key for spec in PROTOCOL_ITEMS], required=False, allow_blank=True, default="",
        help_text="The item commented on; empty for the protocol as a whole.")
    body = serializers.CharField()
    for_applicant = serializers.BooleanField(required=False, default=False)


class EthicsVoteSerializer(serializers.Serializer):  # type: ignore[type-arg]
    choice = serializers.ChoiceField(choices=Vote.Choice.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class EthicsAttendanceSerializer(serializers.Serializer):  # type: ignore[type-arg]
    members = serializers.ListField(
        child=serializers.IntegerField(), help_text="Ids of the committee memberships (voting members) present.")


class EthicsDecisionInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    outcome = serializers.ChoiceField(choices=Decision.Outcome.choices)
    method = serializers.ChoiceField(choices=Decision.Method.choices)
    reasons = serializers.CharField()
    conditions = serializers.CharField(required=False, allow_blank=True, default="")
    approved_until = serializers.DateField(required=False, allow_null=True, default=None)


class EthicsNoncomplianceReportSerializer(serializers.Serializer):  # type: ignore[type-arg]
    body = serializers.CharField(help_text="What happened and what was done.")


class EthicsNoncomplianceOpinionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    opinion = serializers.CharField()


class EthicsConflictSerializer(serializers.Serializer):  # type: ignore[type-arg]
    has_conflict = serializers.BooleanField()
    details = serializers.CharField(required=False, allow_blank=True, default="")


class EthicsExplanationSerializer(serializers.Serializer):  # type: ignore[type-arg]
    explanation = serializers.CharField()


class EthicsNotifiedOnSerializer(serializers.Serializer):  # type: ignore[type-arg]
    on = serializers.DateField(help_text="The day the committee's opinion reached the head (意見通知日).")


# --- Views ---------------------------------------------------------------------------------------


def _state(pk: int) -> Response:
    return Response(EthicsProtocolStateSerializer(Protocol.objects.get(pk=pk)).data)


def _action(
    name: str, doc: str, allowed: Callable[[Standing], bool],
    call: Callable[[Standing, dict[str, Any]], object], body: type[serializers.Serializer] | None = None,  # type: ignore[type-arg]
) -> type[APIView]:
    """An endpoint that checks the standing, parses ``body`` and calls one service."""

    @extend_schema(request=body, responses=EthicsProtocolStateSerializer)
    def post(self: APIView, request: Request, pk: int) -> Response:
        standing = _standing(request, pk, allowed)
        data: dict[str, Any] = {}
        if body is not None:
            parsed = body(data=request.data)
            parsed.is_valid(raise_exception=True)
            data = dict(parsed.validated_data)
        call_service(lambda: call(standing, data), refusals=REFUSALS)
        return _state(pk)

    return type(name, (APIView,), {"post": post, "__doc__": doc, "__module__": __name__})


def _submit(standing: Standing, data: dict[str, Any]) -> object:
    # As the page: one service picks amendment review or a fresh submission (a deferred amendment's
    # revision is submitted anew).
    return services.draft_submit(protocol=standing.protocol, by=standing.user)


class ProtocolListCreate(ProtocolList):
    """The protocols the caller may see (GET); POST starts a draft protocol, whose principal
    investigator the caller becomes."""

    @extend_schema(request=EthicsProtocolCreateSerializer,
                   responses={201: EthicsProtocolStateSerializer})
    def post(self, request: Request) -> Response:
        parsed = EthicsProtocolCreateSerializer(data=request.data, context={"request": request})
        parsed.is_valid(raise_exception=True)
        protocol = call_service(services.protocol_create, refusals=REFUSALS, by=request.user, **parsed.validated_data)
        return Response(EthicsProtocolStateSerializer(protocol).data, status=status.HTTP_201_CREATED)


class ProtocolDraft(APIView):
    """Change the draft version: its fields, its items, the named researchers and the societies."""

    @extend_schema(request=EthicsDraftSerializer, responses=EthicsProtocolStateSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        standing = _standing(request, pk, applicant)
        parsed = EthicsDraftSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(services.protocol_update_draft, refusals=REFUSALS, protocol=standing.protocol,
                     by=standing.user, **parsed.validated_data)
        return _state(pk)


class ProtocolAttachmentAdd(APIView):
    """Attach a document to the draft (multipart: ``kind`` and ``file``)."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(request={"multipart/form-data": EthicsAttachmentSerializer},
                   responses={201: EthicsAttachmentResultSerializer})
    def post(self, request: Request, pk: int) -> Response:
        standing = _standing(request, pk, applicant)
        parsed = EthicsAttachmentSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        attachment = call_service(
            services.attachment_add, refusals=REFUSALS, protocol=standing.protocol,
            kind=parsed.validated_data["kind"], upload=parsed.validated_data["file"], by=standing.user)
        return Response(EthicsAttachmentResultSerializer(attachment).data, status=status.HTTP_201_CREATED)


class PeriodicReportAcknowledge(APIView):
    """The secretariat acknowledges a periodic report."""

    @extend_schema(request=None, responses=EthicsProtocolStateSerializer)
    def post(self, request: Request, pk: int, report_pk: int) -> Response:
        standing = _standing(request, pk, secretariat)
        report = get_object_or_404(standing.protocol.periodic_reports, pk=report_pk)
        call_service(services.periodic_report_acknowledge, refusals=REFUSALS, report=report, by=standing.user)
        return _state(pk)


class NoncomplianceOpinion(APIView):
    """The chair records the committee's opinion on a report of serious non-compliance."""

    @extend_schema(request=EthicsNoncomplianceOpinionSerializer, responses=EthicsProtocolStateSerializer)
    def post(self, request: Request, pk: int, report_pk: int) -> Response:
        standing = _standing(request, pk, chair)
        report = get_object_or_404(standing.protocol.noncompliance_reports, pk=report_pk)
        parsed = EthicsNoncomplianceOpinionSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(services.noncompliance_opinion_record, refusals=REFUSALS, report=report, by=standing.user,
                     **parsed.validated_data)
        return _state(pk)


def _decision_of(standing: Standing) -> Decision:
    decision = getattr(_review_of(standing), "decision", None)
    if decision is None:
        raise services.EthicsRefused(_("The committee has not given its opinion yet."))
    return decision


def _attendance(standing: Standing, data: dict[str, Any]) -> object:
    voters = CommitteeMembership.objects.filter(
        committee_id=standing.protocol.committee_id, active=True,
        role__in=[CommitteeMembership.Role.CHAIR, CommitteeMembership.Role.MEMBER],
    )
    members = list(voters.filter(pk__in=data["members"]))
    unknown = sorted(set(data["members"]) - {m.pk for m in members})
    if unknown:
        raise ValidationError({"members": _("Not voting members of this committee: %(ids)s")
                               % {"ids": ", ".join(map(str, unknown))}})
    return services.attendance_record(review=_review_of(standing), members=members, by=standing.user)


ProtocolSubmit = _action("ProtocolSubmit", "Submit the draft (a new protocol, a revision or an amendment).",
                         applicant, _submit)
ProtocolRevise = _action(
    "ProtocolRevise", "Open a revision of a protocol the committee deferred (継続審査), to resubmit it.",
    applicant, lambda s, d: services.protocol_revise(protocol=s.protocol, by=s.user, **d), EthicsSummarySerializer)
ProtocolWithdraw = _action("ProtocolWithdraw", "The applicant withdraws the protocol.", applicant,
                           lambda s, d: services.protocol_withdraw(protocol=s.protocol, by=s.user))
ConditionsAnswer = _action(
    "ConditionsAnswer", "The applicant answers the conditions of an approval with conditions.", applicant,
    lambda s, d: services.conditions_answer(protocol=s.protocol, by=s.user, **d), EthicsConditionsAnswerSerializer)
ConditionsVerify = _action(
    "ConditionsVerify", "The chair judges the answer to the conditions.", chair,
    lambda s, d: services.conditions_verify(protocol=s.protocol, by=s.user, **d), EthicsConditionsVerifySerializer)
AmendmentStart = _action(
    "AmendmentStart", "Open a draft amendment of an active protocol.", applicant,
    lambda s, d: services.amendment_start(protocol=s.protocol, by=s.user, **d), EthicsAmendmentSerializer)
CompletionReport = _action(
    "CompletionReport", "The applicant reports the completion of the research.", applicant,
    lambda s, d: services.protocol_report_completion(protocol=s.protocol, by=s.user, **d), EthicsCompletionSerializer)
PeriodicReport = _action(
    "PeriodicReport", "The applicant sends the periodic report (定期報告).", applicant,
    lambda s, d: services.periodic_report_submit(protocol=s.protocol, by=s.user, **d), EthicsPeriodicReportSerializer)
NoncomplianceReport = _action(
    "NoncomplianceReport", "The principal investigator or the head reports serious non-compliance (重大な不適合).",
    lambda s: s.is_applicant or s.is_head,
    lambda s, d: services.noncompliance_report_file(protocol=s.protocol, by=s.user, **d),
    EthicsNoncomplianceReportSerializer)
ProtocolSuspend = _action(
    "ProtocolSuspend", "The chair or the head suspends the research.", chair_or_head,
    lambda s, d: services.protocol_suspend(protocol=s.protocol, by=s.user, **d), EthicsReasonSerializer)
ProtocolResume = _action("ProtocolResume", "The chair or the head resumes suspended research.", chair_or_head,
                         lambda s, d: services.protocol_resume(protocol=s.protocol, by=s.user))
ProtocolDiscontinue = _action(
    "ProtocolDiscontinue", "The applicant reports that the research was discontinued (中止).", applicant,
    lambda s, d: services.protocol_discontinue(protocol=s.protocol, by=s.user, **d), EthicsCompletionSerializer)
ProtocolReturn = _action(
    "ProtocolReturn", "The secretariat returns a submitted protocol to the applicant for completion.", secretariat,
    lambda s, d: services.protocol_return_for_completion(protocol=s.protocol, by=s.user, **d), EthicsReasonSerializer)
MinorAmendmentAcknowledge = _action(
    "MinorAmendmentAcknowledge", "The secretariat acknowledges a minor amendment as a notification.", secretariat,
    lambda s, d: services.minor_amendment_acknowledge(protocol=s.protocol, by=s.user))
HeadDecide = _action(
    "HeadDecide", "The head of the institution permits or does not permit the research.", head,
    lambda s, d: services.head_decide(protocol=s.protocol, by=s.user, **d), EthicsHeadDecisionSerializer)
ReviewOpen = _action(
    "ReviewOpen", "The secretariat accepts the submitted version for review and assigns the members.", secretariat,
    lambda s, d: services.review_open(protocol=s.protocol, by=s.user, **d), EthicsReviewOpenSerializer)
ReviewComment = _action(
    "ReviewComment", "A committee member comments on an item or on the protocol as a whole.", member,
    lambda s, d: services.comment_add(review=_review_of(s), by=s.user, **d), EthicsCommentInputSerializer)
ReviewVote = _action(
    "ReviewVote", "A committee member casts (or changes) their vote.", member,
    lambda s, d: services.vote_cast(review=_review_of(s), by=s.user, **d), EthicsVoteSerializer)
ReviewAttendance = _action(
    "ReviewAttendance", "The secretariat records who attended the meeting.",
    lambda s: s.is_member and s.is_secretariat, _attendance, EthicsAttendanceSerializer)
ReviewConflict = _action(
    "ReviewConflict", "A committee member declares whether they have a conflict of interest in this review.",
    member, lambda s, d: services.conflict_declare(review=_review_of(s), by=s.user, **d), EthicsConflictSerializer)
ReviewExplanation = _action(
    "ReviewExplanation", "The secretariat records the researcher's explanation to the committee.",
    lambda s: s.is_member and s.is_secretariat,
    lambda s, d: services.review_explanation_record(review=_review_of(s), by=s.user, **d),
    EthicsExplanationSerializer)
DecisionNotifiedToHead = _action(
    "DecisionNotifiedToHead", "The secretariat records the day the committee's opinion reached the head.",
    lambda s: s.is_member and s.is_secretariat,
    lambda s, d: services.decision_notified_to_head_set(decision=_decision_of(s), by=s.user, **d),
    EthicsNotifiedOnSerializer)
ReviewDecision = _action(
    "ReviewDecision", "The chair records the committee's opinion.", lambda s: s.is_member and s.is_chair,
    lambda s, d: services.decision_record(review=_review_of(s), by=s.user, **d), EthicsDecisionInputSerializer)
