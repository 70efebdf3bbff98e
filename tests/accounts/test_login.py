"""Signing in and out, the second factor for the roles that need it, and lockout."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.sessions.models import Session
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.demo.seed import totp_code
from tests.factories import TEST_PASSWORD, TOTP_SECRET, UserFactory

LOGIN_URL = "/accounts/login/"


def _login(client, email, password=TEST_PASSWORD, **extra):  # type: ignore[no-untyped-def]
    return client.post(LOGIN_URL, {"login": email, "password": password}, **extra)


def _reauthenticate(client):  # type: ignore[no-untyped-def]
    """allauth asks for the password again before a second factor is added."""
    response = client.post(reverse("account_reauthenticate"), {"password": TEST_PASSWORD})
    assert response.status_code == 302


def _actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def test_login_applicant_without_mfa_goes_straight_in(client, applicant):
    response = _login(client, applicant.email)

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.get(reverse("dashboard")).status_code == 200
    assert _actions()[-1] == "accounts.login"
    event = AuditEvent.objects.get(action="accounts.login")
    assert event.actor_id == applicant.pk
    assert event.ip == "127.0.0.1"


def test_login_wrong_password_shows_error_in_japanese_and_is_audited(client, applicant):
    response = _login(client, applicant.email, password="wrong password 123")

    assert response.status_code == 200
    body = response.content.decode()
    assert "入力されたメールアドレスもしくはパスワードが正しくありません。" in body
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action="accounts.login_failed")
    assert event.actor_id is None
    assert event.actor_email == applicant.email


def test_login_wrong_password_in_english_when_chosen(client, applicant):
    client.cookies["django_language"] = "en"
    response = _login(client, applicant.email, password="wrong password 123")

    assert "The email address and/or password you specified are not correct." in response.content.decode()


def test_login_mfa_role_asks_for_code_then_signs_in(client, auditor):
    response = _login(client, auditor.email)

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(TOTP_SECRET)})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(auditor.pk)
    assert _actions()[-1] == "accounts.login"


def test_login_mfa_wrong_code_refused_and_audited(client, auditor):
    _login(client, auditor.email)
    good = totp_code(TOTP_SECRET)
    bad = f"{(int(good) + 1) % 1_000_000:06d}"

    response = client.post(reverse("mfa_authenticate"), {"code": bad})

    assert response.status_code == 200
    assert "コードが正しくありません。" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert "accounts.mfa_failed" in _actions()
    assert "accounts.login" not in _actions()


@pytest.mark.parametrize(
    "persona", ["society_admin", "steward", "committee_member", "auditor"]
)
def test_mfa_required_roles_without_authenticator_are_sent_to_setup(client, persona, request):
    user = request.getfixturevalue(persona)
    Authenticator.objects.filter(user=user).delete()
    _login(client, user.email)  # with no authenticator yet, the password alone signs in

    response = client.get(reverse("dashboard"))

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    # the set-up page itself stays reachable, after allauth's password confirmation
    assert client.get(reverse("mfa_activate_totp"))["Location"].startswith(
        reverse("account_reauthenticate")
    )
    _reauthenticate(client)
    assert client.get(reverse("mfa_activate_totp")).status_code == 200


def test_mfa_required_for_platform_staff(client, db):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)

    assert client.get(reverse("dashboard"))["Location"] == reverse("mfa_activate_totp")
    assert client.get("/admin/")["Location"] == reverse("mfa_activate_totp")


def test_mfa_not_required_for_applicant(client, applicant):
    client.force_login(applicant)

    assert client.get(reverse("dashboard")).status_code == 200


def test_mfa_required_role_is_refused_by_api_without_authenticator(client, steward):
    Authenticator.objects.filter(user=steward).delete()
    client.force_login(steward)

    response = client.get("/api/v1/me/")

    assert response.status_code == 403
    assert "二要素認証" in response.json()["detail"]


def test_mfa_activation_with_code_is_audited(client, applicant, django_capture_on_commit_callbacks):
    from portal.accounts.models import OrganizationMembership

    OrganizationMembership.objects.filter(user=applicant).update(role="committee_member")
    _login(client, applicant.email)
    _reauthenticate(client)
    page = client.get(reverse("mfa_activate_totp"))
    secret = page.context["form"].secret

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})

    assert response.status_code == 302
    assert Authenticator.objects.filter(user=applicant, type="totp").exists()
    assert "accounts.mfa_activated" in _actions()
    assert client.get(reverse("dashboard")).status_code == 200


def test_lockout_after_repeated_failures_refuses_even_the_right_password(client, applicant):
    for _ in range(5):
        _login(client, applicant.email, password="wrong password 123")

    response = _login(client, applicant.email)

    assert response.status_code == 429
    body = response.content.decode()
    assert "アカウントがロックされました" in body
    assert "_auth_user_id" not in client.session
    failed = AuditEvent.objects.filter(action="accounts.login_failed")
    assert failed.count() == 6
    assert failed.order_by("-id").first().details == {"locked_out": True}


def test_lockout_counts_per_account_not_for_others(client, applicant, outsider):
    for _ in range(5):
        _login(client, applicant.email, password="wrong password 123")

    response = _login(client, outsider.email)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(outsider.pk)


def test_logout_is_audited_and_ends_session(client, applicant):
    client.force_login(applicant)

    response = client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert _actions()[-1] == "accounts.logout"


def test_expired_session_redirects_to_login_with_explanation(client, applicant):
    client.force_login(applicant)
    Session.objects.all().delete()

    response = client.get(reverse("dashboard"), follow=True)

    assert response.redirect_chain[-1][0] == f"{LOGIN_URL}?next=/dashboard/"
    assert "セッションの有効期限が切れています" in response.content.decode()


def test_password_reset_sends_mail_and_sets_new_password(client, applicant, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": applicant.email})

    assert response.status_code == 302
    assert len(mailoutbox) == 1
    link = next(line for line in mailoutbox[0].body.splitlines() if "/accounts/password/reset/key/" in line)
    path = link[link.index("/accounts/") :].strip()
    form_page = client.get(path, follow=True)
    response = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else path,
        {"password1": "a brand new passphrase 2026", "password2": "a brand new passphrase 2026"},
    )

    assert response.status_code == 302
    applicant.refresh_from_db()
    assert applicant.check_password("a brand new passphrase 2026")
    assert "accounts.password_reset" in _actions()


def test_password_reset_for_unknown_address_reveals_nothing(client, db, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.jp"})

    assert response.status_code == 302
    assert len(mailoutbox) == 1  # allauth tells the address that no account exists
    assert "/accounts/password/reset/key/" not in mailoutbox[0].body
