"""Changes made through the administration site land in the audit log too."""

from __future__ import annotations

from allauth.mfa.models import Authenticator

from portal.audit.models import AuditEvent
from portal.audit.verify import verify_chain
from tests.factories import UserFactory, give_totp


def _operator():  # type: ignore[no-untyped-def]
    operator = UserFactory(is_staff=True, is_superuser=True, email="op@nii.example.jp")
    give_totp(operator)
    return operator


def test_admin_change_of_user_is_audited(client, applicant):
    client.force_login(_operator())

    response = client.post(
        f"/admin/accounts/user/{applicant.pk}/change/",
        {
            "email": applicant.email, "full_name": "変更後 氏名", "full_name_kana": "",
            "is_active": "on", "last_login_0": "", "last_login_1": "",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="admin.object_changed")
    assert event.target_type == "accounts.user"
    assert event.target_id == str(applicant.pk)
    assert event.actor_email == "op@nii.example.jp"
    assert verify_chain().ok


def test_admin_deleting_someones_authenticator_is_audited(client, steward):
    client.force_login(_operator())
    device = Authenticator.objects.get(user=steward, type="totp")

    response = client.post(
        "/admin/mfa/authenticator/",
        {"action": "delete_selected", "_selected_action": [device.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert not Authenticator.objects.filter(pk=device.pk).exists()
    event = AuditEvent.objects.get(action="admin.object_deleted")
    assert event.target_type == "mfa.authenticator"
    assert event.target_id == str(device.pk)
