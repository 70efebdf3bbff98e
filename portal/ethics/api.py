"""Protocols over the API, read-only, for the people who may see them (``protocols_visible_to``).

The applicant sees only the comments meant for them; the committee sees all of its own comments;
drafts of a new version are the applicant's until submitted.
"""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from portal.ethics.items import ITEMS_BY_KEY, item_heading
from portal.ethics.models import (
    CommitteeMembership,
    ConflictDeclaration,
    EthicsNotice,
    ItemComment,
    NoncomplianceReport,
    OrganizationEntry,
    Protocol,
    ProtocolItem,
    ProtocolVersion,
)
from portal.ethics.selectors import protocol_data_flow, protocols_visible_to


def _title_of_latest(submitted_only: bool) -> Subquery:
    items = ProtocolItem.objects.filter(version__protocol=OuterRef("pk"), key="title")
    if submitted_only:
        items = items.filter(version__submitted_at__isnull=False)
    return Subquery(items.order_by("-version__number").values("body")[:1])


class CommitteeSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name_ja = serializers.CharField()
    name_en = serializers.CharField()


class DataFlowSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.CharField()


class ProtocolListSerializer(serializers.ModelSerializer):
    committee = CommitteeSerializer(read_only=True)
    title = serializers.CharField(read_only=True)
    data_flow = serializers.SerializerMethodField()

    class Meta:
        model = Protocol
        fields = ["id", "number", "kind", "status", "committee", "title", "approved_until", "periodic_report_due",
                  "ended_at", "data_flow"]
        read_only_fields = fields

    @extend_schema_field(DataFlowSerializer)
    def get_data_flow(self, protocol: Protocol) -> dict[str, Any]:
        flow = protocol_data_flow(protocol)
        return {"allowed": flow.allowed, "reason": str(flow.reason)}


class ItemSerializer(serializers.ModelSerializer):
    number = serializers.SerializerMethodField()
    label = serializers.SerializerMethodField(help_text="The item as the committee names it, e.g. ⑤ 研究対象者の選定方針.")

    class Meta:
        model = ProtocolItem
        fields = ["key", "number", "label", "body", "not_applicable_reason"]
        read_only_fields = fields

    def get_number(self, item: ProtocolItem) -> int | None:
        spec = ITEMS_BY_KEY.get(item.key)
        return spec.number if spec else None

    def get_label(self, item: ProtocolItem) -> str:
        return item_heading(item.key)


class CommentSerializer(serializers.ModelSerializer):
    item_label = serializers.SerializerMethodField(
        help_text="The item commented on as the committee names it; empty for the protocol as a whole."
    )

    class Meta:
        model = ItemComment
        fields = ["item_key", "item_label", "body", "for_applicant", "created_at"]
        read_only_fields = fields

    def get_item_label(self, comment: ItemComment) -> str:
        return item_heading(comment.item_key) if comment.item_key else ""


class DecisionSerializer(serializers.Serializer):
    outcome = serializers.CharField()
    reasons = serializers.CharField()
    conditions = serializers.CharField()
    approved_until = serializers.DateField(allow_null=True)
    decided_at = serializers.DateTimeField()
    notified_to_head_on = serializers.DateField(
        allow_null=True, help_text="研究機関の長への意見通知日: the day the opinion reached the head."
    )


class ConflictDeclarationSerializer(serializers.Serializer):
    member = serializers.CharField(source="member.user.email")
    has_conflict = serializers.BooleanField()
    details = serializers.CharField()
    declared_at = serializers.DateTimeField()


class OrganizationEntrySerializer(serializers.ModelSerializer):
    """One row of item ② (研究の実施体制): institution × person × role."""

    class Meta:
        model = OrganizationEntry
        fields = ["institution_name", "institution_role", "person_name", "person_role"]
        read_only_fields = fields


class ReviewSerializer(serializers.Serializer):
    type = serializers.CharField()
    mode = serializers.CharField()
    pi_explanation = serializers.CharField(help_text="研究者の説明・質疑, as the secretariat recorded it.")
    decision = serializers.SerializerMethodField()
    comments = serializers.SerializerMethodField()
    conflict_declarations = serializers.SerializerMethodField(
        help_text="Members' conflict-of-interest declarations; for the committee only (empty for the applicant)."
    )

    @extend_schema_field(ConflictDeclarationSerializer(many=True))
    def get_conflict_declarations(self, review: Any) -> list[dict[str, Any]]:
        if not self.context.get("sees_all_comments"):
            return []
        return ConflictDeclarationSerializer(review.conflict_declarations.all(), many=True).data  # type: ignore[return-value]

    @extend_schema_field(DecisionSerializer(allow_null=True))
    def get_decision(self, review: Any) -> dict[str, Any] | None:
        decision = getattr(review, "decision", None)
        return DecisionSerializer(decision).data if decision is not None else None

    @extend_schema_field(CommentSerializer(many=True))
    def get_comments(self, review: Any) -> list[dict[str, Any]]:
        comments = review.comments.all()
        if not self.context.get("sees_all_comments"):
            comments = [c for c in comments if c.for_applicant]
        return CommentSerializer(comments, many=True).data  # type: ignore[return-value]


class NoticeLinkSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EthicsNotice.Kind.choices)
    url = serializers.CharField()


class VersionSerializer(serializers.ModelSerializer):
    items = serializers.SerializerMethodField()
    review = serializers.SerializerMethodField()
    notices = serializers.SerializerMethodField()

    class Meta:
        model = ProtocolVersion
        fields = ["number", "kind", "change_summary", "submitted_at", "organization_entries", "items", "review",
                  "notices"]
        read_only_fields = fields

    organization_entries = OrganizationEntrySerializer(many=True, read_only=True)

    @extend_schema_field(NoticeLinkSerializer(many=True))
    def get_notices(self, version: ProtocolVersion) -> list[dict[str, str]]:
        """The PDF notices that exist for this version (issued on first download if not yet)."""
        kinds = []
        if getattr(getattr(version, "review", None), "decision", None) is not None:
            kinds.append(EthicsNotice.Kind.DECISION)
        if getattr(version, "head_decision", None) is not None:
            kinds.append(EthicsNotice.Kind.PERMISSION)
        return [
            {"kind": kind, "url": reverse(
                "ethics_documents:notice_download", args=[version.protocol_id, version.number, kind])}
            for kind in kinds
        ]

    @extend_schema_field(ItemSerializer(many=True))
    def get_items(self, version: ProtocolVersion) -> list[dict[str, Any]]:
        items = sorted(version.items.all(), key=lambda i: ITEMS_BY_KEY[i.key].number if i.key in ITEMS_BY_KEY else 99)
        return ItemSerializer(items, many=True).data  # type: ignore[return-value]

    @extend_schema_field(ReviewSerializer(allow_null=True))
    def get_review(self, version: ProtocolVersion) -> dict[str, Any] | None:
        review = getattr(version, "review", None)
        return ReviewSerializer(review, context=self.context).data if review is not None else None


class NoncomplianceReportSerializer(serializers.ModelSerializer):
    """重大な不適合の報告 and the committee's opinion on it (review type serious_noncompliance)."""

    class Meta:
        model = NoncomplianceReport
        fields = ["id", "filed_as", "body", "filed_at", "opinion", "opinion_at"]
        read_only_fields = fields


class ProtocolDetailSerializer(ProtocolListSerializer):
    versions = serializers.SerializerMethodField()
    noncompliance_reports = NoncomplianceReportSerializer(many=True, read_only=True)

    class Meta(ProtocolListSerializer.Meta):
        fields = [*ProtocolListSerializer.Meta.fields, "end_report", "versions", "noncompliance_reports"]
        read_only_fields = fields

    @extend_schema_field(VersionSerializer(many=True))
    def get_versions(self, protocol: Protocol) -> list[dict[str, Any]]:
        versions = sorted(protocol.versions.all(), key=lambda v: v.number)
        if not self.context.get("sees_drafts"):
            # A draft amendment is the applicant's own until it is submitted.
            versions = [v for v in versions if v.submitted_at is not None]
        return VersionSerializer(versions, many=True, context=self.context).data  # type: ignore[return-value]


def _visible(user: Any) -> QuerySet[Protocol]:
    return (
        protocols_visible_to(user)
        .select_related("committee")
        .annotate(title=Coalesce(_title_of_latest(True), _title_of_latest(False)))
        .order_by("-id")
    )


class ProtocolList(generics.ListAPIView):
    """The protocols the caller may see, newest first, with whether data may flow under each now."""

    serializer_class = ProtocolListSerializer

    def get_queryset(self) -> QuerySet[Protocol]:
        return _visible(self.request.user).prefetch_related(
            Prefetch("versions", queryset=ProtocolVersion.objects.select_related("head_decision"))
        )


class ProtocolDetail(generics.RetrieveAPIView):
    """One protocol with its versions, items, reviews and the comments the caller may read."""

    serializer_class = ProtocolDetailSerializer

    def get_queryset(self) -> QuerySet[Protocol]:
        return _visible(self.request.user).prefetch_related(
            Prefetch(
                "versions",
                queryset=ProtocolVersion.objects.select_related(
                    "head_decision", "review", "review__decision"
                ).prefetch_related(
                    "items", "review__comments", "organization_entries",
                    Prefetch("review__conflict_declarations",
                             queryset=ConflictDeclaration.objects.select_related("member__user")),
                ),
            ),
            "noncompliance_reports",
        )

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        protocol = self.get_object()
        user = request.user
        is_applicant = protocol.principal_investigator_id == user.pk
        is_member = CommitteeMembership.objects.filter(
            committee_id=protocol.committee_id, user_id=user.pk, active=True
        ).exists()
        context = self.get_serializer_context() | {
            # The applicant reads only what was meant for them, even if they sit on the committee.
            "sees_all_comments": is_member and not is_applicant,
            "sees_drafts": is_applicant,
        }
        return Response(self.get_serializer(protocol, context=context).data)
