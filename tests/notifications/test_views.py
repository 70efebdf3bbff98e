"""The inbox (通知) in the browser and under /api/v1/notifications/: a person's own messages only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from portal.notifications.models import Notification
from portal.notifications.views import PER_PAGE

pytestmark = pytest.mark.django_db

API = "/api/v1/notifications/"


def _message(recipient, n=0, **fields):  # type: ignore[no-untyped-def]
    values = {"area": "倫理審査", "subject": f"お知らせ {n}", "body": f"本文 {n}",
              "url": f"/ethics/protocols/{n}/", "created_at": timezone.now() - timedelta(minutes=100 - n)}
    return Notification.objects.create(recipient=recipient, **(values | fields))


def _state():  # type: ignore[no-untyped-def]
    return sorted(Notification.objects.values_list("pk", "read_at"))


def _token(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    _instance, raw = AuthToken.objects.create(user)
    return {"HTTP_AUTHORIZATION": f"Token {raw}"}


# --- Pages --------------------------------------------------------------------------------------


def test_inbox_lists_own_messages_newest_first_in_japanese(client, applicant, outsider):
    first, second = _message(applicant, 1), _message(applicant, 2, read_at=timezone.now())
    _message(outsider, 3)
    client.force_login(applicant)

    response = client.get(reverse("notifications:inbox"))

    page = response.content.decode()
    assert response.status_code == 200
    assert [n.pk for n in response.context["notifications"]] == [second.pk, first.pk]
    assert "<h1>通知</h1>" in page and "未読 1件" in page and "すべて既読にする" in page
    assert f'data-notification="{first.pk}" data-read="false"' in page
    assert f'data-notification="{second.pk}" data-read="true"' in page
    assert reverse("notifications:go", args=[first.pk]) in page
    assert "お知らせ 3" not in page


def test_inbox_query_count_does_not_grow_with_messages(client, applicant, django_assert_num_queries):
    for n in range(PER_PAGE + 5):
        _message(applicant, n)
    client.force_login(applicant)
    client.get(reverse("notifications:inbox"))  # warm the session and the user's roles

    # session, user, roles (3), count, page, unread count
    with django_assert_num_queries(8):
        response = client.get(reverse("notifications:inbox"))

    assert len(response.context["notifications"]) == PER_PAGE
    assert response.context["page"].paginator.num_pages == 2


def test_inbox_unread_only(client, applicant):
    unread = _message(applicant, 1)
    _message(applicant, 2, read_at=timezone.now())
    client.force_login(applicant)

    response = client.get(reverse("notifications:inbox"), {"show": "unread"})

    assert [n.pk for n in response.context["notifications"]] == [unread.pk]


def test_opening_a_message_marks_it_read_and_shows_the_link(client, applicant):
    message = _message(applicant, 7)
    client.force_login(applicant)

    response = client.get(reverse("notifications:detail", args=[message.pk]))

    message.refresh_from_db()
    assert response.status_code == 200
    assert message.read_at is not None
    page = response.content.decode()
    assert 'href="/ethics/protocols/7/"' in page and "対象のページを開く" in page and "本文 7" in page


def test_go_marks_read_and_redirects_to_the_object(client, applicant):
    message = _message(applicant, 4)
    client.force_login(applicant)

    response = client.get(reverse("notifications:go", args=[message.pk]))

    assert (response.status_code, response["Location"]) == (302, "/ethics/protocols/4/")
    message.refresh_from_db()
    assert message.read_at is not None


@pytest.mark.parametrize("name", ["notifications:detail", "notifications:go"])
def test_someone_elses_message_is_404_and_stays_unread(client, applicant, outsider, name):
    message = _message(applicant, 1)
    before = _state()
    client.force_login(outsider)

    response = client.get(reverse(name, args=[message.pk]))

    assert response.status_code == 404
    assert _state() == before


def test_mark_all_read_marks_only_ones_own(client, applicant, outsider):
    mine = [_message(applicant, n) for n in range(3)]
    theirs = _message(outsider, 9)
    client.force_login(applicant)

    response = client.post(reverse("notifications:mark_all_read"), follow=True)

    assert response.redirect_chain == [(reverse("notifications:inbox"), 302)]
    assert "3件の通知を既読にしました。" in response.content.decode()
    assert Notification.objects.filter(pk__in=[m.pk for m in mine], read_at__isnull=True).count() == 0
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_all_read_refuses_get(client, applicant):
    _message(applicant, 1)
    before = _state()
    client.force_login(applicant)

    assert client.get(reverse("notifications:mark_all_read")).status_code == 405
    assert _state() == before


def test_inbox_needs_sign_in(client):
    response = client.get(reverse("notifications:inbox"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


def test_header_links_the_inbox_and_loads_the_count_after_the_page(client, applicant):
    client.force_login(applicant)

    page = client.get(reverse("home")).content.decode()

    assert 'data-testid="notifications-link"' in page
    assert f'hx-get="{reverse("notifications:unread_badge")}"' in page


def test_header_has_no_inbox_for_visitors(client):
    page = client.get(reverse("home")).content.decode()

    assert 'data-testid="notifications-link"' not in page


def test_unread_badge_is_one_query(client, applicant, outsider, django_assert_num_queries):
    _message(applicant, 1)
    _message(applicant, 2)
    _message(applicant, 3, read_at=timezone.now())
    _message(outsider, 4)
    client.force_login(applicant)
    client.get(reverse("notifications:unread_badge"))

    with django_assert_num_queries(3):  # session, user, the count
        response = client.get(reverse("notifications:unread_badge"))

    assert response.content.decode().count(">2</span>") == 1
    assert "未読の通知 2件" in response.content.decode()


def test_unread_badge_empty_for_visitors(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get(reverse("notifications:unread_badge"))

    assert (response.status_code, response.content.strip()) == (200, b"")


# --- API ----------------------------------------------------------------------------------------


def test_api_lists_own_messages_newest_first(client, applicant, outsider, django_assert_num_queries):
    for n in range(4):
        _message(applicant, n)
    _message(outsider, 9)
    headers = _token(applicant)

    # token and user, the user's tokens (second factor), roles (3), count, page
    with django_assert_num_queries(7):
        response = client.get(API, **headers)

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 4
    assert [row["subject"] for row in body["results"]] == ["お知らせ 3", "お知らせ 2", "お知らせ 1", "お知らせ 0"]
    assert set(body["results"][0]) == {"id", "area", "subject", "body", "url", "link", "created_at", "read_at",
                                       "is_read", "mail_status", "mail_sent_at"}
    assert body["results"][0]["link"] == f"{settings.PORTAL_BASE_URL}/ethics/protocols/3/"


def test_api_unread_filter_and_count(client, applicant):
    unread = _message(applicant, 1)
    _message(applicant, 2, read_at=timezone.now())
    headers = _token(applicant)

    listed = client.get(API, {"unread": "true"}, **headers).json()
    count = client.get(f"{API}unread-count/", **headers).json()

    assert [row["id"] for row in listed["results"]] == [unread.pk]
    assert count == {"unread": 1}


def test_api_mark_read(client, applicant):
    message = _message(applicant, 1)

    response = client.post(f"{API}{message.pk}/read/", **_token(applicant))

    assert response.status_code == 200
    assert response.json()["is_read"] is True
    message.refresh_from_db()
    assert message.read_at is not None


@pytest.mark.parametrize("method,suffix", [("get", ""), ("post", "read/")])
def test_api_someone_elses_message_is_404_and_nothing_changes(client, applicant, outsider, method, suffix):
    message = _message(applicant, 1)
    before = _state()

    response = getattr(client, method)(f"{API}{message.pk}/{suffix}", **_token(outsider))

    assert response.status_code == 404
    assert _state() == before


def test_api_mark_all_read_only_ones_own(client, applicant, outsider):
    _message(applicant, 1)
    _message(applicant, 2)
    theirs = _message(outsider, 3)

    response = client.post(f"{API}read-all/", **_token(applicant))

    assert response.json() == {"marked": 2}
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_api_refuses_visitors(client, applicant):
    _message(applicant, 1)
    before = _state()

    assert client.get(API).status_code in {401, 403}
    assert client.post(f"{API}read-all/").status_code in {401, 403}
    assert _state() == before


def test_api_schema_has_the_notification_routes_without_warnings():
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("portal.notifications.api_urls"))])
    schema = generator.get_schema(request=None, public=True)

    assert not GENERATOR_STATS
    assert sorted(schema["paths"]) == [
        "/api/v1/notifications/", "/api/v1/notifications/read-all/", "/api/v1/notifications/unread-count/",
        "/api/v1/notifications/{id}/", "/api/v1/notifications/{id}/read/"]


def test_unread_badge_answers_a_person_who_still_has_to_set_up_a_second_factor(client, steward):
    from allauth.mfa.models import Authenticator

    Authenticator.objects.filter(user=steward).delete()  # a steward needs TOTP and has none now
    _message(steward, 1)
    client.force_login(steward)

    assert client.get(reverse("notifications:inbox")).status_code == 302  # pages wait for the set-up
    response = client.get(reverse("notifications:unread_badge"), headers={"HX-Request": "true"})

    assert response.status_code == 200  # not an HX-Redirect, which would reload the set-up page for ever
    assert "HX-Redirect" not in response.headers
    assert ">1</span>" in response.content.decode()
