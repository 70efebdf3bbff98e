"""Agreement pages: who sees what (404 to outsiders, 403 to members without the right), creating and
publishing through the pages, reading a published version, the signed PDF, constant query counts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.agreements import services
from portal.agreements.models import AgreementTemplate, AgreementTemplateVersion
from portal.audit.models import AuditEvent
from tests.agreements.test_services import COMPLETE_TERMS, _create, _published, _sign
from tests.factories import (
    OrganizationMembershipFactory,
    SocietyFactory,
    SocietyMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.factories.access import agreement_version
from tests.factories.datasets import DatasetFactory, FileSpec, make_release
from tests.factories.manifests import pseudonym

pytestmark = pytest.mark.django_db

Version = AgreementTemplateVersion


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


@pytest.fixture
def admin_client(client, society_admin):  # type: ignore[no-untyped-def]
    client.force_login(society_admin)
    return client


@pytest.fixture
def other_admin(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="admin@jges.example.jp")
    SocietyMembershipFactory(society=SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会"), user=user, role="admin")
    give_totp(user)
    return user


def _form_data(**overrides: object) -> dict[str, object]:
    data = {name: value for name, value in COMPLETE_TERMS.items() if not isinstance(value, bool)}
    data.update({name: "on" for name, value in COMPLETE_TERMS.items() if value is True})
    for name in ("patent_notice_required", "acknowledgement_required", "cite_dataset_release",
                 "extension_allowed", "destruction_at_end", "deletion_certificate_required",
                 "onward_transfer_prohibited", "reidentification_prohibited", "contact_subjects_prohibited"):
        data[name] = "on"
    data.update(overrides)
    return data


# --- Who sees what ------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client, society, society_admin):
    version = _published(society, society_admin).current_version
    for url in (reverse("agreements:template_list"), reverse("agreements:version_detail", args=[version.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


def test_list_refused_to_people_who_keep_no_agreement(client, outsider, steward):
    for user in (outsider, steward):
        client.force_login(user)
        assert client.get(reverse("agreements:template_list")).status_code == 403
        assert client.get(reverse("agreements:template_create")).status_code == 403


def test_list_shows_only_the_admins_societies(admin_client, society, society_admin, other_admin):
    mine = _create(society, society_admin)
    theirs = agreement_version(SocietyFactory(slug="jrs")).template
    response = admin_client.get(reverse("agreements:template_list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="ja">' in body
    assert f'data-template="{mine.pk}"' in body
    assert f'data-template="{theirs.pk}"' not in body


def test_template_pages_404_for_outsiders_and_other_admins_403_for_members(
    client, society, society_admin, outsider, steward, other_admin
):
    template = _published(society, society_admin)
    draft = services.agreement_version_new(template=template, by=society_admin)
    pages = [reverse("agreements:template_detail", args=[template.pk]),
             reverse("agreements:version_new", args=[template.pk]),
             reverse("agreements:version_edit", args=[draft.pk])]
    for user in (outsider, other_admin):
        client.force_login(user)
        assert [client.get(page).status_code for page in pages] == [404, 404, 404]
        assert client.post(reverse("agreements:version_publish", args=[draft.pk])).status_code == 404
    client.force_login(steward)
    assert [client.get(page).status_code for page in pages] == [403, 403, 403]
    assert client.post(reverse("agreements:version_publish", args=[draft.pk])).status_code == 403
    assert client.post(reverse("agreements:version_edit", args=[draft.pk]), _form_data(fee_jpy=1)).status_code == 403
    draft.refresh_from_db()
    assert (draft.status, draft.fee_jpy) == ("draft", 500000)


def test_published_version_readable_by_everyone_signed_in_draft_only_by_its_admins(
    client, society, society_admin, outsider, steward
):
    template = _published(society, society_admin)
    draft = services.agreement_version_new(template=template, by=society_admin, fee_jpy=0)
    published_url = reverse("agreements:version_detail", args=[template.current_version.pk])
    draft_url = reverse("agreements:version_detail", args=[draft.pk])
    for user in (outsider, steward):
        client.force_login(user)
        response = client.get(published_url)
        assert response.status_code == 200
        body = response.content.decode()
        assert COMPLETE_TERMS["security_obligations_ja"] in body
        assert "第1条（目的）" in body
        assert 'data-testid="version-publish"' not in body
        assert client.get(draft_url).status_code == 404
    client.force_login(society_admin)
    response = client.get(draft_url)
    assert response.status_code == 200
    assert 'data-testid="version-publish"' in response.content.decode()


def test_unknown_objects_are_404(admin_client):
    for name in ("template_detail", "version_new", "version_detail", "version_edit", "signed_pdf"):
        assert admin_client.get(reverse(f"agreements:{name}", args=[999])).status_code == 404


# --- Through the pages --------------------------------------------------------------------------


def test_admin_creates_edits_and_publishes_through_the_pages(admin_client, society):
    assert admin_client.get(reverse("agreements:template_create")).status_code == 200
    response = admin_client.post(reverse("agreements:template_create"), _form_data(
        society=society.pk, kind="data_use", name_ja="病理画像データ利用契約", name_en="", body_ja=""))
    template = AgreementTemplate.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("agreements:template_detail", args=[template.pk])
    draft = template.versions.get()
    assert (draft.status, draft.commercial_use_allowed, draft.fee_jpy) == ("draft", True, 500000)

    # Publishing refuses the missing Japanese text; the draft stays a draft.
    admin_client.post(reverse("agreements:version_publish", args=[draft.pk]))
    draft.refresh_from_db()
    assert draft.status == "draft"

    response = admin_client.post(reverse("agreements:version_edit", args=[draft.pk]),
                                 _form_data(body_ja="第1条 本契約は臨床画像の利用条件を定める。"))
    assert response.status_code == 302
    admin_client.post(reverse("agreements:version_publish", args=[draft.pk]))
    draft.refresh_from_db()
    assert (draft.status, draft.body_ja) == ("published", "第1条 本契約は臨床画像の利用条件を定める。")
    assert admin_client.get(reverse("agreements:version_edit", args=[draft.pk])).status_code == 403

    form_page = admin_client.get(reverse("agreements:version_new", args=[template.pk])).content.decode()
    assert "第1条 本契約は臨床画像の利用条件を定める。" in form_page  # prefilled from the published version
    response = admin_client.post(reverse("agreements:version_new", args=[template.pk]),
                                 _form_data(body_ja=draft.body_ja, fee_jpy=0, change_summary="無償化した。"))
    v2 = template.versions.get(number=2)
    assert response["Location"] == reverse("agreements:version_detail", args=[v2.pk])
    assert (v2.status, v2.fee_jpy, v2.change_summary) == ("draft", 0, "無償化した。")
    history = admin_client.get(reverse("agreements:template_detail", args=[template.pk])).content.decode()
    assert 'data-version="2"' in history and 'data-version="1"' in history


def test_create_form_shows_errors_and_creates_nothing(admin_client, society):
    response = admin_client.post(reverse("agreements:template_create"), _form_data(
        society=society.pk, kind="data_use", name_ja="", term_months="abc"))
    assert response.status_code == 200
    assert AgreementTemplate.objects.count() == 0


# --- The signed PDF -----------------------------------------------------------------------------


@pytest.fixture
def signed(society, society_admin, applicant):  # type: ignore[no-untyped-def]
    from tests.factories.access import AccessRequestFactory

    _published(society, society_admin)
    release = make_release(DatasetFactory(society=society), [FileSpec(subject=pseudonym("P-1"))], store=False)
    access_request = AccessRequestFactory(
        applicant=applicant, organization=applicant.org_memberships.get().organization, reference="DAR-2026-0001")
    access_request.releases.set([release])
    return _sign(access_request, society, applicant)


def test_signed_pdf_for_the_organisation_signatory_admins_and_stewards(client, signed, applicant, society_admin,
                                                                       steward):
    colleague = UserFactory()
    OrganizationMembershipFactory(user=colleague, organization=signed.access_request.organization)
    for user in (applicant, colleague, society_admin, steward):
        client.force_login(user)
        response = client.get(reverse("agreements:signed_pdf", args=[signed.pk]))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert b"".join(response.streaming_content).startswith(b"%PDF-")
    assert AuditEvent.objects.filter(action="agreements.pdf_downloaded").count() == 4


def test_signed_pdf_404_to_everyone_else(client, signed, outsider, other_admin, society):
    committee_member = UserFactory()
    SocietyMembershipFactory(society=society, user=committee_member, role="access_committee")
    give_totp(committee_member)
    for user in (outsider, other_admin, committee_member):
        client.force_login(user)
        assert client.get(reverse("agreements:signed_pdf", args=[signed.pk])).status_code == 404
    assert not AuditEvent.objects.filter(action="agreements.pdf_downloaded").exists()


# --- Query counts -------------------------------------------------------------------------------


def test_template_list_query_count_does_not_grow(client, django_assert_num_queries):
    operator = UserFactory(is_staff=True)
    give_totp(operator)
    client.force_login(operator)

    def add(count: int) -> None:
        for _index in range(count):
            agreement_version(SocietyFactory())

    add(1)
    client.get(reverse("agreements:template_list"))  # warm up the session and the caches
    with django_assert_num_queries(7) as first:
        assert client.get(reverse("agreements:template_list")).status_code == 200
    add(5)
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get(reverse("agreements:template_list"))
    assert response.content.decode().count("data-template=") == 6
