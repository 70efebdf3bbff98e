"""Playwright with Debian's Chromium against the live test server: fixtures (registered by tests/conftest.py) and helpers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.ci import require

CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def _end_stray_connections(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """After the browser tests, end sessions the live server's request threads left open.

    Those threads can still hold a PostgreSQL connection when the test database is dropped,
    which then fails with "database is being accessed by other users".
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="module")
def browser(_end_stray_connections: None) -> Iterator[Any]:
    require(shutil.which(CHROMIUM) is not None or os.path.exists(CHROMIUM),
            f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test itself (not the live server thread) are then flagged as async-unsafe without this.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="en-US")  # the portal must still answer in Japanese
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """Each person gets their own browser context, so that sessions do not mix. The contexts ask
    for English, as many browsers do: the portal must still answer in Japanese."""
    contexts = []

    def _open() -> Any:
        context = browser.new_context(locale="en-US", accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield _open
    for context in contexts:
        context.close()


def sign_in(page: Any, live_server: Any, email: str, totp: bool = False) -> None:
    """Sign in through the login form (and the second-factor form with the tests' TOTP secret)."""
    from portal.demo.seed import totp_code
    from tests.factories import TEST_PASSWORD, TOTP_SECRET

    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("[name=login]").fill(email)
    page.locator("[name=password]").fill(TEST_PASSWORD)
    page.locator("[name=password]").press("Enter")
    if totp:
        page.locator("[name=code]").fill(totp_code(TOTP_SECRET))
        page.locator("[name=code]").press("Enter")
    page.get_by_test_id("whoami").wait_for()


def open_menu(page: Any, key: str) -> None:
    """Open one of the navigation bar's menus ("work", "review", "society", "platform", "account")."""
    page.get_by_test_id(f"nav-{key}").locator("summary").click()
