"""Data-access applications over the API: every action of the pages, under /api/v1/access/requests/.

Applying (create, change, submit, withdraw, comment), the steward's screening, return and
revocation, the data access committee's votes and decision, the signatory's signature and the
society admin's countersignature (which starts the grant). Each endpoint asks what the page asks
(``requests_visible_to`` → 404, ``request_standing`` → 403 without the role for that society) and
calls the one service the page calls; what the service refuses changes nothing and answers 409 with
its translated message, bad input 400 with the messages by field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.access.models import (
    AccessRequest,
    CommitteeVote,
    Custodian,
    RequestComment,
    RequestUser,
    SocietyReview,
)
from portal.access.request_api import (
    AccessRequestDetail,
    AccessRequestDetailSerializer,
    AccessRequestList,
)
from portal.access.request_forms import requestable_releases
from portal.access.request_selectors import Standing
from portal.access.request_views import _society_for
from portal.access.request_views import _standing as page_standing
from portal.access.services import requests as services
from portal.access.workflow import AccessRefused
from portal.accounts.models import Organization, User
from portal.core.api import call_service
from portal.ethics.models import Protocol
from portal.lib.client_ip import client_ip
from portal.societies.models import Society

REFUSALS = (AccessRefused,)

# --- The page's permission policy ----------------------------------------------------------------


def _standing(request: Request, pk: int) -> Standing:
    """The pages' own check: 404 unless the caller may see the application."""
    return page_standing(request, pk)  # type: ignore[arg-type]


def _society(standing: Standing, society_id: int, allowed: set[int]) -> Society:
    """The society whose review the caller acts on: 403 without the role there, 404 if not reviewing."""
    if society_id not in allowed:
        raise PermissionDenied
    return _society_for(standing, society_id)


def _detail(request: Request, pk: int, code: int = status.HTTP_200_OK) -> Response:
    access_request = AccessRequest.objects.select_related("organization").get(pk=pk)
    return Response(AccessRequestDetailSerializer(access_request, context={"request": request}).data, status=code)


# --- Serializers ---------------------------------------------------------------------------------

# The application's own answers, typed as the model types them; the relations come separately.
_RELATIONS = {"organization", "principal_investigator", "signatory", "ethics_protocol", "ethics_approval_file"}
_SCALAR_FIELDS = sorted(services.UPDATABLE_FIELDS - _RELATIONS)


def _user_by_email(email: str) -> User:
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise serializers.ValidationError(_("No account uses this e-mail address."))
    return user


class AccessNamedUserInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=RequestUser.Role.choices, required=False,
                                   default=RequestUser.Role.CO_INVESTIGATOR)
    ethics_training = serializers.BooleanField(required=False, default=False)
    ethics_training_date = serializers.DateField(required=False, allow_null=True, default=None)


class AccessSecurityAnswerInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    status = serializers.CharField(allow_blank=True, help_text="Empty to clear the answer.")
    evidence = serializers.CharField(required=False, allow_blank=True, default="")
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class DataAccessRequestInputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """The application form (every field optional on a change; submission names what is missing)."""

    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.all(), required=False)
    principal_investigator_email = serializers.EmailField(required=False)
    signatory_email = serializers.EmailField(required=False, allow_blank=True)
    ethics_protocol = serializers.PrimaryKeyRelatedField(queryset=Protocol.objects.all(), required=False,
                                                         allow_null=True)
    ethics_approval_file = serializers.FileField(
        required=False, help_text="The approval notice (PDF) of a committee outside the portal (multipart).")
    releases = serializers.ListField(child=serializers.IntegerField(), required=False,
                                     help_text="Ids of the releases requested (replaces the list).")
    named_users = AccessNamedUserInputSerializer(many=True, required=False,
                                                 help_text="The named users (replaces the list).")
    security_answers = serializers.DictField(child=AccessSecurityAnswerInputSerializer(), required=False,
                                             help_text="The security self-assessment by item key.")

    class Meta:
        model = AccessRequest
        fields = ["organization", "principal_investigator_email", "signatory_email", "ethics_protocol",
                  "ethics_approval_file", *_SCALAR_FIELDS, "releases", "named_users", "security_answers"]
        extra_kwargs = {name: {"required": False} for name in _SCALAR_FIELDS}

    def _user(self) -> User:
        return self.context["request"].user

    def validate_organization(self, organization: Organization) -> Organization:
        if not Organization.objects.filter(pk=organization.pk, memberships__user=self._user()).exists():
            raise serializers.ValidationError(_("You can apply only for an organisation you belong to."))
        return organization

    def validate_ethics_protocol(self, protocol: Protocol | None) -> Protocol | None:
        # As the page: one of the caller's own protocols that has a number (was submitted).
        if protocol is not None and not Protocol.objects.filter(
                pk=protocol.pk, principal_investigator=self._user(), number__isnull=False).exists():
            raise serializers.ValidationError(_("Choose one of your own protocols that was submitted."))
        return protocol

    def validate_releases(self, ids: list[int]) -> list[Any]:
        releases = list(requestable_releases().filter(pk__in=ids))
        unknown = sorted(set(ids) - {release.pk for release in releases})
        if unknown:
            raise serializers.ValidationError(_("These releases cannot be requested: %(ids)s")
                                              % {"ids": ", ".join(map(str, unknown))})
        return releases

    def service_kwargs(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        if "principal_investigator_email" in data:
            data["principal_investigator"] = _user_by_email(data.pop("principal_investigator_email"))
        if "signatory_email" in data:
            email = data.pop("signatory_email")
            data["signatory"] = _user_by_email(email) if email else None
        if "named_users" in data:
            data["named_users"] = [
                {"user": _user_by_email(row.pop("email")), **row} for row in data["named_users"]]
        return data


class DataAccessRequestCreateSerializer(DataAccessRequestInputSerializer):
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.all())
    title = serializers.CharField(max_length=300)

    class Meta(DataAccessRequestInputSerializer.Meta):
        fields = ["organization", "title"]
        extra_kwargs: dict[str, Any] = {}


class AccessWithdrawSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class AccessReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField()


class AccessCommentInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    body = serializers.CharField()
    audience = serializers.ChoiceField(choices=RequestComment.Audience.choices)
    society = serializers.IntegerField(required=False, allow_null=True, default=None,
                                       help_text="Id of the society whose review the comment belongs to.")


class AccessScreenSerializer(serializers.Serializer):  # type: ignore[type-arg]
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class AccessVoteSerializer(serializers.Serializer):  # type: ignore[type-arg]
    vote = serializers.ChoiceField(choices=CommitteeVote.Vote.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class AccessDecisionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    outcome = serializers.ChoiceField(choices=[
        (SocietyReview.Status.APPROVED, SocietyReview.Status.APPROVED.label),
        (SocietyReview.Status.APPROVED_WITH_CONDITIONS, SocietyReview.Status.APPROVED_WITH_CONDITIONS.label),
        (SocietyReview.Status.REJECTED, SocietyReview.Status.REJECTED.label),
    ])
    conditions = serializers.CharField(required=False, allow_blank=True, default="")
    reasons = serializers.CharField(required=False, allow_blank=True, default="")


class AccessSignSerializer(serializers.Serializer):  # type: ignore[type-arg]
    signatory_name = serializers.CharField(max_length=200)
    signatory_title = serializers.CharField(max_length=200)
    agree = serializers.BooleanField(help_text="Must be true: the signatory has read and signs every agreement.")

    def validate_agree(self, agree: bool) -> bool:
        if not agree:
            raise serializers.ValidationError(_("Confirm that you have read the terms and sign them."))
        return agree


class AccessCountersignSerializer(serializers.Serializer):  # type: ignore[type-arg]
    countersigner_name = serializers.CharField(max_length=200)
    countersigner_title = serializers.CharField(max_length=200)
    record_custodian = serializers.ChoiceField(
        choices=Custodian.choices, required=False, default=Custodian.PROVIDER,
        help_text="Who keeps the provision record (保管者): the society, or the recipient by its delegation.")


# --- Views ---------------------------------------------------------------------------------------


class AccessRequestListCreate(AccessRequestList):
    """The applications the caller may see (GET); POST starts a draft for one of their organisations."""

    @extend_schema(request=DataAccessRequestCreateSerializer, responses={201: AccessRequestDetailSerializer})
    def post(self, request: Request) -> Response:
        parsed = DataAccessRequestCreateSerializer(data=request.data, context={"request": request})
        parsed.is_valid(raise_exception=True)
        created = call_service(services.access_request_create, refusals=REFUSALS, by=request.user,
                               **parsed.validated_data)
        return _detail(request, created.pk, status.HTTP_201_CREATED)


class AccessRequestDetailUpdate(AccessRequestDetail):
    """One application (GET); PATCH changes a draft or returned application (the applicant only):
    JSON, or multipart for the approval notice."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request=DataAccessRequestInputSerializer, responses=AccessRequestDetailSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        standing = _standing(request, pk)
        if not standing.is_applicant:
            raise PermissionDenied
        parsed = DataAccessRequestInputSerializer(data=request.data, context={"request": request})
        parsed.is_valid(raise_exception=True)
        call_service(services.access_request_update, refusals=REFUSALS, access_request=standing.access_request,
                     by=request.user, **parsed.service_kwargs())
        return _detail(request, pk)


def _action(
    name: str, doc: str, call: Callable[[Request, Standing, dict[str, Any]], object],
    body: type[serializers.Serializer] | None = None,  # type: ignore[type-arg]
) -> type[APIView]:
    """An endpoint on one application: parse ``body``, call (which checks the standing) one service."""

    @extend_schema(request=body, responses=AccessRequestDetailSerializer)
    def post(self: APIView, request: Request, pk: int) -> Response:
        standing = _standing(request, pk)
        data: dict[str, Any] = {}
        if body is not None:
            parsed = body(data=request.data)
            parsed.is_valid(raise_exception=True)
            data = dict(parsed.validated_data)
        call(request, standing, data)
        return _detail(request, pk)

    return type(name, (APIView,), {"post": post, "__doc__": doc, "__module__": __name__})


def _society_action(
    name: str, doc: str, roles: Callable[[Standing], set[int]],
    call: Callable[[Request, Standing, Society, dict[str, Any]], object],
    body: type[serializers.Serializer] | None = None,  # type: ignore[type-arg]
) -> type[APIView]:
    """An endpoint on one society's review of an application, for those in ``roles`` there."""

    @extend_schema(request=body, responses=AccessRequestDetailSerializer)
    def post(self: APIView, request: Request, pk: int, society_id: int) -> Response:
        standing = _standing(request, pk)
        society = _society(standing, society_id, roles(standing))
        data: dict[str, Any] = {}
        if body is not None:
            parsed = body(data=request.data)
            parsed.is_valid(raise_exception=True)
            data = dict(parsed.validated_data)
        call_service(lambda: call(request, standing, society, data), refusals=REFUSALS)
        return _detail(request, pk)

    return type(name, (APIView,), {"post": post, "__doc__": doc, "__module__": __name__})


def _applicant_only(service: Callable[..., object]) -> Callable[[Request, Standing, dict[str, Any]], object]:
    def call(request: Request, standing: Standing, data: dict[str, Any]) -> object:
        if not standing.is_applicant:
            raise PermissionDenied
        return call_service(service, refusals=REFUSALS, access_request=standing.access_request,
                            by=request.user, **data)
    return call


def _comment(request: Request, standing: Standing, data: dict[str, Any]) -> object:
    society_id = data.pop("society")
    society = None
    if society_id is not None:
        society = _society(standing, society_id, {review.society_id for review in standing.reviews})
    return call_service(services.access_request_comment, refusals=REFUSALS,
                        access_request=standing.access_request, society=society, by=request.user, **data)


def _sign(request: Request, standing: Standing, data: dict[str, Any]) -> object:
    if not standing.is_signatory:
        raise PermissionDenied
    return call_service(services.access_request_sign, refusals=REFUSALS, access_request=standing.access_request,
                        signatory_name=data["signatory_name"], signatory_title=data["signatory_title"],
                        ip=client_ip(request._request), by=request.user)


AccessRequestSubmit = _action("AccessRequestSubmit", "The applicant submits the application.",
                              _applicant_only(services.access_request_submit))
AccessRequestWithdraw = _action("AccessRequestWithdraw", "The applicant withdraws the application.",
                                _applicant_only(services.access_request_withdraw), AccessWithdrawSerializer)
AccessRequestComment = _action(
    "AccessRequestComment", "A comment by the applicant or a reviewer (to the audience chosen).", _comment,
    AccessCommentInputSerializer)
AccessRequestSign = _action(
    "AccessRequestSign", "The authorised signatory signs every approving society's data-use agreement.", _sign,
    AccessSignSerializer)
AccessRequestScreen = _society_action(
    "AccessRequestScreen", "The society's data steward passes the application to its data access committee.",
    lambda s: s.steward_society_ids,
    lambda r, s, society, d: services.access_request_screen(
        access_request=s.access_request, society=society, by=r.user, **d),
    AccessScreenSerializer)
AccessRequestReturn = _society_action(
    "AccessRequestReturn", "The society's data steward returns the application to the applicant.",
    lambda s: s.steward_society_ids,
    lambda r, s, society, d: services.access_request_return(
        access_request=s.access_request, society=society, by=r.user, **d),
    AccessReasonSerializer)
AccessRequestRevoke = _society_action(
    "AccessRequestRevoke", "The society's data steward revokes the access it granted.",
    lambda s: s.steward_society_ids,
    lambda r, s, society, d: services.access_request_revoke(
        access_request=s.access_request, society=society, by=r.user, **d),
    AccessReasonSerializer)
AccessRequestVote = _society_action(
    "AccessRequestVote", "A member of the society's data access committee votes (or changes the vote).",
    lambda s: s.committee_society_ids,
    lambda r, s, society, d: services.access_request_vote(
        access_request=s.access_request, society=society, by=r.user, **d),
    AccessVoteSerializer)
AccessRequestDecide = _society_action(
    "AccessRequestDecide", "The society's data access committee records its decision.",
    lambda s: s.committee_society_ids,
    lambda r, s, society, d: services.access_request_decide(
        access_request=s.access_request, society=society, by=r.user, **d),
    AccessDecisionSerializer)
AccessRequestCountersign = _society_action(
    "AccessRequestCountersign", "A society admin countersigns its agreement; the society's grant starts.",
    lambda s: s.admin_society_ids,
    lambda r, s, society, d: services.access_request_countersign(
        access_request=s.access_request, society=society, ip=client_ip(r._request), by=r.user, **d),
    AccessCountersignSerializer)
