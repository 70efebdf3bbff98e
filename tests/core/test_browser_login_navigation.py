"""A person signs in with a demo account and sees their role's navigation, in Japanese."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import override_settings

from portal.demo.seed import demo_totp_secret, totp_code
from tests.support.browser import open_menu

pytestmark = [pytest.mark.browser]


@pytest.fixture
def demo(transactional_db):  # type: ignore[no-untyped-def]
    with override_settings(PORTAL_DEMO_ALLOWED=True):
        call_command("seed_demo", stdout=io.StringIO())


def _sign_in(page, live_server, email):  # type: ignore[no-untyped-def]
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="ログイン").first.click()
    page.get_by_label("メールアドレス").fill(email)
    page.get_by_label("パスワード").fill("portal-demo-2026")
    page.get_by_role("button", name="ログイン").click()


def test_browser_applicant_signs_in_and_sees_japanese_navigation(page, live_server, demo):
    _sign_in(page, live_server, "company@demo.example.jp")

    nav = page.get_by_role("navigation", name="メインメニュー")
    assert not nav.get_by_role("link", name="APIトークン").is_visible()  # inside a closed menu
    open_menu(page, "work")
    assert nav.get_by_role("link", name="マイページ").is_visible()
    open_menu(page, "account")
    assert nav.get_by_role("link", name="APIトークン").is_visible()
    assert not nav.get_by_role("link", name="マイページ").is_visible()  # one menu open at a time
    assert nav.get_by_role("link", name="監査ログ").count() == 0
    assert page.locator("html").get_attribute("lang") == "ja"
    assert "申請者" in page.get_by_test_id("roles").inner_text()


def test_browser_auditor_signs_in_with_totp_and_sees_audit_log(page, live_server, demo):
    _sign_in(page, live_server, "auditor@demo.example.jp")

    page.get_by_label("コード").fill(totp_code(demo_totp_secret("auditor@demo.example.jp")))
    page.get_by_role("button", name="ログイン").click()

    nav = page.get_by_role("navigation", name="メインメニュー")
    open_menu(page, "platform")
    nav.get_by_role("link", name="監査ログ").click()
    assert page.get_by_role("heading", name="監査ログ").is_visible()
    assert "監査担当者" in page.get_by_test_id("roles").inner_text()


def test_browser_language_switch_to_english_and_back(page, live_server, demo):
    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="English").click()

    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Participating societies").is_visible()

    page.get_by_role("button", name="日本語").click()
    assert page.locator("html").get_attribute("lang") == "ja"


def test_browser_wrong_password_shows_error_next_to_form(page, live_server, demo):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("メールアドレス").fill("company@demo.example.jp")
    page.get_by_label("パスワード").fill("not the password")
    page.get_by_role("button", name="ログイン").click()

    assert page.get_by_role("alert").first.inner_text().startswith("入力されたメールアドレス")
