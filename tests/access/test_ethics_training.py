"""A named user's research-ethics training holds PORTAL_ETHICS_TRAINING_VALID_DAYS (three years) from
its date: the gate stops only that user once it lapses, the user (or the applicant or principal
investigator) records a renewed training on the grant's page or over the API, and warnings go out
90/60/30 days before it lapses."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from portal.access.links import LinkRefused, link_issue
from portal.access.models import Grant, LapseWarning, RequestUser
from portal.access.selectors import grant_usability, grant_user_lapses, training_lapses_on
from portal.access.services.amendments import expiry_for
from portal.access.services.training import request_user_training_renew
from portal.access.services.warnings import lapse_warnings_send
from portal.audit.models import AuditEvent
from portal.ethics.models import Protocol
from portal.notifications.models import Notification
from tests.access.test_links import World, make_world
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

VALID = 1095
FAR = 2000  # days: a lapse that no window reaches


@pytest.fixture
def world(society, settings, tmp_path) -> World:  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    w = make_world(society)  # world.user: applicant and principal investigator; world.other: co-investigator
    far = timezone.localdate() + timedelta(days=FAR)
    Protocol.objects.filter(pk=w.grant.access_request.ethics_protocol_id).update(approved_until=far)
    Protocol.objects.filter(pk=w.release.dataset.protocol_id).update(approved_until=far)
    return w


@pytest.fixture(autouse=True)
def _english_pages(client):  # type: ignore[no-untyped-def]
    client.cookies["django_language"] = "en"


def _named(world: World, user) -> RequestUser:  # type: ignore[no-untyped-def]
    return RequestUser.objects.get(access_request=world.grant.access_request, user=user)


def _trained(world: World, user, day: date) -> None:  # type: ignore[no-untyped-def]
    RequestUser.objects.filter(access_request=world.grant.access_request, user=user).update(ethics_training_date=day)


def _dates(world: World) -> dict[str, date | None]:
    return dict(RequestUser.objects.filter(access_request=world.grant.access_request)
                .values_list("user__email", "ethics_training_date"))


def _auth(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"HTTP_AUTHORIZATION": f"Token {AuthToken.objects.create(user)[1]}", "HTTP_ACCEPT_LANGUAGE": "en"}


def _at(day: date) -> dict[str, object]:
    return {"today": day, "now": timezone.make_aware(datetime.combine(day, time(7, 50)))}


# --- the gate -------------------------------------------------------------------------------------


def test_training_gate_lapses_exactly_at_the_validity_boundary(world):
    assert settings.PORTAL_ETHICS_TRAINING_VALID_DAYS == VALID
    today = timezone.localdate()
    _trained(world, world.other, today - timedelta(days=VALID - 1))  # its last valid day is today
    assert training_lapses_on(_named(world, world.other)) == today + timedelta(days=1)
    assert grant_user_lapses(world.grant, world.other) == []

    trained = today - timedelta(days=VALID)
    _trained(world, world.other, trained)  # it lapses today
    assert grant_user_lapses(world.grant, world.other) == [
        f"Your research-ethics training of {trained.isoformat()} lapsed on {today.isoformat()}. Take the "
        "training again and record its new date on the grant's page."]
    assert grant_usability(world.grant, world.other).ok is False
    # Only that user: the grant stays in force, and the other named user still gets links.
    assert grant_usability(world.grant).ok is True
    assert grant_usability(world.grant, world.user).ok is True
    assert link_issue(grant=world.grant, file=world.file, user=world.user).token
    with pytest.raises(LinkRefused):
        link_issue(grant=world.grant, file=world.file, user=world.other)
    assert Grant.objects.get(pk=world.grant.pk).status == Grant.Status.ACTIVE


def test_training_gate_setting_zero_never_lapses(world, settings):
    settings.PORTAL_ETHICS_TRAINING_VALID_DAYS = 0
    _trained(world, world.other, timezone.localdate() - timedelta(days=10 * 365))
    assert training_lapses_on(_named(world, world.other)) is None
    assert grant_user_lapses(world.grant, world.other) == []


def test_training_gate_follows_the_setting(world, settings):
    settings.PORTAL_ETHICS_TRAINING_VALID_DAYS = 365
    _trained(world, world.other, timezone.localdate() - timedelta(days=365))
    assert len(grant_user_lapses(world.grant, world.other)) == 1
    _trained(world, world.other, timezone.localdate() - timedelta(days=364))
    assert grant_user_lapses(world.grant, world.other) == []


# --- renewal (service and page) -------------------------------------------------------------------


def test_training_renewed_by_the_user_reopens_the_gate(world, steward, client):
    today = timezone.localdate()
    _trained(world, world.other, today - timedelta(days=VALID + 10))
    client.force_login(world.other)

    response = client.post(reverse("access:grant_training_renew", args=[world.grant.pk]),
                           {"user": world.other.pk, "training_date": today.isoformat()})

    assert response.status_code == 302
    assert response["Location"] == reverse("access:grant_detail", args=[world.grant.pk])
    named = _named(world, world.other)
    assert (named.ethics_training, named.ethics_training_date) == (True, today)
    assert grant_user_lapses(world.grant, world.other) == []
    event = AuditEvent.objects.get(action="access.training_renewed")
    assert (event.actor_id, event.details) == (world.other.pk, {
        "user": world.other.pk, "email": world.other.email,
        "previous": (today - timedelta(days=VALID + 10)).isoformat(), "training_date": today.isoformat()})
    told = Notification.objects.filter(subject__startswith="Renewed research-ethics training")
    assert list(told.values_list("recipient__email", "subject", "url")) == [(
        steward.email, f"Renewed research-ethics training recorded for {world.other.email} "
                       f"(grant {world.grant.reference})", f"/access/grants/{world.grant.pk}/")]


def test_training_renewed_by_the_applicant_for_a_named_user(world):
    today = timezone.localdate()
    renewed = today - timedelta(days=3)
    _trained(world, world.other, today - timedelta(days=400))

    named = request_user_training_renew(grant=world.grant, user=world.other, training_date=renewed, by=world.user)

    assert (named.pk, named.ethics_training_date) == (_named(world, world.other).pk, renewed)
    assert _dates(world) == {world.user.email: today, world.other.email: renewed}


def test_training_renewal_by_an_outsider_is_404_and_changes_nothing(world, client):
    before = _dates(world)
    client.force_login(UserFactory())
    response = client.post(reverse("access:grant_training_renew", args=[world.grant.pk]),
                           {"user": world.other.pk, "training_date": timezone.localdate().isoformat()})
    assert response.status_code == 404
    assert _dates(world) == before
    assert AuditEvent.objects.filter(action="access.training_renewed").count() == 0


def test_training_renewal_of_another_named_user_is_403_and_changes_nothing(world, client):
    _trained(world, world.user, timezone.localdate() - timedelta(days=100))
    before = _dates(world)
    client.force_login(world.other)  # a co-investigator, not the applicant
    response = client.post(reverse("access:grant_training_renew", args=[world.grant.pk]),
                           {"user": world.user.pk, "training_date": timezone.localdate().isoformat()})
    assert response.status_code == 403
    assert _dates(world) == before
    assert AuditEvent.objects.filter(action="access.training_renewed").count() == 0
    assert Notification.objects.count() == 0


@pytest.mark.parametrize(("offset", "message"), [
    (1, "The training date cannot be in the future."),
    (-101, "The renewed training date cannot be earlier than the one recorded ({recorded})."),
])
def test_training_renewal_with_a_future_or_older_date_is_refused_on_the_page(world, client, offset, message):
    recorded = timezone.localdate() - timedelta(days=100)
    _trained(world, world.other, recorded)
    before = _dates(world)
    client.force_login(world.other)
    response = client.post(reverse("access:grant_training_renew", args=[world.grant.pk]),
                           {"user": world.other.pk,
                            "training_date": (timezone.localdate() + timedelta(days=offset)).isoformat()},
                           follow=True)
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [message.format(recorded=recorded.isoformat())]
    assert _dates(world) == before
    assert AuditEvent.objects.filter(action="access.training_renewed").count() == 0


def test_training_renewal_refused_once_the_grant_is_no_longer_in_force(world):
    Grant.objects.filter(pk=world.grant.pk).update(status=Grant.Status.REVOKED, revoked_at=timezone.now())
    world.grant.refresh_from_db()
    before = _dates(world)
    with pytest.raises(ValidationError, match=r"The grant is no longer in force\."):
        request_user_training_renew(grant=world.grant, user=world.other, training_date=timezone.localdate(),
                                    by=world.other)
    assert _dates(world) == before


# --- the grant page -------------------------------------------------------------------------------


def test_grant_page_shows_each_named_users_training_and_its_lapse(world, client, steward):
    today = timezone.localdate()
    lapsed = today - timedelta(days=VALID)
    _trained(world, world.other, lapsed)
    client.force_login(world.user)  # the applicant: may record for both

    page = client.get(reverse("access:grant_detail", args=[world.grant.pk]))

    rows = [(r.named.user.email, r.named.ethics_training_date, r.lapses_on, r.lapsed, r.may_renew)
            for r in page.context["training_rows"]]
    assert rows == [
        (world.other.email, lapsed, today, True, True),
        (world.user.email, today, today + timedelta(days=VALID), False, True),
    ]
    html = page.content.decode()
    assert html.count('data-testid="training-renew"') == 2
    assert f"{today + timedelta(days=VALID):%Y-%m-%d}" in html and "(lapsed)" in html

    client.force_login(world.other)  # a co-investigator: only their own row
    page = client.get(reverse("access:grant_detail", args=[world.grant.pk]))
    assert [r.may_renew for r in page.context["training_rows"]] == [True, False]

    client.force_login(steward)  # sees the dates, records nothing
    page = client.get(reverse("access:grant_detail", args=[world.grant.pk]))
    assert [(r.named.user.email, r.may_renew) for r in page.context["training_rows"]] == [
        (world.other.email, False), (world.user.email, False)]
    assert 'data-testid="training-renew"' not in page.content.decode()


# --- the API --------------------------------------------------------------------------------------


def test_training_api_records_the_renewal(world, client):
    today = timezone.localdate()
    _trained(world, world.other, today - timedelta(days=VALID + 1))
    response = client.post(reverse("api-access-grant-training", args=[world.grant.pk]),
                           {"email": world.other.email, "training_date": today.isoformat()},
                           content_type="application/json", **_auth(world.user))
    assert response.status_code == 200
    assert response.json() == {"user": world.other.pk, "email": world.other.email,
                               "ethics_training_date": today.isoformat(),
                               "lapses_on": (today + timedelta(days=VALID)).isoformat()}
    assert _named(world, world.other).ethics_training_date == today


def test_training_api_refusals_change_nothing(world, client, steward):
    today = timezone.localdate()
    _trained(world, world.other, today - timedelta(days=10))
    before = _dates(world)
    url = reverse("api-access-grant-training", args=[world.grant.pk])

    def post(by, email, day):  # type: ignore[no-untyped-def]
        return client.post(url, {"email": email, "training_date": day.isoformat()},
                           content_type="application/json", **_auth(by))

    assert post(UserFactory(), world.other.email, today).status_code == 404
    assert post(world.other, world.user.email, today).status_code == 403
    assert post(steward, world.other.email, today).status_code == 403
    future = post(world.other, world.other.email, today + timedelta(days=1))
    assert (future.status_code, future.json()["errors"]) == (
        400, {"training_date": ["The training date cannot be in the future."]})
    older = post(world.other, world.other.email, today - timedelta(days=11))
    assert older.status_code == 400
    assert older.json()["errors"] == {"training_date": [
        f"The renewed training date cannot be earlier than the one recorded ({(today - timedelta(days=10)).isoformat()})."]}
    stranger = post(world.user, "someone@else.example.jp", today)
    assert (stranger.status_code, stranger.json()["errors"]) == (
        400, {"email": ["someone@else.example.jp is not a named user of this grant."]})
    assert _dates(world) == before
    assert AuditEvent.objects.filter(action="access.training_renewed").count() == 0


# --- warnings -------------------------------------------------------------------------------------


def test_training_warned_at_90_60_30_days_once_each(world, steward, mailoutbox, django_capture_on_commit_callbacks):
    today = timezone.localdate()
    lapses_on = today + timedelta(days=91)
    _trained(world, world.other, lapses_on - timedelta(days=VALID))
    runs = {}
    for days in (91, 90, 90, 61, 60, 60, 31, 30, 30):
        with django_capture_on_commit_callbacks(execute=True):
            sent = lapse_warnings_send(**_at(lapses_on - timedelta(days=days)))
        runs.setdefault(days, []).append([(w.kind, w.subject, w.days_before) for w in sent])
    training = LapseWarning.Kind.ETHICS_TRAINING
    assert runs == {91: [[]], 90: [[(training, world.other.email, 90)], []], 61: [[]],
                    60: [[(training, world.other.email, 60)], []], 31: [[]],
                    30: [[(training, world.other.email, 30)], []]}
    # That user, the applicant and the steward; not the other named users as such.
    assert [w.recipients for w in LapseWarning.objects.order_by("days_before")] == [
        sorted([world.other.email, world.user.email, steward.email])] * 3
    last_day = (lapses_on - timedelta(days=1)).isoformat()
    assert {m.subject for m in mailoutbox} == {  # in the portal's language (Japanese)
        f"[データ利用] 利用許可 {world.grant.reference} の利用者 {world.other.email} の研究倫理講習は {last_day} まで有効です"}
    assert len(mailoutbox) == 9
    assert f"{settings.PORTAL_BASE_URL}/access/grants/{world.grant.pk}/" in mailoutbox[0].body


def test_training_renewal_starts_a_new_series(world):
    today = timezone.localdate()
    Grant.objects.filter(pk=world.grant.pk).update(expires_at=expiry_for(today + timedelta(days=FAR)))
    world.grant.refresh_from_db()
    _trained(world, world.user, today - timedelta(days=100))  # lapses before the new series is due
    old_lapse = today + timedelta(days=20)
    _trained(world, world.other, old_lapse - timedelta(days=VALID))
    assert [(w.subject, w.lapses_on, w.days_before) for w in lapse_warnings_send(**_at(today))] == [
        (world.other.email, old_lapse, 30)]

    request_user_training_renew(grant=world.grant, user=world.other, training_date=today, by=world.other)
    new_lapse = today + timedelta(days=VALID)
    assert lapse_warnings_send(**_at(today + timedelta(days=20))) == []
    assert [(w.subject, w.lapses_on, w.days_before)
            for w in lapse_warnings_send(**_at(new_lapse - timedelta(days=90)))] == [(world.other.email, new_lapse, 90)]


def test_training_not_warned_when_it_never_lapses(world, settings):
    settings.PORTAL_ETHICS_TRAINING_VALID_DAYS = 0
    _trained(world, world.other, timezone.localdate() - timedelta(days=VALID - 30))
    assert lapse_warnings_send(**_at(timezone.localdate())) == []
