"""The inbox in a real browser: the header shows the unread count, a message opens the object and
is read, and "mark all as read" clears the count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.notifications.models import Notification
from tests.factories import UserFactory
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser]


def test_browser_inbox_count_open_and_mark_all_read(page, live_server, transactional_db):
    person = UserFactory(email="reader@example.jp", full_name="通知 読者")
    for n in range(3):
        Notification.objects.create(
            recipient=person, area="倫理審査", subject=f"お知らせ {n}", body=f"本文 {n}", url="/committees/",
            created_at=timezone.now() - timedelta(minutes=10 - n),
        )
    sign_in(page, live_server, person.email)

    link = page.get_by_test_id("notifications-link")
    assert link.inner_text().startswith("通知")
    assert page.get_by_test_id("unread-count").inner_text().strip().endswith("3")

    link.click()
    page.get_by_role("heading", name="通知", exact=True).wait_for()
    page.get_by_role("row").filter(has_text="お知らせ 2").get_by_role("link", name="開く").click()
    page.wait_for_url(f"{live_server.url}/committees/")
    assert page.get_by_test_id("unread-count").inner_text().strip().endswith("2")

    page.get_by_test_id("notifications-link").click()
    page.get_by_test_id("mark-all-read").click()
    page.get_by_text("2件の通知を既読にしました。").wait_for()
    page.wait_for_load_state("networkidle")  # the header's count has come back
    assert page.get_by_test_id("unread-count").count() == 0
    assert Notification.objects.filter(read_at__isnull=True).count() == 0
