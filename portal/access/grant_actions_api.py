"""What people do with a grant over the API, as on its pages: revoke it, extend it to a newer release,
record a named user's renewed research-ethics training, ask for an extension or a change of users (延長・変更申請) and decide on it, open a stop report,
submit, confirm and accept usage reports.

Each endpoint finds the object as the page does (404 for those who may not see it, 403 for those who
see it without the right to act), then calls the one service the page calls; what the service
refuses changes nothing (400 for bad input or a refusal by validation, 403 for ``PermissionDenied``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.access.amendment_selectors import amendments_visible_to
from portal.access.grant_api import GrantSerializer
from portal.access.models import Grant, GrantAmendment, RequestUser, UsageReport
from portal.access.report_selectors import report_visible_to
from portal.access.selectors import grant_role, training_lapses_on
from portal.access.services import reports as report_services
from portal.access.services.amendments import (
    grant_amendment_decide,
    grant_amendment_request,
    may_decide,
    may_request,
)
from portal.access.services.grants import grant_extend_to_release, grant_revoke
from portal.access.services.training import request_user_training_renew
from portal.accounts.models import User
from portal.core.api import call_service
from portal.datasets.models import DatasetRelease

# --- Grants --------------------------------------------------------------------------------------


def _visible_grant(request: Request, pk: int) -> Grant:
    grant = get_object_or_404(Grant.objects.select_related("society", "access_request"), pk=pk)
    if not grant_role(request.user, grant):
        raise Http404
    return grant


def _grant(pk: int) -> Response:
    grant = Grant.objects.select_related("society").prefetch_related("releases__dataset").get(pk=pk)
    return Response(GrantSerializer(grant).data)


class GrantReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField()


class GrantExtendSerializer(serializers.Serializer):  # type: ignore[type-arg]
    release = serializers.IntegerField(help_text="Id of the newer release of a dataset the grant holds.")


class GrantRevoke(APIView):
    """Revoke a grant (a steward or admin of its society): its links stop working at once."""

    @extend_schema(request=GrantReasonSerializer, responses=GrantSerializer)
    def post(self, request: Request, pk: int) -> Response:
        grant = _visible_grant(request, pk)
        parsed = GrantReasonSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(grant_revoke, grant=grant, by=request.user, **parsed.validated_data)
        return _grant(pk)


class GrantExtend(APIView):
    """Add a newer release of a dataset the grant holds (an admin of the society; same terms)."""

    @extend_schema(request=GrantExtendSerializer, responses=GrantSerializer)
    def post(self, request: Request, pk: int) -> Response:
        grant = _visible_grant(request, pk)
        parsed = GrantExtendSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        release = get_object_or_404(DatasetRelease, pk=parsed.validated_data["release"])
        call_service(grant_extend_to_release, grant=grant, release=release, by=request.user)
        return _grant(pk)


class GrantTrainingInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    email = serializers.EmailField(help_text="The named user whose training was renewed.")
    training_date = serializers.DateField(help_text="The date of the renewed training (not in the future, "
                                                    "not before the one recorded).")


class GrantTrainingSerializer(serializers.Serializer):  # type: ignore[type-arg]
    user = serializers.IntegerField(source="user_id")
    email = serializers.EmailField(source="user.email")
    ethics_training_date = serializers.DateField()
    lapses_on = serializers.SerializerMethodField(help_text="The first day the training no longer holds; "
                                                            "null when it does not lapse.")

    def get_lapses_on(self, named: RequestUser) -> str | None:
        lapses_on = training_lapses_on(named)
        return lapses_on.isoformat() if lapses_on else None


class GrantTrainingRenew(APIView):
    """A named user, or the applicant or principal investigator for their team, records the date of the
    user's renewed research-ethics training (as on the grant's page)."""

    @extend_schema(request=GrantTrainingInputSerializer, responses=GrantTrainingSerializer)
    def post(self, request: Request, pk: int) -> Response:
        grant = _visible_grant(request, pk)
        parsed = GrantTrainingInputSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        user = grant.users.filter(email__iexact=parsed.validated_data["email"]).first()
        if user is None:
            raise serializers.ValidationError({"email": [_("%(email)s is not a named user of this grant.")
                                                         % {"email": parsed.validated_data["email"]}]})
        named = call_service(request_user_training_renew, grant=grant, user=user,
                             training_date=parsed.validated_data["training_date"], by=request.user)
        return Response(GrantTrainingSerializer(named).data)


# --- Extension and change of users (延長・変更申請) -------------------------------------------------


class GrantAmendmentUserSerializer(serializers.Serializer):  # type: ignore[type-arg]
    email = serializers.EmailField()
    ethics_training_date = serializers.DateField(required=False, allow_null=True, default=None)
    role = serializers.ChoiceField(
        choices=[RequestUser.Role.CO_INVESTIGATOR, RequestUser.Role.CONTRACTOR], required=False,
        default=RequestUser.Role.CO_INVESTIGATOR)


class GrantAmendmentInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    new_expires_on = serializers.DateField(required=False, allow_null=True, default=None,
                                           help_text="Only when asking to extend the period of use.")
    users_to_add = GrantAmendmentUserSerializer(many=True, required=False, default=list)
    users_to_remove = serializers.ListField(child=serializers.EmailField(), required=False, default=list,
                                            help_text="Named users removed at once.")
    reason = serializers.CharField()

    def __init__(self, *args: Any, grant: Grant | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grant = grant

    def validate_users_to_add(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        resolved = []
        for row in rows:
            user = User.objects.filter(email__iexact=row["email"], is_active=True).first()
            if user is None:
                raise serializers.ValidationError(_("No active account has the address %(email)s.")
                                                  % {"email": row["email"]})
            training = row["ethics_training_date"]
            resolved.append({"user": user, "role": row["role"], "ethics_training": training is not None,
                             "ethics_training_date": training})
        return resolved

    def validate_users_to_remove(self, emails: list[str]) -> list[User]:
        assert self.grant is not None
        users = list(self.grant.users.filter(email__in=emails))
        unknown = sorted(set(emails) - {user.email for user in users})
        if unknown:
            raise serializers.ValidationError(_("Not named users of this grant: %(emails)s")
                                              % {"emails": ", ".join(unknown)})
        return users


class GrantAmendmentSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = GrantAmendment
        fields = ["id", "grant", "status", "new_expires_on", "reason"]
        read_only_fields = fields


class GrantAmendmentDecisionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    approve = serializers.BooleanField()
    reasons = serializers.CharField(required=False, allow_blank=True, default="",
                                    help_text="Required when rejecting; shown to the applicant.")


class GrantAmendmentCreate(APIView):
    """The applicant or principal investigator asks to extend the grant or change its users."""

    @extend_schema(request=GrantAmendmentInputSerializer, responses={201: GrantAmendmentSerializer})
    def post(self, request: Request, pk: int) -> Response:
        grant = get_object_or_404(Grant.objects.select_related("society", "access_request"), pk=pk)
        if not may_request(request.user, grant):
            if grant_role(request.user, grant):
                raise PermissionDenied
            raise Http404
        parsed = GrantAmendmentInputSerializer(data=request.data, grant=grant)
        parsed.is_valid(raise_exception=True)
        amendment = call_service(grant_amendment_request, grant=grant, by=request.user, **parsed.validated_data)
        return Response(GrantAmendmentSerializer(amendment).data, status=status.HTTP_201_CREATED)


class GrantAmendmentDecide(APIView):
    """A steward or admin of the grant's society approves or rejects the request."""

    @extend_schema(request=GrantAmendmentDecisionSerializer, responses=GrantAmendmentSerializer)
    def post(self, request: Request, pk: int) -> Response:
        amendment = get_object_or_404(amendments_visible_to(request.user), pk=pk)
        if not may_decide(request.user, amendment.grant):
            raise PermissionDenied
        parsed = GrantAmendmentDecisionSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        decided = call_service(grant_amendment_decide, amendment=amendment, by=request.user, **parsed.validated_data)
        return Response(GrantAmendmentSerializer(decided).data)


# --- Usage reports -------------------------------------------------------------------------------


class UsageReportStateSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = UsageReport
        fields = ["id", "grant", "kind", "status", "due_on", "submitted_at"]
        read_only_fields = fields


class UsageReportOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    kind = serializers.CharField(allow_blank=True, required=False, default="",
                                 help_text="paper, ai_model, samd, presentation or other.")
    title = serializers.CharField(allow_blank=True, required=False, default="", max_length=500)
    doi = serializers.CharField(allow_blank=True, required=False, default="", max_length=200)
    number = serializers.CharField(allow_blank=True, required=False, default="", max_length=100)
    citation = serializers.CharField(allow_blank=True, required=False, default="", max_length=500,
                                     help_text="How the output cites the dataset.")


class UsageReportInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The report page's form; the end-of-use fields apply to the final and stop reports."""

    progress = serializers.CharField(allow_blank=True, required=False, default="")
    deviations = serializers.CharField(allow_blank=True, required=False, default="")
    user_changes = serializers.CharField(allow_blank=True, required=False, default="")
    security_recheck = serializers.CharField(allow_blank=True, required=False, default="")
    results_summary = serializers.CharField(allow_blank=True, required=False, default="")
    outputs = UsageReportOutputSerializer(many=True, required=False, default=list)
    stop_reason = serializers.CharField(allow_blank=True, required=False)
    registry_number = serializers.CharField(allow_blank=True, required=False, max_length=20)
    retained_items = serializers.CharField(allow_blank=True, required=False)
    retention_reason = serializers.CharField(allow_blank=True, required=False)
    retained_until = serializers.DateField(allow_null=True, required=False)
    deletion_date = serializers.DateField(allow_null=True, required=False)
    deletion_method = serializers.CharField(allow_blank=True, required=False)
    deletion_certificate = serializers.FileField(allow_null=True, required=False)


class UsageReportConfirmSerializer(serializers.Serializer):  # type: ignore[type-arg]
    as_role = serializers.ChoiceField(choices=[("pi", "Principal investigator"), ("head", "Head of the institution")])


class UsageReportStopSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField()


def _report_or_404(request: Request, pk: int) -> UsageReport:
    report = report_visible_to(request.user, pk)
    if report is None:
        raise Http404
    return report


def _report(pk: int) -> Response:
    return Response(UsageReportStateSerializer(UsageReport.objects.get(pk=pk)).data)


class UsageReportSubmit(APIView):
    """A named user of the grant submits a due usage report (JSON, or multipart with the certificate)."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request=UsageReportInputSerializer, responses=UsageReportStateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        report = _report_or_404(request, pk)
        if not report_services.is_named_user(request.user, report.grant):
            raise PermissionDenied
        parsed = UsageReportInputSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(report_services.usage_report_submit, report=report, by=request.user, **parsed.validated_data)
        return _report(pk)


class UsageReportConfirm(APIView):
    """The principal investigator or the head of the institution confirms a submitted report."""

    @extend_schema(request=UsageReportConfirmSerializer, responses=UsageReportStateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        report = _report_or_404(request, pk)
        parsed = UsageReportConfirmSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(report_services.usage_report_confirm, report=report, by=request.user, **parsed.validated_data)
        return _report(pk)


class UsageReportAccept(APIView):
    """The society's steward accepts a (confirmed) report."""

    @extend_schema(request=None, responses=UsageReportStateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        report = _report_or_404(request, pk)
        call_service(report_services.usage_report_accept, report=report, by=request.user)
        return _report(pk)


class UsageReportStop(APIView):
    """A named user reports that the research stopped: the stop report (中止報告) is opened."""

    @extend_schema(request=UsageReportStopSerializer, responses={201: UsageReportStateSerializer})
    def post(self, request: Request, pk: int) -> Response:
        grant = get_object_or_404(Grant.objects.filter(users=request.user), pk=pk)
        parsed = UsageReportStopSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        report = call_service(report_services.usage_report_stop, grant=grant, by=request.user,
                              **parsed.validated_data)
        return Response(UsageReportStateSerializer(report).data, status=status.HTTP_201_CREATED)
