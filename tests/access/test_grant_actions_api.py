"""Grants through the API: 延長・変更申請 and its decision, usage reports (submit, confirm, accept),
revocation — the pages' checks and services, refusals that change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.access.models import Grant, GrantAmendment, UsageReport
from portal.access.services.amendments import last_day_of
from tests.access.test_amendments import _snapshot, world  # noqa: F401  (the fixture)
from tests.factories import OrganizationMembershipFactory, UserFactory, give_totp
from tests.support.api_caller import Caller

pytestmark = pytest.mark.django_db

ANNUAL = {"progress": "300症例を解析した。", "deviations": "なし", "user_changes": "なし",
          "security_recheck": "チェックリストを再確認した。"}


def _ok(response, code=200):  # type: ignore[no-untyped-def]
    assert response.status_code == code, response.content
    return response.json()


def test_extension_requested_and_approved_through_api(client, world, steward):  # noqa: F811
    grant = world.grant
    new_last_day = last_day_of(grant) + timedelta(days=90)

    asked = _ok(Caller(client, world.user).post(f"/api/v1/access/grants/{grant.pk}/amendments/", {
        "new_expires_on": new_last_day.isoformat(), "reason": "解析の延長"}), 201)
    assert asked["status"] == "submitted"
    decided = _ok(Caller(client, steward).post(f"/api/v1/access/amendments/{asked['id']}/decide/",
                                               {"approve": True}))

    assert decided["status"] == GrantAmendment.Status.APPROVED
    assert last_day_of(Grant.objects.get(pk=grant.pk)) == new_last_day


def test_extension_by_other_named_user_is_403_and_by_outsider_404_and_nothing_changes(
        client, world, outsider):  # noqa: F811
    before = _snapshot(world.grant)
    body = {"new_expires_on": (last_day_of(world.grant) + timedelta(days=90)).isoformat(), "reason": "延長"}

    by_colleague = Caller(client, world.other).post(f"/api/v1/access/grants/{world.grant.pk}/amendments/", body)
    by_outsider = Caller(client, outsider).post(f"/api/v1/access/grants/{world.grant.pk}/amendments/", body)

    assert by_colleague.status_code == 403
    assert by_outsider.status_code == 404
    assert _snapshot(world.grant) == before


def test_amendment_decision_by_applicant_is_403_and_nothing_changes(client, world):  # noqa: F811
    asked = _ok(Caller(client, world.user).post(f"/api/v1/access/grants/{world.grant.pk}/amendments/", {
        "new_expires_on": (last_day_of(world.grant) + timedelta(days=90)).isoformat(), "reason": "延長"}), 201)
    before = _snapshot(world.grant)

    response = Caller(client, world.user).post(f"/api/v1/access/amendments/{asked['id']}/decide/", {"approve": True})

    assert response.status_code == 403
    assert GrantAmendment.objects.get(pk=asked["id"]).status == GrantAmendment.Status.SUBMITTED
    assert _snapshot(world.grant) == before


def test_usage_report_submitted_confirmed_and_accepted_through_api(client, world, steward):  # noqa: F811
    report = UsageReport.objects.filter(grant=world.grant).order_by("due_on").first()
    head = UserFactory(email="head@company.example.jp")
    OrganizationMembershipFactory(user=head, organization=world.grant.access_request.organization, role="head")
    give_totp(head)

    submitted = _ok(Caller(client, world.user).post(f"/api/v1/access/reports/{report.pk}/submit/", ANNUAL))
    assert submitted["status"] == UsageReport.Status.SUBMITTED
    # The applicant is the principal investigator of the granted request.
    _ok(Caller(client, world.user).post(f"/api/v1/access/reports/{report.pk}/confirm/", {"as_role": "pi"}))
    _ok(Caller(client, head).post(f"/api/v1/access/reports/{report.pk}/confirm/", {"as_role": "head"}))
    accepted = _ok(Caller(client, steward).post(f"/api/v1/access/reports/{report.pk}/accept/"))

    assert accepted["status"] == UsageReport.Status.ACCEPTED


def test_usage_report_submit_by_outsider_is_404_and_twice_is_refused(client, world, outsider):  # noqa: F811
    report = UsageReport.objects.filter(grant=world.grant).order_by("due_on").first()

    assert Caller(client, outsider).post(f"/api/v1/access/reports/{report.pk}/submit/", ANNUAL).status_code == 404
    assert UsageReport.objects.get(pk=report.pk).status == UsageReport.Status.DUE
    _ok(Caller(client, world.user).post(f"/api/v1/access/reports/{report.pk}/submit/", ANNUAL))
    submitted_at = UsageReport.objects.get(pk=report.pk).submitted_at
    again = Caller(client, world.user).post(f"/api/v1/access/reports/{report.pk}/submit/", ANNUAL)

    assert again.status_code == 400
    assert UsageReport.objects.get(pk=report.pk).submitted_at == submitted_at


def test_grant_revoked_by_steward_not_by_named_user(client, world, steward):  # noqa: F811
    by_user = Caller(client, world.user).post(f"/api/v1/access/grants/{world.grant.pk}/revoke/", {"reason": "違反"})

    assert by_user.status_code == 403
    assert by_user.json()["detail"] == "利用許可を取り消せるのは学会のデータスチュワードだけです。"
    assert Grant.objects.get(pk=world.grant.pk).status == Grant.Status.ACTIVE
    revoked = _ok(Caller(client, steward).post(f"/api/v1/access/grants/{world.grant.pk}/revoke/",
                                               {"reason": "契約違反"}))
    assert revoked["status"] == Grant.Status.REVOKED
