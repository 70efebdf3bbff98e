#!/usr/bin/env python
"""How fast a 1 GiB file is served through a signed download link, and how much memory it takes.

In a throwaway PostgreSQL database and a temporary local storage folder, builds a dataset release
with two files (1 GiB and 64 MiB of pseudo-random bytes), a grant in force for one user with an
API token, and starts the portal under gunicorn (one sync worker, as deployed without nginx).
Then, for each file, issues a signed link (``link_issue``) and fetches it over HTTP with a
streaming client (``Authorization: Token``), and reads the same file straight from disk in the
same run. Before every measurement the file is dropped from the page cache (posix_fadvise
DONTNEED), so that both sides read it from the disk rather than copy it from memory. Prints MB/s of both, the ratio (served / disk; the aim is at least 0.8) and the worker's
peak resident memory (VmHWM) after the 64 MiB file and after the 1 GiB file: it must not grow
with the size of the file (the view streams, it never reads a file whole).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal python bench/download_1g.py
    DATABASE_URL=... python bench/download_1g.py --size-mib 256 --small-mib 16
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _benchdb import ROOT, add_database_arguments, throwaway_database

REPEAT = 3
CHUNK = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the large file (default 1024 MiB)")
    parser.add_argument("--small-mib", type=int, default=64, help="size of the small file (default 64 MiB)")
    add_database_arguments(parser, "portal_bench_download")
    args = parser.parse_args()
    media = Path(tempfile.mkdtemp(prefix="portal-bench-download-"))
    # Settings read the storage folder when Django starts, inside throwaway_database.
    os.environ["PORTAL_DATA_DIR"] = str(media)
    os.environ.setdefault("PORTAL_PSEUDONYM_KEY", "bench-only-pseudonym-key-not-for-production")
    try:
        with throwaway_database(args.database, keep=args.keep):
            run(media, args.size_mib, args.small_mib)
    finally:
        shutil.rmtree(media, ignore_errors=True)


def write_file(path: Path, mib: int) -> str:
    """``mib`` MiB of pseudo-random bytes (a fresh block per MiB); returns the SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    seed = os.urandom(CHUNK)
    with path.open("wb") as out:
        for index in range(mib):
            block = index.to_bytes(8, "big") + seed[8:]
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def build(media: Path, size_mib: int, small_mib: int):  # type: ignore[no-untyped-def]
    from django.utils import timezone
    from knox.models import AuthToken

    from portal.datasets.models import DatasetRelease, ReleaseFile
    from tests.factories import UserFactory
    from tests.factories.datasets import DatasetFactory, active_grant, published_notice

    dataset = DatasetFactory(slug="bench-download")
    published_notice(dataset)
    release = DatasetRelease.objects.create(
        dataset=dataset, version=1, source=DatasetRelease.Source.IMPORT, manifest_sha256="0" * 64,
        case_count=2, image_count=2, file_count=2, total_bytes=(size_mib + small_mib) * CHUNK,
    )
    files = {}
    for name, mib in (("small.bin", small_mib), ("large.bin", size_mib)):
        key = f"{release.storage_prefix}{name}"
        started = time.perf_counter()
        sha = write_file(media / "files" / key, mib)
        print(f"wrote {name}: {mib} MiB in {time.perf_counter() - started:.1f} s")
        files[name] = ReleaseFile.objects.create(
            release=release, path=name, storage_key=key, size=mib * CHUNK, sha256=sha,
            media_type="application/octet-stream", subject_pseudonym=hashlib.md5(name.encode(), usedforsecurity=False).hexdigest(),
            modality=dataset.modality,
        )
    user = UserFactory(email="bench@company.example.jp")
    grant = active_grant([user], [release], days=1)
    token = AuthToken.objects.create(user)[1]
    assert timezone.now() < grant.expires_at
    return user, grant, files, token


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BARE_APP = """
import os

def application(environ, start_response):
    path = os.path.join(os.environ["BENCH_FILES"], environ["PATH_INFO"].lstrip("/"))
    if not os.path.isfile(path):
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    handle = open(path, "rb")
    start_response("200 OK", [("Content-Length", str(os.path.getsize(path))),
                              ("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](handle, 1024 * 1024)
"""


def start_server(port: int, *, bare: Path | None = None) -> subprocess.Popen:  # type: ignore[type-arg]
    """The portal under gunicorn, or (``bare``: a folder of files) a bare WSGI file server."""
    env = os.environ | {
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "DJANGO_SECURE_SSL_REDIRECT": "0", "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_HSTS_SECONDS": "0",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    app, cwd = "portal.wsgi:application", ROOT
    if bare is not None:
        (bare.parent / "bench_bare_app.py").write_text(BARE_APP)
        app, cwd, env = "bench_bare_app:application", bare.parent, env | {"BENCH_FILES": str(bare)}
    server = subprocess.Popen(  # noqa: S603 - our own gunicorn, fixed arguments
        [str(gunicorn), app, "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--timeout", "600", "--log-level", "warning"],
        cwd=cwd, env=env,
    )
    import requests  # only to wait for the server

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return server
        except requests.ConnectionError:
            time.sleep(0.2)
    server.kill()
    sys.exit("gunicorn did not start")


def worker_pid(master: int) -> int:
    try:
        import psutil

        children = psutil.Process(master).children()
        return children[0].pid if children else master
    except ImportError:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return int(children[0]) if children else master


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache, so that every run reads it from the disk."""
    with path.open("rb") as handle:
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def fetch(url: str, token: str) -> tuple[int, float]:
    """GET ``url`` and read the body into one reused buffer, as fast as the client can take it."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    buffer = memoryview(bytearray(CHUNK))
    started = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    try:
        connection.request("GET", parts.path, headers={"Authorization": f"Token {token}"})
        response = connection.getresponse()
        if response.status != 200:
            raise SystemExit(f"{url}: HTTP {response.status} {response.read()[:300]!r}")
        received = 0
        while count := response.readinto(buffer):
            received += count
    finally:
        connection.close()
    return received, time.perf_counter() - started


def read_disk(path: Path) -> tuple[int, float]:
    """Read the file from disk with the same buffer: what a download is measured against."""
    buffer = memoryview(bytearray(CHUNK))
    started = time.perf_counter()
    received = 0
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            received += count
    return received, time.perf_counter() - started


def run(media: Path, size_mib: int, small_mib: int) -> None:
    from django.db import connections
    from django.urls import reverse

    from portal.access.links import link_issue

    user, grant, files, token = build(media, size_mib, small_mib)
    connections.close_all()
    portal_rates: dict[str, float] = {}
    disk_rates: dict[str, float] = {}
    rss: dict[str, float] = {}
    port = free_port()
    server = start_server(port)
    try:
        worker = worker_pid(server.pid)
        print(f"portal's gunicorn worker {worker}: peak RSS {peak_rss_mib(worker):.1f} MiB after start")
        # Warm up the worker (imports, database connection) with one request.
        warm = link_issue(grant=grant, file=files["small.bin"], user=user)
        fetch(f"http://127.0.0.1:{port}{reverse('access:download', args=[warm.token])}", token)
        # Each file REPEAT times, the download and the disk read interleaved (the same disk
        # conditions for both); the medians are compared.
        for name in ("small.bin", "large.bin"):
            file = files[name]
            path = media / "files" / file.storage_key
            served, read = [], []
            for _ in range(REPEAT):
                link = link_issue(grant=grant, file=file, user=user)
                evict(path)
                size, seconds = fetch(f"http://127.0.0.1:{port}{reverse('access:download', args=[link.token])}", token)
                assert size == file.size, f"{name}: received {size} bytes of {file.size}"
                served.append(size / 1e6 / seconds)
                evict(path)
                size, seconds = read_disk(path)
                read.append(size / 1e6 / seconds)
            portal_rates[name] = statistics.median(served)
            disk_rates[name] = statistics.median(read)
            rss[name] = peak_rss_mib(worker)
    finally:
        server.terminate()
        server.wait(timeout=30)

    # The same files from a bare WSGI app under the same gunicorn (sendfile, no checks): the ceiling
    # of this machine's loopback network, for comparison.
    bare_rates: dict[str, float] = {}
    port = free_port()
    server = start_server(port, bare=media / "files")
    try:
        for name in ("small.bin", "large.bin"):
            url = f"http://127.0.0.1:{port}/{files[name].storage_key}"
            fetch(url, token) if name == "small.bin" else None
            evict(media / "files" / files[name].storage_key)
            size, seconds = fetch(url, token)
            bare_rates[name] = size / 1e6 / seconds
    finally:
        server.terminate()
        server.wait(timeout=30)


    print()
    print(f"{'file':<10} {'MiB':>6} {'portal MB/s':>12} {'bare MB/s':>10} {'disk MB/s':>10} "
          f"{'portal/disk':>12} {'portal/bare':>12} {'portal worker peak RSS (MiB)':>29}")
    for name in ("small.bin", "large.bin"):
        print(f"{name:<10} {files[name].size / CHUNK:>6.0f} {portal_rates[name]:>12.0f} {bare_rates[name]:>10.0f} "
              f"{disk_rates[name]:>10.0f} {portal_rates[name] / disk_rates[name]:>12.2f} "
              f"{portal_rates[name] / bare_rates[name]:>12.2f} {rss[name]:>29.1f}")
    print(f"\nportal worker's peak RSS grew by {rss['large.bin'] - rss['small.bin']:.1f} MiB from the "
          f"{small_mib} MiB file to the {size_mib} MiB file")


if __name__ == "__main__":
    main()
