from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.accounts.models import User
from portal.accounts.roles import has_mfa, roles_for
from portal.accounts.services import user_update_profile


class MeSerializer(serializers.Serializer):
    email = serializers.EmailField(read_only=True)
    full_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    full_name_kana = serializers.CharField(max_length=150, required=False, allow_blank=True)
    roles = serializers.ListField(child=serializers.CharField(), read_only=True)
    mfa_enabled = serializers.BooleanField(read_only=True)


def _me(user: User) -> dict[str, object]:
    return {
        "email": user.email,
        "full_name": user.full_name,
        "full_name_kana": user.full_name_kana,
        "roles": sorted(str(role) for role in roles_for(user)),
        "mfa_enabled": has_mfa(user),
    }


class MeView(APIView):
    """The signed-in user, with the roles the portal gives them; PATCH changes the name."""

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(_me(request.user)).data)

    @extend_schema(request=MeSerializer, responses=MeSerializer)
    def patch(self, request: Request) -> Response:
        serializer = MeSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            user = user_update_profile(user=request.user, by=request.user, **serializer.validated_data)
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages) from error
        return Response(MeSerializer(_me(user)).data)
