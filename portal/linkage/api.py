"""Matching over the API: the same rule as the page (approval covering every society), audited."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.accounts.models import User
from portal.accounts.permissions import HasRole
from portal.accounts.roles import Role
from portal.core.api import call_service
from portal.linkage import services
from portal.linkage.forms import LinkageSearchForm
from portal.linkage.models import LinkageApproval
from portal.linkage.selectors import encode_cursor
from portal.societies.models import Society


class HoldingSerializer(serializers.Serializer):
    society = serializers.CharField()
    modality = serializers.CharField()
    study_date = serializers.DateField()
    image_count = serializers.IntegerField()


class MatchSerializer(serializers.Serializer):
    subject_pseudonym = serializers.CharField()
    exam_date = serializers.DateField()
    last_date = serializers.DateField()
    societies = serializers.ListField(child=serializers.CharField())
    holdings = HoldingSerializer(many=True)


class MatchPageSerializer(serializers.Serializer):
    results = MatchSerializer(many=True)
    next = serializers.CharField(allow_null=True)


class MatchList(APIView):
    """Matches per pseudonymous subject and exam date, a page at a time (``next`` is a cursor URL)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("societies", OpenApiTypes.STR, description="society slugs, comma-separated"),
            OpenApiParameter("date_from", OpenApiTypes.DATE, required=True),
            OpenApiParameter("date_to", OpenApiTypes.DATE, required=True),
            OpenApiParameter("tolerance_days", OpenApiTypes.INT, required=True),
            OpenApiParameter("after", OpenApiTypes.STR, description="cursor from `next`"),
        ],
        responses=MatchPageSerializer,
    )
    def get(self, request: Request) -> Response:
        user = request.user
        if not services.may_use_linkage(user):
            raise PermissionDenied
        data = request.query_params.copy()
        slugs = [slug for value in data.getlist("societies") for slug in value.split(",") if slug]
        data.setlist("societies", slugs)
        form = LinkageSearchForm(data, offered=[])
        if not form.is_valid():
            return Response({"errors": form.errors.get_json_data()}, status=400)
        query = form.query()
        try:
            page = services.linkage_query(
                user=user, after=form.cleaned_data["after"], channel="api", **query
            )
        except services.LinkageNotApproved as refusal:
            raise PermissionDenied(str(refusal.args[0])) from None
        slugs_by_id = {society.pk: society.slug for society in query["societies"]}
        results: list[dict[str, Any]] = [
            {
                "subject_pseudonym": match.subject_pseudonym,
                "exam_date": match.exam_date,
                "last_date": match.last_date,
                "societies": [slugs_by_id[pk] for pk in match.society_ids],
                "holdings": [
                    {
                        "society": slugs_by_id[holding.society_id],
                        "modality": holding.modality,
                        "study_date": holding.study_date,
                        "image_count": holding.image_count,
                    }
                    for holding in match.holdings
                ],
            }
            for match in page.matches
        ]
        next_url = None
        if page.next_after is not None:
            items = form.query_string_items()
            items.append(("after", encode_cursor(page.next_after)))
            next_url = request.build_absolute_uri(request.path) + "?" + urlencode(items)
        return Response(MatchPageSerializer({"results": results, "next": next_url}).data)


# --- Linkage approvals (the operator's pages) -------------------------------------------------


class LinkageApprovalGrantSerializer(serializers.Serializer):
    user_email = serializers.EmailField()
    societies = serializers.ListField(child=serializers.SlugField(), help_text="Slugs of the covered societies.")
    purpose = serializers.CharField()
    valid_until = serializers.DateField()

    def validate_user_email(self, email: str) -> Any:
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise serializers.ValidationError(_("No active account has this e-mail address."))
        return user

    def validate_societies(self, slugs: list[str]) -> list[Society]:
        societies = list(Society.objects.filter(kind=Society.Kind.ACADEMIC, slug__in=slugs))
        unknown = sorted(set(slugs) - {society.slug for society in societies})
        if unknown:
            raise serializers.ValidationError(_("Unknown societies: %(slugs)s") % {"slugs": ", ".join(unknown)})
        return societies


class LinkageApprovalSerializer(serializers.ModelSerializer):
    user = serializers.EmailField(source="user.email", read_only=True)
    societies = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta:
        model = LinkageApproval
        fields = ["id", "user", "societies", "purpose", "valid_until", "granted_at", "revoked_at"]
        read_only_fields = fields


class LinkageApprovalGrant(APIView):
    """The operator approves a user's linkage across societies (as on the approvals page)."""

    permission_classes = [HasRole.of(Role.OPERATOR)]

    @extend_schema(request=LinkageApprovalGrantSerializer, responses={201: LinkageApprovalSerializer})
    def post(self, request: Request) -> Response:
        parsed = LinkageApprovalGrantSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        data = parsed.validated_data
        approval = call_service(services.linkage_approval_grant, user=data["user_email"],
                                societies=data["societies"], purpose=data["purpose"],
                                valid_until=data["valid_until"], by=request.user)
        return Response(LinkageApprovalSerializer(approval).data, status=201)


class LinkageApprovalRevoke(APIView):
    """The operator revokes a linkage approval."""

    permission_classes = [HasRole.of(Role.OPERATOR)]

    @extend_schema(request=None, responses=LinkageApprovalSerializer)
    def post(self, request: Request, pk: int) -> Response:
        approval = get_object_or_404(LinkageApproval, pk=pk)
        call_service(services.linkage_approval_revoke, approval=approval, by=request.user)
        return Response(LinkageApprovalSerializer(LinkageApproval.objects.get(pk=pk)).data)
