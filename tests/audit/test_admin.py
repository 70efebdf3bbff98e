"""The audit log in the Django admin is read-only."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site

from portal.audit.models import AuditEvent
from portal.audit.services import audit_record
from tests.factories import UserFactory, give_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="root@nii.example.ac.jp", is_staff=True, is_superuser=True)
    give_totp(user)
    return user


@pytest.fixture
def admin_client(client, superuser):  # type: ignore[no-untyped-def]
    client.force_login(superuser)  # event #1
    audit_record(action="access.granted", actor=superuser, details={"n": 2})
    audit_record(action="access.revoked", actor=superuser, details={"n": 3})
    return client


def stored() -> list[tuple[object, ...]]:
    return list(AuditEvent.objects.order_by("id").values_list("id", "action", "details", "hash"))


def test_audit_admin_has_no_add_change_delete(rf, superuser):
    model_admin = site._registry[AuditEvent]
    request = rf.get("/admin/audit/auditevent/")
    request.user = superuser

    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.has_view_permission(request) is True
    assert model_admin.get_actions(request) == {}


def test_audit_admin_changelist_filters_on_action(admin_client):
    response = admin_client.get("/admin/audit/auditevent/", {"action": "access.revoked"})

    assert response.status_code == 200
    assert [event.id for event in response.context["cl"].result_list] == [3]
    body = response.content.decode()
    assert "?action=access.granted" in body
    assert "?action=accounts.login" in body


def test_audit_admin_detail_is_read_only(admin_client):
    response = admin_client.get("/admin/audit/auditevent/2/change/")

    assert response.status_code == 200
    assert 'name="action"' not in response.content.decode()


def test_audit_admin_post_change_refused_and_nothing_changed(admin_client):
    before = stored()

    response = admin_client.post("/admin/audit/auditevent/2/change/", {"action": "tests.changed"})

    assert response.status_code == 403
    assert stored() == before


def test_audit_admin_add_and_delete_refused_and_nothing_changed(admin_client):
    before = stored()

    add = admin_client.post("/admin/audit/auditevent/add/", {"action": "tests.forged"})
    delete = admin_client.post("/admin/audit/auditevent/2/delete/", {"post": "yes"})

    assert (add.status_code, delete.status_code) == (403, 403)
    assert stored() == before
