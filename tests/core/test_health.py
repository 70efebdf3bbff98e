"""/healthz: every check named in a JSON body, 200 when all pass and 503 naming the one that fails."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.conf import settings
from django.db import OperationalError, connection, connections
from django.test import override_settings
from moto.server import ThreadedMotoServer


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _expected_broker_detail() -> str:
    return "in-process (no broker configured)" if settings.CELERY_TASK_ALWAYS_EAGER else "redis"


def test_healthz_all_ok_returns_200_with_each_check(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage"}
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "broker": True,
        "storage": True,
    }
    assert body["checks"]["database"]["detail"] == connection.vendor
    assert body["checks"]["broker"]["detail"] == _expected_broker_detail()
    assert body["checks"]["storage"]["detail"] == "FileSystemStorage"
    assert all(isinstance(check["ms"], float) for check in body["checks"].values())


def test_healthz_post_is_refused(client, db):
    assert client.post("/healthz").status_code == 405


def test_healthz_broken_database_returns_503_naming_database(client, db, monkeypatch):
    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused (simulated)")

    # Patched on the class, so that undoing it restores the inherited method exactly; undone
    # before the test's transaction is rolled back, which needs a working cursor.
    with monkeypatch.context() as patch:
        patch.setattr(type(connections["default"]), "cursor", refuse)
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"] == {
        "ok": False,
        "detail": "OperationalError",
        "ms": body["checks"]["database"]["ms"],
    }
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["storage"]["ok"] is True


def _point_broker_at_closed_port(monkeypatch: pytest.MonkeyPatch) -> str:
    closed = f"redis://127.0.0.1:{_free_port()}/0"
    # Celery reads CELERY_BROKER_URL from the environment before it looks at Django's settings.
    monkeypatch.setenv("CELERY_BROKER_URL", closed)
    return closed


def test_healthz_unreachable_broker_returns_503_naming_broker(client, db, monkeypatch):
    closed = _point_broker_at_closed_port(monkeypatch)
    with override_settings(CELERY_BROKER_URL=closed, CELERY_TASK_ALWAYS_EAGER=False):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["detail"] == "OperationalError"
    # The public answer does not reveal where the broker lives.
    assert "127.0.0.1" not in response.content.decode()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["storage"]["ok"] is True


def test_healthz_unreachable_broker_does_not_wait_for_a_worker(client, db, monkeypatch):
    closed = _point_broker_at_closed_port(monkeypatch)
    with override_settings(
        CELERY_BROKER_URL=closed, CELERY_TASK_ALWAYS_EAGER=False, PORTAL_HEALTH_CHECK_WORKER=True
    ):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["worker"] == {
        "ok": False,
        "detail": "broker unavailable",
        "ms": 0.0,
    }


def test_healthz_worker_check_is_off_by_default(client, db):
    assert settings.PORTAL_HEALTH_CHECK_WORKER is False
    assert "worker" not in client.get("/healthz").json()["checks"]


def test_healthz_unwritable_storage_returns_503_naming_storage(client, db, tmp_path: Path):
    # A regular file where the storage expects a folder: every save fails with a real OSError.
    blocked = tmp_path / "not-a-folder"
    blocked.write_bytes(b"")
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": blocked},
        },
    }
    with override_settings(STORAGES=storages):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["storage"]["detail"] in {"FileExistsError", "NotADirectoryError"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


@pytest.fixture
def s3_server() -> Iterator[str]:
    """An S3-compatible server (moto) on a free local port; yields its endpoint URL."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_healthz_storage_check_against_s3_leaves_no_object(client, db, s3_server: str):
    bucket = f"healthz-{uuid.uuid4().hex[:12]}"
    credentials = {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": "ap-northeast-1",
    }
    s3 = boto3.client("s3", endpoint_url=s3_server, **credentials)
    s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"}
    )
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_server,
                "access_key": credentials["aws_access_key_id"],
                "secret_key": credentials["aws_secret_access_key"],
                "region_name": credentials["region_name"],
            },
        },
    }
    with override_settings(STORAGES=storages):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["storage"]["ok"] is True
    assert response.json()["checks"]["storage"]["detail"] == "S3Storage"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.close()
