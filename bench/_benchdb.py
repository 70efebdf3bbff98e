"""A throwaway PostgreSQL database for a benchmark, on the server that DATABASE_URL names.

The benchmarks append events that can never be deleted (the log is append-only), so they never
touch the database DATABASE_URL points at: they create their own database beside it, migrate it,
and drop it at the end (unless told to keep it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def add_database_arguments(parser: argparse.ArgumentParser, default_name: str) -> None:
    parser.add_argument(
        "--database",
        default=default_name,
        help=f"name of the throwaway database to create on DATABASE_URL's server (default {default_name})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database afterwards instead of dropping it"
    )


def _server_url(database: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.exit(
            "DATABASE_URL must point at PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432/portal"
        )
    return urlunsplit(parts._replace(path=f"/{database}"))


def _admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    # The server's maintenance database, so that the benchmark database can be dropped.
    return psycopg.connect(_server_url("postgres"), autocommit=True)


@contextmanager
def throwaway_database(name: str, *, keep: bool = False) -> Iterator[None]:
    """Create ``name`` afresh, point Django at it, migrate it; drop it afterwards."""
    if not name.replace("_", "").isalnum():
        sys.exit(f"--database {name!r}: use letters, digits and underscores only")
    from psycopg import sql

    with _admin_connect() as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    os.environ["DATABASE_URL"] = _server_url(name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    # Django needs a secret key with DEBUG off; DEBUG stays off so that queries are not kept.
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault(
        "DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789"
    )
    os.environ.setdefault("PORTAL_PSEUDONYM_KEY", "bench-only-pseudonym-key")
    # Keep one connection open for the whole run, as a worker would.
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "600")
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        print(f"database {name}: created and migrated in {time.perf_counter() - started:.1f} s")
        yield
    finally:
        connections.close_all()
        if not keep:
            with _admin_connect() as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
