"""Data-access applications over the API, read-only, with the visibility rules of the pages.

``requests_visible_to`` decides which applications a user sees (the same objects as the pages);
``request_standing`` decides what of each: the security self-assessment only for those who may see
it on the pages (the applicant who wrote it and the stewards of the societies), comments by
audience, decisions and conditions for everybody who sees the application.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import generics, serializers

from portal.access.models import AccessRequest, RequestComment, SecurityAnswer, SocietyReview
from portal.access.request_selectors import request_standing, requests_visible_to, visible_comments


class AccessSocietyReviewSerializer(serializers.ModelSerializer):
    society = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = SocietyReview
        fields = ["society", "status", "conditions", "decision_reasons", "decided_at"]
        read_only_fields = fields


class AccessRequestListSerializer(serializers.ModelSerializer):
    organization = serializers.CharField(source="organization.name_ja", read_only=True)

    class Meta:
        model = AccessRequest
        fields = ["id", "reference", "title", "organization", "status", "purpose", "legal_basis",
                  "submitted_at", "decided_at", "period_start", "period_end"]
        read_only_fields = fields


class SecurityAnswerSerializer(serializers.ModelSerializer):
    class Meta:
        model = SecurityAnswer
        fields = ["item", "status", "evidence", "comment"]
        read_only_fields = fields


class AccessRequestCommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.email", read_only=True)
    society = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = RequestComment
        fields = ["author", "society", "audience", "body", "created_at"]
        read_only_fields = fields


class AccessNamedUserSerializer(serializers.Serializer):
    email = serializers.EmailField(source="user.email")
    role = serializers.CharField()
    ethics_training = serializers.BooleanField()


class AccessRequestDetailSerializer(AccessRequestListSerializer):
    reviews = serializers.SerializerMethodField()
    releases = serializers.SerializerMethodField()
    named_users = serializers.SerializerMethodField()
    comments = serializers.SerializerMethodField()
    security_answers = serializers.SerializerMethodField()

    class Meta(AccessRequestListSerializer.Meta):
        fields = [*AccessRequestListSerializer.Meta.fields, "summary", "expected_outputs", "processing_level",
                  "environment", "security_level", "foreign_access", "foreign_country", "wants_linkage",
                  "pi_title", "pi_researcher_number_kind", "pi_researcher_number", "pi_research_record",
                  "head_name", "head_title", "head_email", "reviews", "releases",
                  "named_users", "comments", "security_answers"]
        read_only_fields = fields

    def _standing(self, obj: AccessRequest) -> Any:
        cache = self.context.setdefault("_standing", {})
        if obj.pk not in cache:
            cache[obj.pk] = request_standing(self.context["request"].user, obj)
        return cache[obj.pk]

    @extend_schema_field(AccessSocietyReviewSerializer(many=True))
    def get_reviews(self, obj: AccessRequest) -> list[dict[str, Any]]:
        return AccessSocietyReviewSerializer(self._standing(obj).reviews, many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_releases(self, obj: AccessRequest) -> list[str]:
        return [f"{r.dataset.slug} v{r.version}" for r in obj.releases.select_related("dataset")]

    @extend_schema_field(AccessNamedUserSerializer(many=True))
    def get_named_users(self, obj: AccessRequest) -> list[dict[str, Any]]:
        return AccessNamedUserSerializer(obj.named_users.select_related("user"), many=True).data

    @extend_schema_field(AccessRequestCommentSerializer(many=True))
    def get_comments(self, obj: AccessRequest) -> list[dict[str, Any]]:
        return AccessRequestCommentSerializer(visible_comments(self._standing(obj)), many=True).data

    @extend_schema_field(SecurityAnswerSerializer(many=True, allow_null=True))
    def get_security_answers(self, obj: AccessRequest) -> list[dict[str, Any]] | None:
        if not self._standing(obj).may_see_security:
            return None
        return SecurityAnswerSerializer(obj.security_answers.order_by("item"), many=True).data


class AccessRequestList(generics.ListAPIView):
    """The applications the user may see (as on the pages)."""

    serializer_class = AccessRequestListSerializer

    def get_queryset(self) -> QuerySet[AccessRequest]:
        return requests_visible_to(self.request.user).select_related("organization").order_by("-id")  # type: ignore[arg-type]


class AccessRequestDetail(generics.RetrieveAPIView):
    """One application; 404 when the user may not see it."""

    serializer_class = AccessRequestDetailSerializer

    def get_queryset(self) -> QuerySet[AccessRequest]:
        return requests_visible_to(self.request.user).select_related("organization")  # type: ignore[arg-type]
