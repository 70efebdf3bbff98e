"""Serving files: Range, X-Accel-Redirect, S3 presigned redirects; manifests, pages and the API."""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from django.urls import reverse
from knox.models import AuthToken
from moto.server import ThreadedMotoServer

from portal.access.links import link_issue
from portal.access.models import Download, Grant
from portal.audit.models import AuditEvent
from tests.access.test_links import CONTENT, make_world
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def local_storage(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}


@pytest.fixture
def world(society, local_storage):  # type: ignore[no-untyped-def]
    return make_world(society)


def _get(client, world, **headers):  # type: ignore[no-untyped-def]
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    client.force_login(world.user)
    return client.get(reverse("access:download", args=[link.token]), **headers)


# --- Range ------------------------------------------------------------------------------------------


def test_partial_range(world, client):
    response = _get(client, world, HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == CONTENT[100:200]
    assert response["Content-Range"] == f"bytes 100-199/{len(CONTENT)}"
    assert response["Content-Length"] == "100"
    assert Download.objects.get().byte_range == "100-199"


def test_open_and_suffix_ranges(world, client):
    response = _get(client, world, HTTP_RANGE="bytes=10200-")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == CONTENT[10200:]
    response = _get(client, world, HTTP_RANGE="bytes=-16")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == CONTENT[-16:]
    assert response["Content-Range"] == f"bytes {len(CONTENT) - 16}-{len(CONTENT) - 1}/{len(CONTENT)}"
    response = _get(client, world, HTTP_RANGE="bytes=10000-99999")  # end clipped to the size
    assert b"".join(response.streaming_content) == CONTENT[10000:]


def test_out_of_bounds_range_416(world, client):
    response = _get(client, world, HTTP_RANGE=f"bytes={len(CONTENT)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert _get(client, world, HTTP_RANGE="bytes=-0").status_code == 416
    assert Download.objects.count() == 0


def test_malformed_or_multipart_range_sends_the_whole_file(world, client):
    for header in ("bytes=5-1", "items=1-2", "bytes=0-1,5-6", "bytes=x-"):
        response = _get(client, world, HTTP_RANGE=header)
        assert response.status_code == 200, header
        assert b"".join(response.streaming_content) == CONTENT


def test_accel_redirect(world, client, settings):
    settings.PORTAL_DOWNLOAD_ACCEL_PREFIX = "/protected/"
    response = _get(client, world)
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected/{world.file.storage_key}"
    assert response.content == b""
    assert Download.objects.get().via == "accel"


# --- S3 (moto server) ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_storage(settings) -> Iterator:  # type: ignore[no-untyped-def]
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"releases-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="ap-northeast-1")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": bucket, "endpoint_url": endpoint, "access_key": "testing",
                    "secret_key": "testing", "region_name": "ap-northeast-1", "file_overwrite": False,
                    "signature_version": "s3v4"},
    }}
    try:
        yield s3
    finally:
        s3.close()
        server.stop()


def test_s3_presigned_redirect_fetches_the_bytes_and_expires(society, s3_storage, client, settings):
    world = make_world(society)
    response = _get(client, world)
    assert response.status_code == 302
    url = response["Location"]
    assert "X-Amz-Expires=60" in url
    fetched = requests.get(url, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == CONTENT
    assert Download.objects.get().via == "s3"

    # Presigned now, for 60 seconds (moto's server does not enforce the expiry; S3 does).
    query = parse_qs(urlsplit(url).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((signed_at - datetime.now(UTC)).total_seconds()) < 5
    assert query["X-Amz-Expires"] == ["60"]
    settings.AWS_QUERYSTRING_EXPIRE = 1
    assert "X-Amz-Expires=1&" in _get(client, world)["Location"]


def test_s3_refusals_never_presign(society, s3_storage, client, steward):
    from portal.access.services.grants import grant_revoke

    world = make_world(society)
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    grant_revoke(grant=world.grant, reason="違反", by=steward)
    client.force_login(world.user)
    response = client.get(reverse("access:download", args=[link.token]))
    assert response.status_code == 403
    assert "Location" not in response


# --- Manifests -------------------------------------------------------------------------------------------


def _manifest_url(world, kind="tsv"):  # type: ignore[no-untyped-def]
    return reverse(f"access:manifest_{kind}", args=[world.grant.pk, world.release.pk])


def test_manifest_tsv_and_the_curl_loop(world, client):
    raw = AuthToken.objects.create(world.user)[1]
    auth = {"HTTP_AUTHORIZATION": f"Token {raw}"}
    response = client.get(_manifest_url(world), **auth)
    assert response.status_code == 200
    text = response.content.decode()
    lines = text.splitlines()
    assert lines[0] == "path\tsize\tsha256\tmedia_type\tlink"
    assert len(lines) == 3
    assert AuditEvent.objects.get(action="access.link_issued").details["files"] == 2

    # What the README's loop does: tail -n +2 | while IFS=$'\t' read path size sha media link; curl -o path link
    fetched = {}
    for line in text.splitlines()[1:]:
        path, size, sha, _media, link = line.split("\t")
        body = client.get(link.removeprefix("http://testserver"), **auth)
        data = b"".join(body.streaming_content)
        assert len(data) == int(size) and hashlib.sha256(data).hexdigest() == sha
        fetched[path] = data
    assert fetched["cases/a.png"] == CONTENT
    assert Download.objects.count() == 2


def test_manifest_json_leaves_out_opted_out_subjects(world, client):
    from django.utils import timezone

    from portal.optout.models import OptOutRequest

    OptOutRequest.objects.create(
        handled_by=UserFactory(), reference="OR-T2", society=world.release.dataset.society,
        subject_pseudonym="b" * 32, received_at=timezone.now(), channel="phone", requester_type="subject",
        identity_verification="確認", extent="future_only", action_taken="stop_use",
    )
    client.force_login(world.user)
    rows = client.get(_manifest_url(world, "json")).json()["files"]
    assert [r["path"] for r in rows] == ["cases/a.png"]
    assert rows[0]["sha256"] == world.file.sha256 and rows[0]["size"] == len(CONTENT)


def test_manifest_refusals(world, client, steward):
    client.cookies["django_language"] = "en"  # the refusals' wording is asserted in English
    client.force_login(UserFactory())
    assert client.get(_manifest_url(world)).status_code == 404  # not theirs: not even shown
    client.force_login(steward)  # sees the grant, but is no named user
    assert client.get(_manifest_url(world)).status_code == 403
    client.logout()
    assert client.get(_manifest_url(world)).status_code == 403
    client.cookies["django_language"] = "en"  # signing out cleared the cookies
    Grant.objects.filter(pk=world.grant.pk).update(restricted=True)
    client.force_login(world.user)
    response = client.get(_manifest_url(world))
    assert response.status_code == 403
    assert "usage report is overdue" in response.content.decode()
    assert AuditEvent.objects.filter(action="access.link_issued").count() == 0


def test_manifest_query_count(world, client, django_assert_num_queries):
    client.force_login(world.user)
    client.get(_manifest_url(world))  # warm caches (content types, permissions)
    with django_assert_num_queries(QUERIES_MANIFEST):
        assert client.get(_manifest_url(world)).status_code == 200


# Session, user, roles (3), grant, membership checks, the usability checks, files, one audit event:
# the same whatever the number of files.
QUERIES_MANIFEST = 29


def test_manifest_rate_limited(world, client, settings):
    client.cookies["django_language"] = "en"  # the refusal's wording is asserted in English
    settings.PORTAL_LINK_RATE = 3
    client.force_login(world.user)
    for _ in range(3):  # a manifest counts once, whatever its number of files
        assert client.get(_manifest_url(world)).status_code == 200
    response = client.get(_manifest_url(world))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many download links" in response.content.decode()


# --- Pages and the API agree ---------------------------------------------------------------------------


def test_pages_and_api_agree(world, client, steward, outsider):
    detail = reverse("access:grant_detail", args=[world.grant.pk])
    api = reverse("api-access-grant-manifest", args=[world.grant.pk, world.release.pk])
    client.force_login(world.user)
    page = client.get(detail)
    assert page.status_code == 200
    assert _manifest_url(world) in page.content.decode()
    assert client.get(api).status_code == 200
    assert client.get(reverse("api-access-grant-list")).json()["results"][0]["reference"] == world.grant.reference

    client.force_login(outsider)
    assert client.get(detail).status_code == 404
    assert client.get(api).status_code == 404
    assert client.get(reverse("api-access-grant-list")).json()["results"] == []

    client.force_login(steward)
    page = client.get(detail)
    assert page.status_code == 200 and "grant-revoke" in page.content.decode()
    assert _manifest_url(world) not in page.content.decode()
    assert client.get(api).status_code == 403


def test_api_manifest_with_token(world, client):
    raw = AuthToken.objects.create(world.user)[1]
    response = client.get(reverse("api-access-grant-manifest", args=[world.grant.pk, world.release.pk]),
                          HTTP_AUTHORIZATION=f"Token {raw}")
    assert response.status_code == 200
    files = response.json()["files"]
    assert [f["path"] for f in files] == ["cases/a.png", "cases/b.png"]
    assert files[0]["link"].startswith("http://testserver/access/download/")


def test_revoke_and_extend_pages(world, client, steward, society_admin):
    from tests.factories.datasets import FileSpec, make_release

    client.force_login(world.user)
    response = client.post(reverse("access:grant_revoke", args=[world.grant.pk]), {"reason": "x"})
    assert response.status_code == 403
    client.force_login(steward)
    response = client.post(reverse("access:grant_revoke", args=[world.grant.pk]), {"reason": "契約違反"})
    assert response.status_code == 302
    world.grant.refresh_from_db()
    assert world.grant.status == Grant.Status.REVOKED

    newer = make_release(world.release.dataset, [FileSpec("c" * 32)])
    client.force_login(society_admin)
    response = client.post(reverse("access:grant_extend", args=[world.grant.pk]), {"release": newer.pk})
    assert response.status_code == 302  # refused with a message: the grant is no longer in force
    assert newer not in world.grant.releases.all()


def test_grant_list_query_count(society, local_storage, client, django_assert_num_queries):
    world = make_world(society)
    client.force_login(world.user)
    client.get(reverse("access:grant_list"))
    with django_assert_num_queries(QUERIES_LIST):
        response = client.get(reverse("access:grant_list"))
    assert world.grant.reference in response.content.decode()
    with django_assert_num_queries(QUERIES_API_LIST):
        assert client.get(reverse("api-access-grant-list")).status_code == 200
    # More grants and releases: the same number of queries.
    from tests.factories.access import granted_request
    from tests.factories.datasets import FileSpec, make_release

    for _ in range(3):
        granted_request([world.user], [make_release(world.release.dataset, [FileSpec("d" * 32)])], society=society)
    with django_assert_num_queries(QUERIES_LIST):
        assert client.get(reverse("access:grant_list")).content.decode().count("data-grant=") == 4
    with django_assert_num_queries(QUERIES_API_LIST):
        assert len(client.get(reverse("api-access-grant-list")).json()["results"]) == 4


QUERIES_LIST = 8
QUERIES_API_LIST = 9
