"""Shared personas and the rules every test run follows.

Under ``CI=true`` a test may not skip: a missing server or browser there is a failure, because CI
is where the real PostgreSQL, Redis and Chromium must be exercised.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.db.backends.signals import connection_created

from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    SocietyFactory,
    SocietyMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.support.browser import _end_stray_connections, browser, open_page, page  # noqa: F401  (fixtures)
from tests.support.ci import IN_CI


def _allow_audit_truncate(sender: Any, connection: Any, **kwargs: Any) -> None:
    # The append-only trigger refuses TRUNCATE unless the session allows it; the test runner
    # empties tables with TRUNCATE between transactional tests.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET portal.allow_audit_truncate = 'on'")


connection_created.connect(_allow_audit_truncate, dispatch_uid="tests_allow_audit_truncate")


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1"… under pytest-xdist
    if worker:
        _data_folder_of_its_own(worker)


def _data_folder_of_its_own(worker: str) -> None:
    """Move this xdist worker's stored files to PORTAL_DATA_DIR/<worker>.

    pytest-django gives each worker its own test database, and every one of them numbers its rows
    from 1: in one shared folder two workers would write, read and delete the same keys
    (``ai/jobs/1/inputs/00001.png``). The settings were read before any conftest, so the paths
    under the folder are moved here; child processes inherit the worker's folder through
    PORTAL_DATA_DIR.
    """
    from django.conf import settings
    from django.test.utils import override_settings

    shared = Path(settings.DATA_DIR)
    own = shared / worker

    def moved(path: Any) -> Path:
        return own / Path(path).relative_to(shared)

    default = settings.STORAGES["default"]
    options = dict(default.get("OPTIONS", {}))
    if "location" in options:
        options["location"] = moved(options["location"])
    os.environ["PORTAL_DATA_DIR"] = str(own)
    # Never disabled: the worker process ends with the run.
    override_settings(
        DATA_DIR=own,
        MEDIA_ROOT=moved(settings.MEDIA_ROOT),
        STORAGES={**settings.STORAGES, "default": {**default, "OPTIONS": options}},
    ).enable()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if IN_CI and report.skipped and report.when in {"setup", "call"}:
        # Turn the skip into a failure: under CI nothing may be left untested.
        report.outcome = "failed"  # type: ignore[assignment]
        report.longrepr = f"skipped under CI=true, which is not allowed: {report.longrepr}"


@pytest.fixture(autouse=True)
def _empty_memory_cache() -> None:
    # allauth counts sign-ins per address in the cache; left over from earlier tests, the count
    # reaches its rate limit in a fast run and a later test gets 429. (A Redis cache given by
    # CACHE_URL is left alone: clearing it would flush that Redis database.)
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    for cache in caches.all():
        if isinstance(cache, LocMemCache):
            cache.clear()


@pytest.fixture
def applicant(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="applicant@example.co.jp", full_name="申請 太郎")
    OrganizationMembershipFactory(
        user=user, organization=OrganizationFactory(kind="company", name_ja="テスト株式会社")
    )
    return user


@pytest.fixture
def outsider(db):  # type: ignore[no-untyped-def]
    return UserFactory(email="outsider@example.com", full_name="部外 者")


@pytest.fixture
def society(db):  # type: ignore[no-untyped-def]
    return SocietyFactory(
        slug="jsp", name_ja="日本病理学会", name_en="The Japanese Society of Pathology"
    )


@pytest.fixture
def society_admin(society):  # type: ignore[no-untyped-def]
    user = UserFactory(email="admin@jsp.example.jp", full_name="学会 管理者")
    SocietyMembershipFactory(society=society, user=user, role="admin")
    give_totp(user)
    return user


@pytest.fixture
def steward(society):  # type: ignore[no-untyped-def]
    user = UserFactory(email="steward@jsp.example.jp", full_name="情報 管理者")
    SocietyMembershipFactory(society=society, user=user, role="steward")
    give_totp(user)
    return user


@pytest.fixture
def committee(db):  # type: ignore[no-untyped-def]
    from tests.factories.ethics import EthicsCommitteeFactory

    return EthicsCommitteeFactory()


@pytest.fixture
def committee_member(committee):  # type: ignore[no-untyped-def]
    from tests.factories.ethics import CommitteeMembershipFactory

    user = UserFactory(email="committee@univ.example.ac.jp", full_name="倫理 審査委員")
    CommitteeMembershipFactory(committee=committee, user=user)
    give_totp(user)
    return user


@pytest.fixture
def auditor(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="auditor@nii.example.ac.jp", full_name="監査 担当")
    OrganizationMembershipFactory(
        user=user, organization=OrganizationFactory(kind="operator"), role="auditor"
    )
    give_totp(user)
    return user


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    # PBKDF2 with production iterations makes every persona cost most of a second to create.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _english_outside_requests():  # type: ignore[no-untyped-def]
    """Service and unit tests read messages in the source language (English).

    Pages still answer in Japanese by default: the locale middleware activates the person's
    language for every request the test client makes.
    """
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _tasks_in_process(request):  # type: ignore[no-untyped-def]
    """Tasks queued by services run in-process, even when CI sets a real broker.

    Otherwise a test that waits for a task's result would wait for a worker that is not there.
    Tests marked ``worker`` start a real worker and keep the broker.
    """
    from portal.celery import app

    if request.node.get_closest_marker("worker"):
        yield
        return
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
