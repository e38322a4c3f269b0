"""A dependency that hangs or refuses (issue 13, item 3): requests that need it answer 503 with
Retry-After (a sentence; JSON for the API) within their timeouts, never 500 and never a hang; static
files and published renditions are served all along, since they do not need it; everything works
again once it is back.

The database sits behind a TCP proxy in the test (tests/servers.py) that stops forwarding (hung) or
closes its port (refusing); the app runs under uvicorn with short timeouts (``FAST``).
"""

from __future__ import annotations

import io
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import make_url

from kiln import storage
from kiln.accounts import services as accounts
from kiln.app import create_app
from kiln.db.health import availability_for
from kiln.db.session import Timeouts
from kiln.processing.dispatch import RecordingDispatcher
from kiln.runtime import Runtime, build_runtime
from kiln.web.deps import SESSION_COOKIE
from tests.conftest import PG_URL, fresh_database, make_settings
from tests.servers import Proxy, free_port, uvicorn_serving
from tests.storage.conftest import SWIFT_URL, swift_running

pytestmark = pytest.mark.db

# Short enough for a test; the shape of kiln.db.session.WEB.
FAST = Timeouts(connect=2, statement=0.5, pool=1, lock=1, queue=2, grace=0.5)
# The longest a request may take with the database gone: the page cache's counter read or the pool's
# ping (1 s each), then connecting (2 s); then 503 at once.
BOUND = 6.0
# Static files and renditions while a dependency is down: a blocked event loop or a thread pool full of
# waiting requests would take the timeouts (seconds) or hang; a busy shared machine takes milliseconds.
FILES_WITHIN = 4.0  # under the 5-10 s a wait on the dead dependency would take; loose for a loaded machine
MEDIA = "/media/fault/pixel.png"
STATIC = "/static/kiln.css"
needs_postgresql = pytest.mark.skipif(not PG_URL, reason="a database reached over TCP (PostgreSQL)")
needs_sqlite = pytest.mark.skipif(bool(PG_URL), reason="SQLite's lock wait")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


@dataclass
class Site:
    url: str
    rt: Runtime
    token: str
    login: str

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def upload(self, name: str = "a.png") -> httpx.Response:
        return httpx.post(self.url + "/api/v1/media", headers=self.auth(), timeout=30,
                          files={"file": (name, png(), "image/png")})


def open_site(tmp_path: Path, db_url: str, check: bool = True, **settings: Any) -> Iterator[Site]:
    """The app under uvicorn with FAST timeouts, alice with a token and a login, a published file;
    with ``check``, everything is first shown to work."""
    rt = build_runtime(make_settings(tmp_path / "data", db_url, **settings), dispatcher=RecordingDispatcher(),
                       timeouts=FAST)
    availability_for(db_url).cooldown = 1.0  # try the database again after 1 s instead of 5
    with rt.sessions() as session:
        user = accounts.create_user(session, "alice", "alice@example.com", "correct horse", verified=True)
        session.flush()
        token = accounts.create_api_token(session, user, "faults", "write")
        login = accounts.start_session(session, user)
        session.commit()
    rt.stores.public.save(["fault", "pixel.png"], io.BytesIO(png()))
    try:
        with uvicorn_serving(create_app(rt.settings, rt)) as url:
            site = Site(url, rt, token, login)
            if check:
                assert_all_works(site)
            yield site
    finally:
        rt.close()


@pytest.fixture
def proxied_site(tmp_path: Path) -> Iterator[tuple[Site, Proxy]]:
    """A site on a fresh PostgreSQL database reached through a proxy."""
    with fresh_database(tmp_path) as real_url:
        real = make_url(real_url)
        proxy = Proxy((real.host or "127.0.0.1", real.port or 5432))
        try:
            through = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            for site in open_site(tmp_path, through):
                yield site, proxy
        finally:
            proxy.close()


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def get(site: Site, path: str, **kwargs: Any) -> Callable[[], httpx.Response]:
    return lambda: httpx.get(site.url + path, timeout=30, **kwargs)


def needs_database(site: Site) -> dict[str, Callable[[], httpx.Response]]:
    """Requests that cannot be answered without the database, one of each shape."""
    return {
        "front page (anonymous, cached)": get(site, "/"),
        "gallery page": get(site, "/u/alice"),
        "API list (token)": get(site, "/api/v1/media", headers=site.auth()),
        "API upload": lambda: site.upload(),
        "upload page (logged in)": get(site, "/upload", cookies={SESSION_COOKIE: site.login}),
    }


def assert_all_works(site: Site) -> None:
    for name, call in needs_database(site).items():
        response = call()
        assert response.status_code in (200, 202), (name, response.status_code, response.text[:300])
    assert_files_served(site, within=5.0)


def assert_files_served(site: Site, within: float) -> None:
    for path in (STATIC, MEDIA):
        response, took = timed(get(site, path))
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        assert took < within, f"{path} took {took:.2f} s"


def assert_unavailable(site: Site) -> None:
    """Every request that needs the database answers 503 with Retry-After within BOUND seconds, while
    files keep coming (asked for again and again while those requests wait)."""
    with ThreadPoolExecutor(8) as pool:
        futures = {name: pool.submit(timed, call) for name, call in needs_database(site).items()}
        while not all(f.done() for f in futures.values()):
            assert_files_served(site, within=FILES_WITHIN)
            time.sleep(0.1)
        answers = {name: f.result() for name, f in futures.items()}
    for name, (response, took) in answers.items():
        assert took < BOUND, f"{name} took {took:.1f} s"
        assert response.status_code == 503, (name, response.status_code, response.text[:300])
        assert int(response.headers["retry-after"]) >= 1, name
        if "API" in name:
            assert response.json()["error"]["code"] in ("database_unavailable", "busy"), name
        else:
            assert "Try again in a few seconds" in response.text, name
    assert_files_served(site, within=FILES_WITHIN)


def assert_recovers(site: Site, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while get(site, "/")().status_code != 200:
        assert time.monotonic() < deadline, "the site did not come back"
        time.sleep(0.2)
    assert_all_works(site)


@needs_postgresql
def test_a_hung_database_answers_503_in_time_and_files_are_still_served(proxied_site):
    site, proxy = proxied_site
    proxy.pause()
    try:
        assert_unavailable(site)
        assert_unavailable(site)  # known to be down now: at once
    finally:
        proxy.resume()
    assert_recovers(site)


@needs_postgresql
def test_a_database_that_refuses_connections_answers_503_and_files_are_still_served(proxied_site):
    site, proxy = proxied_site
    proxy.stop()
    try:
        assert_unavailable(site)
    finally:
        proxy.start()
    assert_recovers(site)


@needs_sqlite
def test_a_locked_sqlite_database_answers_503_after_a_short_wait_not_thirty_seconds(tmp_path, db_url):
    """Another process holds SQLite's write lock: a web request waits FAST.lock (1 s; 5 s in WEB), not
    the 30 s a worker may wait, then answers 503; reading goes on meanwhile."""
    for site in open_site(tmp_path, db_url):
        holder = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            response, took = timed(site.upload)
            assert response.status_code == 503 and took < BOUND, (response.status_code, took, response.text)
            assert response.json()["error"]["code"] == "busy" and int(response.headers["retry-after"]) >= 1
            listed = httpx.get(site.url + "/api/v1/media", headers=site.auth(), timeout=30)
            assert listed.status_code == 200
            assert_files_served(site, within=FILES_WITHIN)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert site.upload().status_code == 202


def test_an_object_store_that_refuses_answers_503_and_the_rest_of_the_site_works(tmp_path, db_url, monkeypatch):
    """The queue store on S3 (Swift's S3 API, through a proxy) whose port is closed: uploads answer 503
    with Retry-After and a sentence that names no host; pages, the API, static files and local
    renditions are unaffected; once the port opens again, uploads are taken. (Without Swift running,
    a closed port and no recovery.)"""
    monkeypatch.setattr(storage, "OPEN_RETRY", 0.5)  # a store that failed is tried again after 0.5 s, not 5
    swift = urlsplit(SWIFT_URL)
    proxy = Proxy((swift.hostname or "127.0.0.1", swift.port or 8080)) if swift_running() else None
    endpoint = f"http://127.0.0.1:{proxy.port if proxy else free_port()}"
    backend = {"type": "s3", "endpoint_url": endpoint, "access_key": "test:tester", "secret_key": "testing",
               "prefix": "t" + uuid.uuid4().hex[:12]}
    if proxy is not None:
        proxy.stop()
    try:
        for site in open_site(tmp_path, db_url, check=False, storage={"backends": {"s3": backend}, "queue": "s3"}):
            with ThreadPoolExecutor(4) as pool:
                uploads = [pool.submit(timed, site.upload) for _ in range(4)]
                while not all(f.done() for f in uploads):
                    assert_files_served(site, within=FILES_WITHIN)
            response, took = uploads[0].result()
            assert all(f.result()[0].status_code == 503 for f in uploads)
            assert took < 20, took
            assert response.headers["retry-after"] == "10"
            error = response.json()["error"]
            assert error["code"] == "storage_error" and "127.0.0.1" not in error["message"], error
            for path in ("/", "/u/alice", "/api/v1/media", STATIC, MEDIA):
                assert httpx.get(site.url + path, timeout=30).status_code == 200, path
            if proxy is not None:
                proxy.start()
                time.sleep(0.6)
                assert site.upload().status_code == 202
    finally:
        if proxy is not None:
            proxy.close()
