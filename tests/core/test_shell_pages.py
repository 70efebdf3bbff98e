"""Every page of the shell renders in Japanese (the default) and in English."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import SocietyFactory

# (url, persona or None, a string the page shows in Japanese, the same in English)
PAGES = [
    ("/", None, "参加学会", "Participating societies"),
    ("/societies/", None, "学会一覧", "Societies"),
    ("/societies/jsp/", None, "日本病理学会", "The Japanese Society of Pathology"),
    ("/accounts/login/", None, "ログイン", "Sign In"),
    ("/accounts/signup/", None, "ユーザー登録", "Sign Up"),
    ("/accounts/password/reset/", None, "パスワードの再設定", "Password Reset"),
    ("/dashboard/", "applicant", "あなたのロール", "Your roles"),
    ("/accounts/tokens/", "applicant", "APIトークン", "API tokens"),
    ("/accounts/2fa/", "auditor", "二要素認証", "Two-Factor Authentication"),
    ("/audit/", "auditor", "監査ログ", "Audit log"),
]


@pytest.fixture
def jsp(db):  # type: ignore[no-untyped-def]
    return SocietyFactory(slug="jsp", name_ja="日本病理学会", name_en="The Japanese Society of Pathology")


@pytest.mark.parametrize(("url", "persona", "japanese", "english"), PAGES)
def test_shell_page_renders_in_japanese_by_default(client, jsp, request, url, persona, japanese, english):
    if persona:
        client.force_login(request.getfixturevalue(persona))

    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")  # the browser's language is ignored

    assert response.status_code == 200
    body = response.content.decode()
    assert '<html lang="ja">' in body
    assert japanese in body


@pytest.mark.parametrize(("url", "persona", "japanese", "english"), PAGES)
def test_shell_page_renders_in_english_when_chosen(client, jsp, request, url, persona, japanese, english):
    if persona:
        client.force_login(request.getfixturevalue(persona))
    client.cookies["django_language"] = "en"

    response = client.get(url)

    assert response.status_code == 200
    body = response.content.decode()
    assert '<html lang="en">' in body
    assert english in body


def test_language_switch_sets_cookie_and_returns_to_page(client, db):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/societies/"})

    assert response.status_code == 302
    assert response["Location"] == "/societies/"
    assert response.cookies["django_language"].value == "en"
    assert '<html lang="en">' in client.get("/societies/").content.decode()


def test_navigation_by_role_anonymous_sees_public_items_only(client, db):
    body = client.get("/").content.decode()

    assert 'href="/societies/"' in body
    assert 'href="/audit/"' not in body
    assert 'href="/dashboard/"' not in body


def test_navigation_by_role_auditor_sees_audit_log(client, auditor):
    client.force_login(auditor)

    body = client.get("/").content.decode()

    assert 'href="/audit/"' in body
    assert 'href="/admin/"' not in body


def test_navigation_by_role_applicant_has_no_audit_log(client, applicant):
    client.force_login(applicant)

    body = client.get("/").content.decode()

    assert 'href="/dashboard/"' in body
    assert 'href="/audit/"' not in body


def test_navigation_by_role_operator_sees_administration(client, db):
    from tests.factories import UserFactory, give_totp

    operator = UserFactory(is_staff=True, is_superuser=True)
    give_totp(operator)
    client.force_login(operator)

    body = client.get("/").content.decode()

    assert 'href="/admin/"' in body
    assert 'href="/audit/"' in body


def test_unknown_page_is_404_in_japanese(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "ページが見つかりません" in response.content.decode()


def test_home_query_count_is_fixed(client, db, django_assert_num_queries):
    SocietyFactory.create_batch(7)

    with django_assert_num_queries(1):
        response = client.get("/")

    assert response.status_code == 200
