"""A grant's page lists its files (paginated, filterable), each with a link that issues a signed
link through the usual gate; it names the application by number and title."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.access import grant_views
from portal.access.models import Download
from portal.audit.models import AuditEvent
from portal.datasets.models import ReleaseFile
from portal.optout.models import OptOutRequest
from tests.access.test_links import CONTENT, make_world
from tests.factories import UserFactory
from tests.factories.datasets import FileSpec, make_release

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(society, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    return make_world(society)


def _page(client, world, query: str = ""):  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    return client.get(reverse("access:grant_detail", args=[world.grant.pk]) + query)


def _paths(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [file.path for file in response.context["files_page"]]


def test_grant_page_lists_files_with_a_link_each(client, world):
    response = _page(client, world)

    body = response.content.decode()
    assert _paths(response) == ["cases/a.png", "cases/b.png"]
    for file in world.release.files.all():
        assert f'href="{reverse("access:grant_file", args=[world.grant.pk, file.pk])}"' in body


def test_grant_page_shows_the_application_number_and_title(client, world):
    request = world.grant.access_request

    body = _page(client, world).content.decode()

    assert f"{request.reference}</a> — {request.title}</dd>" in body


def test_grant_page_filters_by_path_modality_and_subject(client, world):
    assert _paths(_page(client, world, "?path=B.PNG")) == ["cases/b.png"]
    assert _paths(_page(client, world, "?subject=" + "a" * 6)) == ["cases/a.png"]
    assert _paths(_page(client, world, "?modality=ct")) == []
    assert _paths(_page(client, world, "?modality=endoscopy&path=cases")) == ["cases/a.png", "cases/b.png"]
    assert "該当するファイルはありません。" in _page(client, world, "?modality=ct").content.decode()


def test_grant_page_paginates_files_keeping_the_filter(client, world, monkeypatch):
    monkeypatch.setattr(grant_views, "FILES_PER_PAGE", 1)

    first = _page(client, world, "?path=cases")
    second = _page(client, world, "?path=cases&page=2")

    assert _paths(first) == ["cases/a.png"]
    assert _paths(second) == ["cases/b.png"]
    assert 'href="?path=cases&amp;page=2"' in first.content.decode()


def test_grant_page_leaves_out_files_of_subjects_who_opted_out(client, world):
    OptOutRequest.objects.create(
        handled_by=UserFactory(), reference="OR-T1", society=world.release.dataset.society,
        subject_pseudonym="b" * 32, received_at=timezone.now(), channel="phone",
        requester_type="subject", identity_verification="保険証で確認", extent="future_only",
        action_taken="stop_use",
    )

    assert _paths(_page(client, world)) == ["cases/a.png"]


def test_grant_page_runs_a_fixed_number_of_queries(client, world, django_assert_num_queries):
    make_release(world.release.dataset, [FileSpec("c" * 32, path=f"more/{n:03d}.png") for n in range(30)],
                 store=False)
    url = reverse("access:grant_detail", args=[world.grant.pk])
    _page(client, world)  # signs in, warms the session

    # 25: one of them lists the named users' research-ethics training, however many they are.
    with django_assert_num_queries(25):
        client.get(url)
    world.grant.releases.add(world.release.dataset.releases.get(version=2))
    with django_assert_num_queries(25):
        response = client.get(url)
    assert response.context["files_page"].paginator.count == 32


def test_file_link_issues_a_signed_link_and_the_download_delivers_the_bytes(client, world):
    client.force_login(world.user)

    response = client.get(reverse("access:grant_file", args=[world.grant.pk, world.file.pk]))

    assert response.status_code == 302
    assert response["Location"].startswith("/access/download/")
    download = client.get(response["Location"])
    assert b"".join(download.streaming_content) == CONTENT
    assert Download.objects.get().file == world.file
    assert AuditEvent.objects.filter(action="access.link_issued", details__file=world.file.pk).count() == 1


def test_file_link_of_a_user_not_named_is_refused_and_changes_nothing(client, world):
    stranger_file = world.file
    outsider = UserFactory()
    client.force_login(outsider)

    response = client.get(reverse("access:grant_file", args=[world.grant.pk, stranger_file.pk]))

    assert response.status_code == 404
    assert Download.objects.count() == 0
    assert AuditEvent.objects.filter(action="access.link_issued").count() == 0


def test_file_link_of_a_file_outside_the_grant_is_refused_and_audited(client, world):
    other = make_release(world.release.dataset, [FileSpec("d" * 32, path="other/x.png")], store=False)
    foreign = ReleaseFile.objects.get(release=other)
    client.force_login(world.user)

    response = client.get(reverse("access:grant_file", args=[world.grant.pk, foreign.pk]), follow=True)

    assert response.redirect_chain == [(reverse("access:grant_detail", args=[world.grant.pk]), 302)]
    assert [str(m) for m in response.context["messages"]] == ["このファイルは利用許可の対象ではありません。"]
    assert AuditEvent.objects.filter(action="access.link_refused").get().details["reason"] == "not_in_grant"
    assert AuditEvent.objects.filter(action="access.link_issued").count() == 0
    assert Download.objects.count() == 0


def test_file_link_of_a_revoked_grant_is_refused(client, world):
    world.grant.status = world.grant.Status.REVOKED
    world.grant.revoked_at = timezone.now()
    world.grant.save(update_fields=["status", "revoked_at"])
    client.force_login(world.user)

    response = client.get(reverse("access:grant_file", args=[world.grant.pk, world.file.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("access:grant_detail", args=[world.grant.pk])
    assert AuditEvent.objects.filter(action="access.link_refused").get().details["reason"] == "revoked"
    assert Download.objects.count() == 0


def test_steward_sees_no_file_list(client, world, steward):
    client.force_login(steward)

    response = client.get(reverse("access:grant_detail", args=[world.grant.pk]))

    assert response.status_code == 200
    assert response.context["files_page"] is None
    assert 'data-testid="grant-files"' not in response.content.decode()


def test_grant_list_shows_the_application_title(client, world):
    client.force_login(world.user)

    body = client.get(reverse("access:grant_list")).content.decode()

    assert f'<small data-testid="grant-title">{world.grant.access_request.title}</small>' in body
