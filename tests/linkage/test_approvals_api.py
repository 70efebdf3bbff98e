"""Linkage approvals through the API: the operator grants and revokes, as on the approvals page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.linkage.models import LinkageApproval
from tests.factories import SocietyFactory, UserFactory, give_totp
from tests.support.api_caller import Caller

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="operator@nii.example.ac.jp", is_staff=True)
    give_totp(user)
    return user


def _body(user, *societies):  # type: ignore[no-untyped-def]
    return {"user_email": user.email, "societies": [s.slug for s in societies], "purpose": "病理と内視鏡の対応付け",
            "valid_until": (timezone.localdate() + timedelta(days=10)).isoformat()}


def test_operator_grants_and_revokes_linkage_approval_through_api(client, operator, society_admin, society):
    endo = SocietyFactory(slug="jges")

    granted = Caller(client, operator).post("/api/v1/linkage/approvals/", _body(society_admin, society, endo))

    assert granted.status_code == 201, granted.content
    assert sorted(granted.json()["societies"]) == ["jges", "jsp"]
    pk = granted.json()["id"]
    revoked = Caller(client, operator).post(f"/api/v1/linkage/approvals/{pk}/revoke/")
    assert revoked.status_code == 200, revoked.content
    assert revoked.json()["revoked_at"] is not None
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="linkage.").order_by("id")] == [
        "linkage.approval_granted", "linkage.approval_revoked"]


def test_linkage_approval_by_society_admin_is_403_and_grants_nothing(client, society_admin, society):
    response = Caller(client, society_admin).post("/api/v1/linkage/approvals/", _body(society_admin, society))

    assert response.status_code == 403
    assert LinkageApproval.objects.count() == 0
