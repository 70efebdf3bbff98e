"""延長・変更申請: extending a grant and changing its named users, the pages, and the steward queue."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from portal.access.links import LinkRefused, link_issue
from portal.access.models import Grant, GrantAmendment, ProvisionRecord, RequestUser, UsageReport
from portal.access.selectors import active_grants
from portal.access.services.amendments import (
    expiry_for,
    grant_amendment_decide,
    grant_amendment_request,
    last_day_of,
)
from portal.access.services.records import (
    add_years,
    provision_record_create,
    usage_reports_schedule,
)
from portal.accounts.models import User
from portal.agreements.models import SignedAgreement
from portal.audit.models import AuditEvent
from tests.access.test_links import World, make_world
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory
from tests.factories.datasets import active_grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(society, settings, tmp_path) -> World:  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    w = make_world(society)
    # As grant_start leaves it: the grant ends at the start of the day after the period's last day.
    grant = w.grant
    grant.expires_at = expiry_for(grant.access_request.period_end)
    grant.save(update_fields=["expires_at"])
    provision_record_create(grant=grant)
    usage_reports_schedule(grant=grant)
    return w


@pytest.fixture(autouse=True)
def _english_pages(client):  # type: ignore[no-untyped-def]
    client.cookies["django_language"] = "en"


def _may_download(user, release) -> bool:  # type: ignore[no-untyped-def]
    """What the grants in force give, read live (nothing is stored beside them)."""
    return active_grants().filter(users=user, releases=release, releases__status="available").exists()


def _snapshot(grant: Grant) -> tuple:  # type: ignore[type-arg]
    grant = Grant.objects.get(pk=grant.pk)
    request = grant.access_request
    record = ProvisionRecord.objects.get(grant=grant)
    return (
        grant.status, grant.expires_at, sorted(grant.users.values_list("pk", flat=True)),
        request.period_end, sorted(RequestUser.objects.filter(access_request=request).values_list("user_id", flat=True)),
        record.provided_until, record.provider_keep_until,
        sorted(UsageReport.objects.filter(grant=grant).values_list("kind", "period_to", "due_on")),
        GrantAmendment.objects.count(),
        sorted(u.pk for u in User.objects.all() if _may_download(u, grant.releases.first())),
    )


def _newcomer(**kwargs) -> User:  # type: ignore[no-untyped-def]
    return UserFactory(email=kwargs.pop("email", "newcomer@company.example.jp"), **kwargs)


def _row(user, training: date | None = None, **extra):  # type: ignore[no-untyped-def]
    training = training or timezone.localdate() - timedelta(days=30)
    return {"user": user, "ethics_training": True, "ethics_training_date": training, **extra}


# --- who may ask, and when -----------------------------------------------------------------------


def test_only_the_applicant_or_principal_investigator_may_ask(world, steward, society_admin):
    before = _snapshot(world.grant)
    for person in (world.other, steward, society_admin, UserFactory()):
        with pytest.raises(PermissionDenied):
            grant_amendment_request(grant=world.grant, by=person, new_expires_on=timezone.localdate() + timedelta(days=500),
                                    reason="延長したい")
    assert _snapshot(world.grant) == before
    assert not AuditEvent.objects.filter(action__startswith="access.amendment").exists()


@pytest.mark.parametrize("status", [Grant.Status.REVOKED, Grant.Status.EXPIRED, Grant.Status.ENDED])
def test_grant_no_longer_in_force_refused(world, status):
    Grant.objects.filter(pk=world.grant.pk).update(
        status=status, revoked_at=timezone.now() if status == Grant.Status.REVOKED else None)
    before = _snapshot(world.grant)
    with pytest.raises(ValidationError) as error:
        grant_amendment_request(grant=world.grant, by=world.user, users_to_remove=[world.other], reason="退職")
    assert error.value.messages == ["The grant is no longer in force: it cannot be extended or changed."]
    assert _snapshot(world.grant) == before
    assert world.grant.users.filter(pk=world.other.pk).exists()


def test_paused_grant_may_be_changed(world):
    Grant.objects.filter(pk=world.grant.pk).update(status=Grant.Status.PAUSED)
    amendment = grant_amendment_request(grant=world.grant, by=world.user,
                                        new_expires_on=last_day_of(world.grant) + timedelta(days=90), reason="延長")
    assert amendment.status == GrantAmendment.Status.SUBMITTED


def test_extension_must_be_later_than_the_current_end(world):
    before = _snapshot(world.grant)
    last = last_day_of(world.grant)
    assert last == world.grant.access_request.period_end
    for day in (last, last - timedelta(days=10)):
        with pytest.raises(ValidationError) as error:
            grant_amendment_request(grant=world.grant, by=world.user, new_expires_on=day, reason="延長")
        assert error.value.message_dict == {
            "new_expires_on": [f"The new last day must be later than the current one ({last.isoformat()})."]}
    assert _snapshot(world.grant) == before


def test_extension_refused_when_the_agreement_forbids_it(world):
    agreement = SignedAgreement.objects.get(access_request=world.grant.access_request)
    agreement.terms = {**agreement.terms, "extension_allowed": False}
    agreement.save(update_fields=["terms"])
    before = _snapshot(world.grant)
    with pytest.raises(ValidationError) as error:
        grant_amendment_request(grant=world.grant, by=world.user,
                                new_expires_on=last_day_of(world.grant) + timedelta(days=30), reason="延長")
    assert error.value.message_dict == {
        "new_expires_on": ["The society's agreement does not allow the period of use to be extended."]}
    assert _snapshot(world.grant) == before


def test_extension_at_most_three_years_from_the_start(world):
    start = world.grant.access_request.period_start
    limit = add_years(start, 3)
    before = _snapshot(world.grant)
    with pytest.raises(ValidationError) as error:
        grant_amendment_request(grant=world.grant, by=world.user, new_expires_on=limit + timedelta(days=1),
                                reason="延長")
    assert error.value.message_dict == {"new_expires_on": [
        f"The period of use may not go beyond {limit.isoformat()} (3 years from its start)."]}
    assert _snapshot(world.grant) == before
    amendment = grant_amendment_request(grant=world.grant, by=world.user, new_expires_on=limit, reason="延長")
    assert amendment.new_expires_on == limit


def test_added_users_need_ethics_training_with_its_date(world):
    newcomer = _newcomer()
    before = _snapshot(world.grant)
    cases = [
        ({"user": newcomer, "ethics_training": False, "ethics_training_date": date(2026, 1, 1)},
         "newcomer@company.example.jp: research-ethics training (completed, with its date) is required."),
        ({"user": newcomer, "ethics_training": True, "ethics_training_date": None},
         "newcomer@company.example.jp: research-ethics training (completed, with its date) is required."),
        (_row(newcomer, timezone.localdate() + timedelta(days=1)),
         "newcomer@company.example.jp: the training date is in the future."),
        (_row(world.other), "colleague@company.example.jp is already a named user of the grant."),
        (_row(newcomer, role="principal"),
         "newcomer@company.example.jp: choose co-investigator or analysis contractor."),
    ]
    for row, message in cases:
        with pytest.raises(ValidationError) as error:
            grant_amendment_request(grant=world.grant, by=world.user, users_to_add=[row], reason="分担者の追加")
        assert error.value.message_dict == {"users_to_add": [message]}
    assert _snapshot(world.grant) == before


def test_reason_and_some_change_required(world):
    before = _snapshot(world.grant)
    with pytest.raises(ValidationError) as error:
        grant_amendment_request(grant=world.grant, by=world.user, reason="  ")
    assert error.value.message_dict == {
        "reason": ["Give the reason for the change."],
        "__all__": ["Ask for an extension, or name users to add or to remove."],
    }
    assert _snapshot(world.grant) == before


def test_removal_rules(world):
    outsider = UserFactory()
    before = _snapshot(world.grant)
    cases = [
        ([outsider], f"{outsider.email} is not a named user of the grant."),
        ([world.user], "The principal investigator cannot be removed; apply again instead."),
    ]
    for users, message in cases:
        with pytest.raises(ValidationError) as error:
            grant_amendment_request(grant=world.grant, by=world.user, users_to_remove=users, reason="変更")
        assert error.value.message_dict["users_to_remove"][0] == message
    assert _snapshot(world.grant) == before


def test_one_pending_request_at_a_time(world):
    grant_amendment_request(grant=world.grant, by=world.user,
                            new_expires_on=last_day_of(world.grant) + timedelta(days=30), reason="延長")
    before = _snapshot(world.grant)
    with pytest.raises(ValidationError) as error:
        grant_amendment_request(grant=world.grant, by=world.user, users_to_add=[_row(_newcomer())], reason="追加")
    assert error.value.messages == ["An earlier request is still awaiting the society's decision."]
    assert _snapshot(world.grant) == before


# --- removal takes effect at once ----------------------------------------------------------------


def test_removal_takes_effect_at_once(world, mailoutbox, django_capture_on_commit_callbacks):
    assert _may_download(world.other, world.release)
    link_issue(grant=world.grant, file=world.file, user=world.other)  # works before
    with django_capture_on_commit_callbacks(execute=True):
        amendment = grant_amendment_request(grant=world.grant, by=world.user, users_to_remove=[world.other],
                                            reason="退職のため")
    assert amendment.status == GrantAmendment.Status.RECORDED
    assert amendment.decided_at is None and amendment.decided_by is None
    assert list(amendment.users_removed.all()) == [world.other]
    assert list(world.grant.users.all()) == [world.user]
    assert not _may_download(world.other, world.release)
    assert _may_download(world.user, world.release)
    assert not RequestUser.objects.filter(access_request=world.grant.access_request, user=world.other).exists()
    event = AuditEvent.objects.get(action="access.grant_users_removed")
    assert event.details == {"amendment": amendment.pk, "users": ["colleague@company.example.jp"]}
    assert AuditEvent.objects.get(action="access.amendment_requested").details["users_removed"] == [
        "colleague@company.example.jp"]
    with pytest.raises(LinkRefused) as refused:
        link_issue(grant=world.grant, file=world.file, user=world.other)
    assert refused.value.message == "You are not a named user of this grant."
    link_issue(grant=world.grant, file=world.file, user=world.user)  # the others keep their access
    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == "[Data access] Users were removed from the grant"


def test_removal_keeps_permission_another_grant_gives(world):
    active_grant([world.other], [world.release])
    grant_amendment_request(grant=world.grant, by=world.user, users_to_remove=[world.other], reason="退職")
    assert not world.grant.users.filter(pk=world.other.pk).exists()
    assert _may_download(world.other, world.release)


def test_removal_with_an_extension_leaves_the_extension_pending(world):
    new_last = last_day_of(world.grant) + timedelta(days=180)
    amendment = grant_amendment_request(grant=world.grant, by=world.user, new_expires_on=new_last,
                                        users_to_remove=[world.other], reason="延長と分担者の変更")
    assert amendment.status == GrantAmendment.Status.SUBMITTED
    assert not world.grant.users.filter(pk=world.other.pk).exists()
    assert Grant.objects.get(pk=world.grant.pk).expires_at == amendment.previous_expires_at


# --- the society decides -------------------------------------------------------------------------


def test_approval_extends_grant_record_reports_and_adds_users(
        world, steward, mailoutbox, django_capture_on_commit_callbacks):
    newcomer = _newcomer()
    old_last = last_day_of(world.grant)
    new_last = add_years(old_last, 1) + timedelta(days=10)
    start = timezone.localdate(world.grant.starts_at)
    reports_before = list(UsageReport.objects.filter(grant=world.grant).values_list("kind", "period_to"))
    assert reports_before == [("annual", add_years(start, 1)), ("end_of_use", old_last + timedelta(days=1))]
    with django_capture_on_commit_callbacks(execute=True):
        amendment = grant_amendment_request(
            grant=world.grant, by=world.user, new_expires_on=new_last,
            users_to_add=[_row(newcomer, date(2026, 4, 1), role="contractor")], reason="解析の延長と委託先の追加")
    assert mailoutbox[-1].to == ["steward@jsp.example.jp"]
    assert not _may_download(newcomer, world.release)  # waits for the decision
    assert not world.grant.users.filter(pk=newcomer.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        decided = grant_amendment_decide(amendment=amendment, approve=True, reasons="承認します", by=steward)
    assert decided.status == GrantAmendment.Status.APPROVED
    assert decided.decided_by == steward and decided.decided_at is not None
    grant = Grant.objects.get(pk=world.grant.pk)
    assert grant.expires_at == expiry_for(new_last)
    assert last_day_of(grant) == new_last
    assert grant.access_request.period_end == new_last
    record = ProvisionRecord.objects.get(grant=grant)
    assert record.provided_until == new_last + timedelta(days=1)
    assert record.provider_keep_until == add_years(new_last + timedelta(days=1), 3)
    assert list(UsageReport.objects.filter(grant=grant).order_by("period_to").values_list(
        "kind", "period_to", "due_on", "status")) == [
        ("annual", add_years(start, 1), add_years(start, 1), "due"),
        ("annual", add_years(start, 2), add_years(start, 2), "due"),
        ("end_of_use", new_last + timedelta(days=1), new_last + timedelta(days=1), "due"),
    ]
    assert set(grant.users.values_list("pk", flat=True)) == {world.user.pk, world.other.pk, newcomer.pk}
    assert _may_download(newcomer, world.release)
    named = RequestUser.objects.get(access_request=grant.access_request, user=newcomer)
    assert (named.role, named.ethics_training, named.ethics_training_date) == ("contractor", True, date(2026, 4, 1))
    link_issue(grant=grant, file=world.file, user=newcomer)
    event = AuditEvent.objects.get(action="access.amendment_approved")
    assert event.details["users_added"] == ["newcomer@company.example.jp"]
    assert event.details["expires_at"]["to"] == expiry_for(new_last).isoformat()
    assert mailoutbox[-1].subject == "[Data access] Your extension or change of users was approved"
    assert sorted(mailoutbox[-1].to) == ["researcher@company.example.jp"]
    # Scheduling again adds nothing.
    usage_reports_schedule(grant=grant)
    assert UsageReport.objects.filter(grant=grant).count() == 3


def test_rejection_changes_nothing_but_the_status(world, steward, mailoutbox, django_capture_on_commit_callbacks):
    amendment = grant_amendment_request(
        grant=world.grant, by=world.user, new_expires_on=last_day_of(world.grant) + timedelta(days=60),
        users_to_add=[_row(_newcomer())], reason="延長")
    before = _snapshot(world.grant)
    with pytest.raises(ValidationError) as error:
        grant_amendment_decide(amendment=amendment, approve=False, reasons="", by=steward)
    assert error.value.message_dict == {"reasons": ["Give the reasons for the rejection."]}
    assert GrantAmendment.objects.get(pk=amendment.pk).status == GrantAmendment.Status.SUBMITTED
    with django_capture_on_commit_callbacks(execute=True):
        decided = grant_amendment_decide(amendment=amendment, approve=False, reasons="期間が長すぎる", by=steward)
    assert decided.status == GrantAmendment.Status.REJECTED
    assert decided.decision_reasons == "期間が長すぎる"
    assert _snapshot(world.grant) == before
    assert AuditEvent.objects.get(action="access.amendment_rejected").details["reasons"] == "期間が長すぎる"
    assert mailoutbox[-1].subject == "[Data access] Your extension or change of users was rejected"


def test_decision_refusals_change_nothing(world, steward):
    amendment = grant_amendment_request(
        grant=world.grant, by=world.user, new_expires_on=last_day_of(world.grant) + timedelta(days=60), reason="延長")
    other_steward = UserFactory()
    SocietyMembershipFactory(society=SocietyFactory(), user=other_steward, role="steward")
    before = _snapshot(world.grant)
    for person in (world.user, world.other, other_steward):
        with pytest.raises(PermissionDenied):
            grant_amendment_decide(amendment=amendment, approve=True, by=person)
    assert _snapshot(world.grant) == before
    assert GrantAmendment.objects.get(pk=amendment.pk).status == GrantAmendment.Status.SUBMITTED
    # The grant revoked meanwhile: it can no longer be approved.
    Grant.objects.filter(pk=world.grant.pk).update(status=Grant.Status.REVOKED, revoked_at=timezone.now())
    before = _snapshot(world.grant)
    with pytest.raises(ValidationError) as error:
        grant_amendment_decide(amendment=amendment, approve=True, by=steward)
    assert error.value.messages == ["The grant is no longer in force: the request can only be rejected."]
    assert _snapshot(world.grant) == before
    assert GrantAmendment.objects.get(pk=amendment.pk).status == GrantAmendment.Status.SUBMITTED
    grant_amendment_decide(amendment=amendment, approve=False, reasons="取り消し済み", by=steward)
    with pytest.raises(ValidationError) as error:
        grant_amendment_decide(amendment=amendment, approve=True, by=steward)
    assert error.value.messages == ["This request has already been decided."]
    assert GrantAmendment.objects.get(pk=amendment.pk).status == GrantAmendment.Status.REJECTED


def test_recorded_removal_cannot_be_decided(world, steward):
    amendment = grant_amendment_request(grant=world.grant, by=world.user, users_to_remove=[world.other], reason="退職")
    with pytest.raises(ValidationError):
        grant_amendment_decide(amendment=amendment, approve=True, by=steward)
    assert GrantAmendment.objects.get(pk=amendment.pk).status == GrantAmendment.Status.RECORDED


# --- pages ---------------------------------------------------------------------------------------


def test_create_page_permissions(client, world, steward):
    url = reverse("access:amendment_create", args=[world.grant.pk])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.force_login(world.other)  # a named user, not the applicant
    assert client.get(url).status_code == 403
    client.force_login(steward)
    assert client.get(url).status_code == 403
    assert client.post(url, {"users_to_remove": [world.other.pk], "reason": "x"}).status_code == 403
    assert world.grant.users.filter(pk=world.other.pk).exists()
    assert GrantAmendment.objects.count() == 0


def test_applicant_asks_through_the_page(client, world):
    newcomer = _newcomer()
    client.force_login(world.user)
    grant_page = client.get(reverse("access:grant_detail", args=[world.grant.pk])).content.decode()
    assert reverse("access:amendment_create", args=[world.grant.pk]) in grant_page
    url = reverse("access:amendment_create", args=[world.grant.pk])
    assert client.get(url).status_code == 200
    new_last = last_day_of(world.grant) + timedelta(days=100)
    response = client.post(url, {"new_expires_on": new_last.isoformat(),
                                 "users_to_add": "Newcomer@company.example.jp, 2026-04-01, contractor\n\n",
                                 "users_to_remove": [world.other.pk], "reason": "延長と変更"})
    amendment = GrantAmendment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("access:amendment_detail", args=[amendment.pk])
    assert amendment.new_expires_on == new_last
    assert amendment.users_to_add == [{"user": newcomer.pk, "email": "newcomer@company.example.jp",
                                       "role": "contractor", "ethics_training": True,
                                       "ethics_training_date": "2026-04-01"}]
    assert not world.grant.users.filter(pk=world.other.pk).exists()
    detail = client.get(response["Location"])
    assert detail.status_code == 200
    assert detail.context["decision_form"] is None
    request_page = client.get(reverse("access:request_detail", args=[world.grant.access_request.pk])).content.decode()
    assert reverse("access:amendment_detail", args=[amendment.pk]) in request_page


def test_page_shows_each_problem_and_changes_nothing(client, world):
    client.force_login(world.user)
    url = reverse("access:amendment_create", args=[world.grant.pk])
    before = _snapshot(world.grant)
    response = client.post(url, {"users_to_add": "nobody@example.jp, 2026-01-01\n"
                                 f"{UserFactory(email='late@company.example.jp').email}\n",
                                 "reason": "追加"})
    assert response.status_code == 200
    assert response.context["form"].errors == {"users_to_add": [
        "Line 1: no active account has the address nobody@example.jp."]}
    response = client.post(url, {"users_to_add": "late@company.example.jp\n", "reason": "追加"})
    assert response.context["form"].errors == {"users_to_add": [
        "late@company.example.jp: research-ethics training (completed, with its date) is required."]}
    assert _snapshot(world.grant) == before


def test_detail_and_decision_page_permissions(client, world, steward):
    amendment = grant_amendment_request(
        grant=world.grant, by=world.user, new_expires_on=last_day_of(world.grant) + timedelta(days=30), reason="延長")
    detail = reverse("access:amendment_detail", args=[amendment.pk])
    decide = reverse("access:amendment_decide", args=[amendment.pk])
    client.force_login(UserFactory())
    assert client.get(detail).status_code == 404
    assert client.post(decide, {"decision": "approve"}).status_code == 404
    client.force_login(world.other)
    assert client.get(detail).status_code == 404
    grant_page = client.get(reverse("access:grant_detail", args=[world.grant.pk])).content.decode()
    assert detail not in grant_page  # a named user who did not apply does not see the request
    assert reverse("access:amendment_create", args=[world.grant.pk]) not in grant_page
    client.force_login(world.user)
    assert client.get(detail).status_code == 200
    assert client.post(decide, {"decision": "approve"}).status_code == 403
    assert GrantAmendment.objects.get(pk=amendment.pk).status == GrantAmendment.Status.SUBMITTED
    client.force_login(steward)
    assert detail in client.get(reverse("access:grant_detail", args=[world.grant.pk])).content.decode()
    page = client.get(detail)
    assert page.status_code == 200 and page.context["decision_form"] is not None
    response = client.post(decide, {"decision": "reject", "reasons": ""})
    assert response.status_code == 400
    assert response.context["decision_form"].errors == {"reasons": ["Give the reasons for the rejection."]}
    assert GrantAmendment.objects.get(pk=amendment.pk).status == GrantAmendment.Status.SUBMITTED
    response = client.post(decide, {"decision": "approve", "reasons": "承認"})
    assert response.status_code == 302
    assert GrantAmendment.objects.get(pk=amendment.pk).status == GrantAmendment.Status.APPROVED
    assert last_day_of(Grant.objects.get(pk=world.grant.pk)) == amendment.new_expires_on


def test_steward_queue_lists_amendments_in_constant_queries(client, world, steward, society,
                                                           django_assert_num_queries):
    amendment = grant_amendment_request(
        grant=world.grant, by=world.user, new_expires_on=last_day_of(world.grant) + timedelta(days=30), reason="延長")
    client.force_login(steward)
    client.get(reverse("access:steward_queue"))
    with django_assert_num_queries(11) as first:
        response = client.get(reverse("access:steward_queue"))
    assert [a.pk for a in response.context["amendments"]] == [amendment.pk]
    assert reverse("access:amendment_detail", args=[amendment.pk]) in response.content.decode()
    for index in range(3):
        user = UserFactory()
        grant = active_grant([user], [world.release])
        grant.society = society
        grant.access_request = world.grant.access_request
        grant.save(update_fields=["society", "access_request"])
        GrantAmendment.objects.create(grant=grant, requested_by=world.user, previous_expires_at=grant.expires_at,
                                      new_expires_on=timezone.localdate() + timedelta(days=200 + index), reason="延長")
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get(reverse("access:steward_queue"))
    assert len(response.context["amendments"]) == 4
    client.force_login(world.user)
    assert client.get(reverse("access:steward_queue")).status_code == 403
