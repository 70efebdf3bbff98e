"""The matching page, its CSV export and the API: who may, under which approval, and the audit."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.linkage.models import LinkageApproval, LinkageRecord
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory, give_totp
from tests.factories.datasets import DatasetFactory, make_release

pytestmark = pytest.mark.django_db

D = date(2026, 1, 15)
SUBJECTS = [f"{n:032x}" for n in range(1, 6)]


@pytest.fixture
def operator(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="operator@nii.example.ac.jp", full_name="基盤 運営", is_staff=True)
    give_totp(user)
    return user


@pytest.fixture
def world(society):  # type: ignore[no-untyped-def]
    """jsp (pathology), jges (endoscopy), jrs (radiology); five subjects in jsp and jges."""
    endo = SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会")
    rad = SocietyFactory(slug="jrs", name_ja="日本医学放射線学会")
    out = {}
    for key, soc, modality in (("path", society, "pathology_wsi"), ("endo", endo, "endoscopy"),
                               ("rad", rad, "ct")):
        dataset = DatasetFactory(society=soc, modality=modality)
        out[key] = (soc, dataset, make_release(dataset, [], store=False), modality)
    for n, subject in enumerate(SUBJECTS):
        for key, images in (("path", 2), ("endo", 10 + n)):
            soc, dataset, release, modality = out[key]
            LinkageRecord.objects.create(society=soc, dataset=dataset, release=release,
                                         subject_pseudonym=subject, study_date=D + timedelta(days=n),
                                         modality=modality, image_count=images)
    return out


def approve(user, *socs, by, days=30, revoked=False):  # type: ignore[no-untyped-def]
    approval = LinkageApproval.objects.create(user=user, purpose="胃がんの病理・内視鏡対応付け",
                                              valid_until=timezone.localdate() + timedelta(days=days),
                                              granted_by=by)
    approval.societies.set(socs)
    if revoked:
        approval.revoked_at = timezone.now()
        approval.revoked_by = by
        approval.save()
    return approval


def params(**overrides):  # type: ignore[no-untyped-def]
    query = {"date_from": "2026-01-01", "date_to": "2026-12-31", "societies": ["jsp", "jges"],
             "tolerance_days": "0"}
    return query | overrides


def events(action):  # type: ignore[no-untyped-def]
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def assert_no_pseudonym_in_audit():  # type: ignore[no-untyped-def]
    dump = json.dumps([e.details for e in AuditEvent.objects.all()]) + "".join(
        e.target_repr for e in AuditEvent.objects.all())
    for subject in SUBJECTS:
        assert subject not in dump


# --- Who may open the page -------------------------------------------------------------------------


def test_anonymous_redirected_to_login(client):
    response = client.get("/linkage/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/linkage/"


@pytest.mark.parametrize("url", ["/linkage/", "/linkage/export.csv"])
def test_applicant_forbidden(client, applicant, url, world):
    client.force_login(applicant)

    assert client.get(url, params()).status_code == 403
    assert AuditEvent.objects.filter(action__startswith="linkage.").count() == 0


def test_society_admin_without_approval_sees_the_request_for_one(client, society_admin, world):
    client.force_login(society_admin)

    response = client.get("/linkage/")

    assert response.status_code == 200
    assert b'data-testid="linkage-no-approval"' in response.content
    assert b'data-testid="linkage-form"' not in response.content


@pytest.mark.parametrize("case", ["none", "expired", "revoked", "not_covering"])
def test_results_only_under_an_active_covering_approval(client, society_admin, operator, world, case):
    path, endo, rad = world["path"][0], world["endo"][0], world["rad"][0]
    if case == "expired":
        approve(society_admin, path, endo, by=operator, days=-1)
    elif case == "revoked":
        approve(society_admin, path, endo, by=operator, revoked=True)
    elif case == "not_covering":
        approve(society_admin, path, rad, by=operator)
    client.force_login(society_admin)
    client.cookies["django_language"] = "en"

    response = client.get("/linkage/", params())

    assert response.status_code == 200
    assert b'data-testid="linkage-results"' not in response.content
    assert b'data-testid="linkage-refusal"' in response.content
    assert "linkage approval from the platform operator" in response.content.decode()
    for subject in SUBJECTS:
        assert subject.encode() not in response.content
    refused = events("linkage.query_refused")
    assert [e.details for e in refused] == [{
        "societies": ["jges", "jsp"], "date_from": "2026-01-01", "date_to": "2026-12-31",
        "tolerance_days": 0, "channel": "page",
    }]
    assert refused[0].actor_id == society_admin.pk
    assert events("linkage.query") == []


@pytest.mark.parametrize("case", ["none", "not_covering"])
def test_export_forbidden_without_covering_approval(client, society_admin, operator, world, case):
    if case == "not_covering":
        approve(society_admin, world["path"][0], world["rad"][0], by=operator)
    client.force_login(society_admin)

    response = client.get("/linkage/export.csv", params())

    assert response.status_code == 403
    assert [e.details["channel"] for e in events("linkage.query_refused")] == ["csv"]
    assert events("linkage.export") == []


# --- Results ---------------------------------------------------------------------------------------


def test_page_lists_matches_and_audits_without_pseudonyms(client, society_admin, operator, world):
    approval = approve(society_admin, world["path"][0], world["endo"][0], world["rad"][0], by=operator)
    client.force_login(society_admin)
    client.cookies["django_language"] = "en"

    response = client.get("/linkage/", params())

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="linkage-row"') == 5
    for n, subject in enumerate(SUBJECTS):
        assert subject in html
        assert f"Endoscopy: {10 + n} images" in html
    assert "Pathology whole-slide images: 2 images" in html
    assert 'data-testid="linkage-next"' not in html
    (event,) = events("linkage.query")
    assert event.actor_id == society_admin.pk
    assert event.target_id == str(approval.pk)
    assert event.details == {
        "societies": ["jges", "jsp"], "date_from": "2026-01-01", "date_to": "2026-12-31",
        "tolerance_days": 0, "channel": "page", "rows": 5, "continued": False,
    }
    assert_no_pseudonym_in_audit()


def test_page_offers_only_approved_societies(client, society_admin, operator, world):
    approve(society_admin, world["path"][0], world["endo"][0], by=operator)
    client.force_login(society_admin)

    html = client.get("/linkage/").content.decode()

    assert 'value="jsp"' in html
    assert 'value="jges"' in html
    assert 'value="jrs"' not in html
    assert events("linkage.query") == []  # opening the empty form is not a query


def test_next_page_link_walks_the_pages(client, operator, world, monkeypatch):
    monkeypatch.setattr("portal.linkage.services.PAGE_SIZE", 2)
    approve(operator, world["path"][0], world["endo"][0], by=operator)
    client.force_login(operator)

    seen, url, pages = [], "/linkage/?" + urlencode(params(), doseq=True), 0
    while url:
        html = client.get(url).content.decode()
        pages += 1
        seen += re.findall(r"<td><code>([0-9a-f]{32})</code></td>", html)
        start = html.find('data-testid="linkage-next"')
        if start < 0:
            break
        href = html[html.rfind('href="', 0, start) + 6:]
        url = "/linkage/" + href[:href.index('"')].replace("&amp;", "&")

    assert seen == SUBJECTS
    assert pages == 3
    assert [e.details["rows"] for e in events("linkage.query")] == [2, 2, 1]
    assert [e.details["continued"] for e in events("linkage.query")] == [False, True, True]
    assert_no_pseudonym_in_audit()


def test_bad_cursor_is_a_form_error(client, operator, world):
    approve(operator, world["path"][0], world["endo"][0], by=operator)
    client.force_login(operator)
    client.cookies["django_language"] = "en"

    response = client.get("/linkage/", params(after="garbage"))

    assert response.status_code == 200
    assert "This page link is not valid." in response.content.decode()
    assert events("linkage.query") == []


@pytest.mark.parametrize("extra_subjects", [0, 20])
def test_page_query_count_constant(client, society_admin, operator, world, extra_subjects,
                                   django_assert_num_queries):
    approve(society_admin, world["path"][0], world["endo"][0], by=operator)
    soc, dataset, release, modality = world["endo"]
    for n in range(extra_subjects):
        LinkageRecord.objects.create(society=soc, dataset=dataset, release=release,
                                     subject_pseudonym=f"{n + 100:032x}", study_date=D,
                                     modality=modality, image_count=1)
        soc2, dataset2, release2, modality2 = world["path"]
        LinkageRecord.objects.create(society=soc2, dataset=dataset2, release=release2,
                                     subject_pseudonym=f"{n + 100:032x}", study_date=D,
                                     modality=modality2, image_count=1)
    client.force_login(society_admin)
    client.get("/linkage/")  # session, roles and MFA lookups warm

    # session, user, MFA authenticator x2, roles (org, society, committee), approved societies,
    # chosen societies, covering approval, the matching batch, audit (savepoint-less: head, insert,
    # head update).
    with django_assert_num_queries(16):
        response = client.get("/linkage/", params())

    assert response.status_code == 200
    assert response.content.decode().count('data-testid="linkage-row"') == 5 + extra_subjects


# --- CSV -------------------------------------------------------------------------------------------


def test_csv_export_content_headers_and_audit(client, society_admin, operator, world):
    approve(society_admin, world["path"][0], world["endo"][0], by=operator)
    client.force_login(society_admin)

    response = client.get("/linkage/export.csv", params(tolerance_days="3"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="linkage-')
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert lines[0] == ["仮名化研究対象者ID", "検査日（基準日）", "学会", "モダリティ", "撮影日", "画像数"]
    # tolerance 3: subjects' records are one day apart per subject, same day across societies
    assert lines[1:3] == [
        [SUBJECTS[0], "2026-01-15", "日本病理学会", "病理ホールスライド画像（WSI）", "2026-01-15", "2"],
        [SUBJECTS[0], "2026-01-15", "日本消化器内視鏡学会", "内視鏡画像", "2026-01-15", "10"],
    ]
    assert len(lines) == 1 + 2 * 5
    started, completed = events("linkage.export"), events("linkage.export_completed")
    details = {"societies": ["jges", "jsp"], "date_from": "2026-01-01", "date_to": "2026-12-31",
               "tolerance_days": 3, "channel": "csv"}
    assert [e.details for e in started] == [details]
    assert [e.details for e in completed] == [details | {"rows": 5}]
    assert_no_pseudonym_in_audit()


def test_csv_export_bad_input_400_not_audited(client, operator, world):
    approve(operator, world["path"][0], world["endo"][0], by=operator)
    client.force_login(operator)

    response = client.get("/linkage/export.csv", params(societies=["jsp"]))

    assert response.status_code == 400
    assert AuditEvent.objects.filter(action__startswith="linkage.").count() == 0


# --- API -------------------------------------------------------------------------------------------


def api_params(**overrides):  # type: ignore[no-untyped-def]
    return {"date_from": "2026-01-01", "date_to": "2026-12-31", "societies": "jsp,jges",
            "tolerance_days": "0"} | overrides


def test_api_matches_under_approval_audited(client, society_admin, operator, world):
    approve(society_admin, world["path"][0], world["endo"][0], by=operator)
    client.force_login(society_admin)

    response = client.get("/api/v1/linkage/matches/", api_params())

    assert response.status_code == 200
    data = response.json()
    assert data["next"] is None
    assert [m["subject_pseudonym"] for m in data["results"]] == SUBJECTS
    assert data["results"][0] == {
        "subject_pseudonym": SUBJECTS[0], "exam_date": "2026-01-15", "last_date": "2026-01-15",
        "societies": sorted(["jsp", "jges"], key=lambda slug: {"jsp": world["path"][0].pk,
                                                               "jges": world["endo"][0].pk}[slug]),
        "holdings": data["results"][0]["holdings"],
    }
    assert sorted((h["society"], h["modality"], h["image_count"]) for h in data["results"][0]["holdings"]) == [
        ("jges", "endoscopy", 10), ("jsp", "pathology_wsi", 2)]
    (event,) = events("linkage.query")
    assert event.details["channel"] == "api"
    assert event.details["rows"] == 5
    assert_no_pseudonym_in_audit()


def test_api_next_is_a_cursor_url(client, operator, world, monkeypatch):
    monkeypatch.setattr("portal.linkage.services.PAGE_SIZE", 3)
    approve(operator, world["path"][0], world["endo"][0], by=operator)
    client.force_login(operator)

    first = client.get("/api/v1/linkage/matches/", api_params()).json()
    second = client.get(first["next"]).json()

    assert [m["subject_pseudonym"] for m in first["results"]] == SUBJECTS[:3]
    assert [m["subject_pseudonym"] for m in second["results"]] == SUBJECTS[3:]
    assert second["next"] is None


@pytest.mark.parametrize("case", ["none", "expired", "revoked", "not_covering"])
def test_api_refused_without_covering_approval(client, society_admin, operator, world, case):
    path, endo, rad = world["path"][0], world["endo"][0], world["rad"][0]
    if case == "expired":
        approve(society_admin, path, endo, by=operator, days=-1)
    elif case == "revoked":
        approve(society_admin, path, endo, by=operator, revoked=True)
    elif case == "not_covering":
        approve(society_admin, path, rad, by=operator)
    client.force_login(society_admin)

    response = client.get("/api/v1/linkage/matches/", api_params())

    assert response.status_code == 403
    assert [e.details["channel"] for e in events("linkage.query_refused")] == ["api"]
    assert events("linkage.query") == []


def test_api_applicant_forbidden_and_bad_input_400(client, applicant, operator, world):
    client.force_login(applicant)
    assert client.get("/api/v1/linkage/matches/", api_params()).status_code == 403
    client.force_login(operator)
    response = client.get("/api/v1/linkage/matches/", api_params(tolerance_days="31"))
    assert response.status_code == 400
    assert "tolerance_days" in response.json()["errors"]
    assert AuditEvent.objects.filter(action__startswith="linkage.").count() == 0


def test_api_query_count_constant(client, operator, world, django_assert_num_queries):
    approve(operator, world["path"][0], world["endo"][0], by=operator)
    client.force_login(operator)
    client.get("/api/v1/linkage/matches/", api_params())

    # token/session, user, MFA, roles, chosen societies, covering approval, one matching batch,
    # the audit event.
    with django_assert_num_queries(15):
        response = client.get("/api/v1/linkage/matches/", api_params())

    assert len(response.json()["results"]) == 5


# --- The operator's approval pages -------------------------------------------------------------------


def test_operator_grants_and_revokes_on_the_pages(client, operator, society_admin, world):
    client.force_login(operator)

    response = client.post("/linkage/approvals/new/", {
        "user_email": society_admin.email, "societies": [world["path"][0].pk, world["endo"][0].pk],
        "purpose": "病理と内視鏡の対応付け", "valid_until": (timezone.localdate() + timedelta(days=10)).isoformat(),
    })

    assert response.status_code == 302
    assert response["Location"] == reverse("linkage:approval_list")
    approval = LinkageApproval.objects.get()
    assert approval.user == society_admin
    assert approval.granted_by == operator
    assert sorted(s.slug for s in approval.societies.all()) == ["jges", "jsp"]
    list_page = client.get("/linkage/approvals/")
    assert society_admin.email in list_page.content.decode()

    response = client.post(f"/linkage/approvals/{approval.pk}/revoke/")

    assert response.status_code == 302
    approval.refresh_from_db()
    assert approval.revoked_by == operator
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="linkage.").order_by("id")] == [
        "linkage.approval_granted", "linkage.approval_revoked"]


def test_approval_list_query_count_constant(client, operator, society_admin, world, django_assert_num_queries):
    for _ in range(3):
        approve(society_admin, world["path"][0], world["endo"][0], by=operator)
    client.force_login(operator)
    client.get("/linkage/approvals/")

    with django_assert_num_queries(8):
        client.get("/linkage/approvals/")
    for _ in range(5):
        approve(society_admin, world["path"][0], world["rad"][0], by=operator)
    with django_assert_num_queries(8):
        response = client.get("/linkage/approvals/")
    assert response.content.decode().count("data-approval=") == 8


@pytest.mark.parametrize("url", ["/linkage/approvals/", "/linkage/approvals/new/"])
def test_society_admin_may_not_reach_approval_pages(client, society_admin, url):
    client.force_login(society_admin)

    assert client.get(url).status_code == 403


def test_society_admin_may_not_grant_by_post(client, society_admin, world):
    client.force_login(society_admin)

    response = client.post("/linkage/approvals/new/", {
        "user_email": society_admin.email, "societies": [world["path"][0].pk, world["endo"][0].pk],
        "purpose": "x", "valid_until": "2099-01-01"})

    assert response.status_code == 403
    assert LinkageApproval.objects.count() == 0


def test_other_society_admin_sees_results_too(client, operator, world):
    admin = UserFactory(email="admin@jges.example.jp")
    SocietyMembershipFactory(society=world["endo"][0], user=admin, role="admin")
    give_totp(admin)
    approve(admin, world["path"][0], world["endo"][0], by=operator)
    client.force_login(admin)

    response = client.get("/linkage/", params())

    assert response.content.decode().count('data-testid="linkage-row"') == 5


def test_csv_export_neutralises_a_formula_society_name(client, society_admin, operator, world):
    endo = world["endo"][0]
    endo.name_ja = '=HYPERLINK("http://x","y")'
    endo.save()
    approve(society_admin, world["path"][0], endo, by=operator)
    client.force_login(society_admin)

    body = b"".join(client.get("/linkage/export.csv", params(tolerance_days="3")).streaming_content)

    assert body.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert {line[2] for line in lines[1:]} == {"日本病理学会", '\'=HYPERLINK("http://x","y")'}
