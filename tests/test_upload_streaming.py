"""Uploads stream: refused before the body when the sender or the size is wrong, read in chunks into
the workbench otherwise, and nothing left behind when refused half way or abandoned."""

from __future__ import annotations

import asyncio
import io
import logging
import random
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from kiln.accounts import services as accounts
from kiln.app import create_app
from kiln.config import Settings
from kiln.media.models import MediaEntry
from kiln.runtime import Runtime
from kiln.web.deps import CSRF_COOKIE, SESSION_COOKIE
from kiln.web.uploads import ENVELOPE
from tests.conftest import BASE_URL, inline_runtime, make_settings

KIB, MIB = 1024, 1024**2
BOUNDARY = "kilnboundary7MA4YWxkTrZu0gW"


@pytest.fixture
def small_site(tmp_path: Path, db_url: str) -> Iterator[Runtime]:
    """A site whose upload limit is 100 KiB."""
    yield from inline_runtime(make_settings(tmp_path / "data", db_url, max_upload_bytes=100 * KIB))


def person(rt: Runtime, name: str, limit: int | None = None, **kind: bool) -> dict[str, str]:
    """A verified user (or as ``kind`` says); returns their write token, login cookie and CSRF token."""
    with rt.sessions() as session:
        user = accounts.create_user(session, name, f"{name}@example.com", "correct horse",
                                    verified=kind.get("verified", True))
        user.upload_limit_bytes = limit
        user.banned = kind.get("banned", False)
        session.flush()
        token = accounts.create_api_token(session, user, "test", "write")
        login = accounts.start_session(session, user)
        session.commit()
    return {"token": token, "login": login, "csrf": f"csrf-{name}-0123456789"}


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 × side² bytes."""
    rng = random.Random(side)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(3 * side * side))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def multipart(file_chunks: Iterable[bytes], filename: str = "big.bin", **fields: str) -> Iterator[bytes]:
    for name, value in fields.items():
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    yield from file_chunks
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def repeated(chunk: bytes, total: int) -> Iterator[bytes]:
    """``total`` bytes as the same chunk again and again: the test itself allocates nothing."""
    for _ in range(total // len(chunk)):
        yield chunk


@dataclass
class Exchange:
    status: int = 0
    body: bytearray = field(default_factory=bytearray)
    received: int = 0  # body bytes the app pulled
    receive_calls: int = 0

    def error(self) -> dict[str, str]:
        import json

        return json.loads(self.body)["error"]  # type: ignore[no-any-return]


def call(app: Any, path: str, headers: dict[str, str], chunks: Iterable[bytes] = (), *,
         hang_up: bool = False, method: str = "POST") -> Exchange:
    """One POST through the ASGI app, its body handed over chunk by chunk as the app asks for it.
    ``hang_up``: after the last chunk the client disconnects instead of ending the body."""
    out = Exchange()
    source = iter(chunks)
    finished = False

    async def receive() -> dict[str, Any]:
        nonlocal finished
        out.receive_calls += 1
        if finished:
            return {"type": "http.disconnect"}
        chunk = next(source, None)
        if chunk is None:
            finished = True
            return {"type": "http.disconnect"} if hang_up else {"type": "http.request", "body": b"",
                                                                 "more_body": False}
        out.received += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out.status = message["status"]
        elif message["type"] == "http.response.body":
            out.body += message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 40000), "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send))
    return out


def api_headers(who: dict[str, str], **extra: str) -> dict[str, str]:
    return {"host": "testserver", "authorization": f"Bearer {who['token']}",
            "content-type": f"multipart/form-data; boundary={BOUNDARY}", **extra}


def page_headers(who: dict[str, str] | None, csrf_header: bool = True, **extra: str) -> dict[str, str]:
    csrf = who["csrf"] if who else "csrf-anonymous-0123456789"
    cookie = f"{CSRF_COOKIE}={csrf}" + (f"; {SESSION_COOKIE}={who['login']}" if who else "")
    headers = {"host": "testserver", "cookie": cookie, "accept": "application/json",
               "content-type": f"multipart/form-data; boundary={BOUNDARY}", **extra}
    if csrf_header:
        headers["x-csrf-token"] = csrf
    return headers


def nothing_left(rt: Runtime) -> None:
    workbench = rt.settings.workbench_dir
    assert not workbench.exists() or not any(workbench.iterdir()), list(workbench.iterdir())
    assert not any(rt.stores.queue.iter_keys())
    with rt.sessions() as session:
        assert session.query(MediaEntry).count() == 0


# Refused before the body ------------------------------------------------------------------------

def test_content_length_past_the_limit_is_refused_without_reading_the_body(small_site):
    app = create_app(small_site.settings, small_site)
    alice = person(small_site, "alice")
    declared = str(10 * 1024**3)
    api = call(app, "/api/v1/media", api_headers(alice, **{"content-length": declared}),
               multipart(repeated(b"x" * MIB, 10 * 1024 * MIB)))
    assert api.status == 413 and api.receive_calls == 0
    assert api.error() == {"code": "too_large", "message": "The file is larger than your 100 KiB upload limit."}
    page = call(app, "/upload", page_headers(alice, **{"content-length": declared}), multipart([b"x"]))
    assert page.status == 413 and page.receive_calls == 0
    assert "larger than your 100 KiB upload limit" in page.error()["message"]
    nothing_left(small_site)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_real_server_answers_413_to_the_headers_alone(small_site):
    """Over a socket to uvicorn: only the headers are sent, declaring 5 GiB; the answer comes anyway."""
    alice = person(small_site, "alice", limit=3 * MIB)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(small_site.settings, small_site), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall((f"POST /api/v1/media HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                          f"Authorization: Bearer {alice['token']}\r\n"
                          f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                          f"Content-Length: {5 * 1024**3}\r\n\r\n").encode())
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"The file is larger than your 3 MiB upload limit." in answer
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    nothing_left(small_site)


@pytest.mark.parametrize("route", ["/api/v1/media", "/upload"])
def test_anonymous_banned_and_unverified_uploads_are_refused_before_the_body(small_site, route):
    app = create_app(small_site.settings, small_site)
    banned, unverified = person(small_site, "bert", banned=True), person(small_site, "uma", verified=False)
    body = list(multipart([b"x" * KIB], csrf_token="csrf-anonymous-0123456789"))
    if route == "/upload":
        anonymous = page_headers(None)
        refused = [(banned, page_headers(banned)), (unverified, page_headers(unverified))]
    else:
        anonymous = {"host": "testserver", "content-type": f"multipart/form-data; boundary={BOUNDARY}"}
        refused = [(banned, api_headers(banned)), (unverified, api_headers(unverified))]
    anon = call(app, route, anonymous, body)
    assert anon.status == 401 and anon.receive_calls == 0
    # A ban ends a page login (401); a banned person's API token is told why (403, code "banned").
    statuses = (401, 403) if route == "/upload" else (403, 403)
    for (who, headers), status in zip(refused, statuses, strict=True):
        result = call(app, route, headers, body)
        assert result.status == status and result.receive_calls == 0, (who, bytes(result.body))
        if who is banned and route != "/upload":
            assert b'"banned"' in bytes(result.body)
    nothing_left(small_site)


def test_page_upload_without_a_csrf_token_is_refused_before_its_file(small_site):
    app = create_app(small_site.settings, small_site)
    alice = person(small_site, "alice", limit=500 * MIB)
    # The token as a form field after the file, or a wrong one: refused when the file part starts.
    late = call(app, "/upload", page_headers(alice, csrf_header=False),
                multipart(repeated(b"x" * (64 * KIB), 64 * MIB)))
    assert late.status == 403 and late.received < MIB
    wrong = call(app, "/upload", page_headers(alice, csrf_header=False),
                 multipart(repeated(b"x" * (64 * KIB), 64 * MIB), csrf_token="not-the-cookie"))
    assert wrong.status == 403 and wrong.received < MIB
    no_cookie = call(app, "/upload", {**page_headers(alice), "cookie": f"{SESSION_COOKIE}={alice['login']}"},
                     multipart([b"x"]))
    assert no_cookie.status == 403 and no_cookie.receive_calls == 0
    nothing_left(small_site)


# Refused part way ---------------------------------------------------------------------------------

@pytest.mark.parametrize("route", ["/api/v1/media", "/upload"])
def test_a_chunked_upload_stops_being_read_once_past_the_limit(small_site, route):
    """No Content-Length: the body is read until the files pass the limit, then no further."""
    app = create_app(small_site.settings, small_site)
    alice = person(small_site, "alice", limit=2 * MIB)
    headers = api_headers(alice) if route.startswith("/api") else page_headers(alice)
    result = call(app, route, headers, multipart(repeated(b"y" * (64 * KIB), 1024 * MIB), title="Huge"))
    assert result.status == 413
    assert result.error() == {"code": "too_large", "message": "The file is larger than your 2 MiB upload limit."}
    assert 2 * MIB < result.received <= 2 * MIB + ENVELOPE + 64 * KIB
    nothing_left(small_site)


def test_per_user_limits_lower_and_higher_than_the_sites(small_site):
    """The site takes 100 KiB. Carol's own limit is 10 KiB, Bob's 1 MiB; Alice has the site's."""
    small, big = noise_png(60), noise_png(250)  # about 11 KiB and 190 KiB
    assert 10 * KIB < len(small) < 100 * KIB < len(big) < MIB
    alice, bob, carol = (person(small_site, "alice"), person(small_site, "bob", limit=MIB),
                         person(small_site, "carol", limit=10 * KIB))
    with TestClient(create_app(small_site.settings, small_site), base_url=BASE_URL) as client:
        def send(who: dict[str, str], data: bytes) -> Any:
            return client.post("/api/v1/media", headers={"Authorization": f"Bearer {who['token']}"},
                               files={"file": ("noise.png", data, "image/png")}, data={"title": "Noise"})

        assert send(alice, small).status_code == 202
        refused = send(alice, big)
        assert refused.status_code == 413
        assert refused.json()["error"]["message"] == "The file is larger than your 100 KiB upload limit."
        taken = send(bob, big)
        assert taken.status_code == 202, taken.text
        assert taken.json()["title"] == "Noise"
        lower = send(carol, small)
        assert lower.status_code == 413
        assert lower.json()["error"]["message"] == "The file is larger than your 10 KiB upload limit."
    with small_site.sessions() as session:
        stored = session.query(MediaEntry).order_by(MediaEntry.id).all()
        assert [(m.owner.username, m.size_bytes, m.state) for m in stored] == [
            ("alice", len(small), "processed"), ("bob", len(big), "processed")]
        import hashlib

        assert stored[1].sha256 == hashlib.sha256(big).hexdigest()
    # What processed them left nothing either: this thread's work folder is kept, empty, for its next item.
    left = list(small_site.settings.workbench_dir.iterdir())
    assert all(p.name.startswith("work-") and p.is_dir() and not any(p.iterdir()) for p in left), left


def test_page_form_streams_several_files_with_its_fields(small_site):
    small = noise_png(40)
    alice = person(small_site, "alice")
    app = create_app(small_site.settings, small_site)

    def two_files() -> Iterator[bytes]:
        yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
               f"{alice['csrf']}\r\n").encode()
        for name in ("a.png", "b.png"):
            yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                   f"Content-Type: image/png\r\n\r\n").encode()
            yield from (small[i:i + 1000] for i in range(0, len(small), 1000))
            yield b"\r\n"
        for name, value in (("title", "Sea"), ("tags", "blue, waves"), ("visibility", "unlisted")):
            yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        yield f"--{BOUNDARY}--\r\n".encode()

    result = call(app, "/upload", page_headers(alice, csrf_header=False), two_files())
    assert result.status == 202, bytes(result.body)
    with small_site.sessions() as session:
        stored = session.query(MediaEntry).order_by(MediaEntry.id).all()
        assert [(m.title, m.visibility, m.original_name, m.size_bytes) for m in stored] == [
            ("Sea (1)", "unlisted", "a.png", len(small)), ("Sea (2)", "unlisted", "b.png", len(small))]
        assert sorted(t.slug for t in stored[0].tags) == ["blue", "waves"]


def test_over_long_and_too_many_fields_are_refused_politely(small_site):
    app = create_app(small_site.settings, small_site)
    alice = person(small_site, "alice")
    long_field = call(app, "/api/v1/media", api_headers(alice), multipart([b"x"], description="d" * 70_000))
    assert long_field.status == 422 and "too long" in long_field.error()["message"]
    many = call(app, "/api/v1/media", api_headers(alice),
                multipart([b"x"], **{f"f{n}": "v" for n in range(120)}))
    assert many.status == 422 and "more than 100 parts" in many.error()["message"]
    title = call(app, "/api/v1/media", api_headers(alice), multipart([b"x"], title="t" * 201))
    assert title.status == 422 and title.error()["message"] == "The title is longer than 200 characters."
    garbage = call(app, "/api/v1/media", api_headers(alice), [b"this is not multipart at all"])
    assert garbage.status == 422
    file_part = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
                 "x\r\n").encode()
    two = call(app, "/api/v1/media", api_headers(alice), [file_part, file_part, f"--{BOUNDARY}--\r\n".encode()])
    assert two.status == 422 and two.error()["message"] == "Send one file per request."
    nothing_left(small_site)


# Abandoned ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("route", ["/api/v1/media", "/upload"])
def test_an_abandoned_upload_leaves_nothing_behind(small_site, route, caplog):
    app = create_app(small_site.settings, small_site)
    alice = person(small_site, "alice", limit=100 * MIB)
    headers = api_headers(alice) if route.startswith("/api") else page_headers(alice)
    body = list(multipart(repeated(b"z" * (64 * KIB), 5 * MIB)))[:-1]  # never reaches its end
    with caplog.at_level(logging.WARNING):
        result = call(app, route, headers, body, hang_up=True)
    assert result.received > 4 * MIB
    assert result.status < 500
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    nothing_left(small_site)


# Memory -------------------------------------------------------------------------------------------

def test_a_300_mib_upload_streams_in_bounded_memory(tmp_path: Path, db_url: str):
    settings: Settings = make_settings(tmp_path / "data", db_url, max_upload_bytes=1024 * MIB)
    for rt in inline_runtime(settings):
        app = create_app(settings, rt)
        alice = person(rt, "alice")
        chunk = random.Random(3).randbytes(64 * KIB)
        tracemalloc.start()
        try:
            start, _ = tracemalloc.get_traced_memory()
            result = call(app, "/api/v1/media", api_headers(alice), multipart(repeated(chunk, 300 * MIB)))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.received >= 300 * MIB
        assert result.status == 415  # random bytes: read whole, then refused as no known kind
        assert peak - start < 16 * MIB, f"peak Python allocations grew by {(peak - start) / MIB:.1f} MiB"
        nothing_left(rt)


# The admin's command ------------------------------------------------------------------------------

@pytest.mark.db
def test_admins_set_and_clear_a_persons_upload_limit(kiln, tmp_path):
    import json

    kiln("dbupdate")
    kiln("adduser", "dora", "--email", "dora@example.com", "--password", "correct horse")
    shown = json.loads(kiln("users", "show", "dora", "--json").output)
    assert shown["upload_limit_bytes"] == 2 * 1024**3 and shown["upload_limit_is_own"] is False
    assert "dora may now upload up to 100 MiB" in kiln("users", "set-upload-limit", "dora", "100MiB").output
    shown = json.loads(kiln("users", "show", "dora", "--json").output)
    assert shown["upload_limit_bytes"] == 100 * MIB and shown["upload_limit_is_own"] is True
    for size, expected in (("2GiB", 2 * 1024**3), ("1048576", MIB), ("1.5 MiB", 3 * MIB // 2), ("20KiB", 20 * KIB)):
        kiln("users", "set-upload-limit", "dora", size)
        assert json.loads(kiln("users", "show", "dora", "--json").output)["upload_limit_bytes"] == expected
    assert "upload limit: 20 KiB (own limit)" in kiln("users", "show", "dora").output
    # The limit holds for `kiln addmedia` too.
    picture = tmp_path / "noise.png"
    picture.write_bytes(noise_png(120))
    refused = kiln("addmedia", "dora", str(picture), ok=False)
    assert refused.exit_code == 1 and "larger than your 20 KiB upload limit" in refused.output
    bad = kiln("users", "set-upload-limit", "dora", "12 parsecs", ok=False)
    assert bad.exit_code == 2 and "is not a size" in bad.output
    assert kiln("users", "set-upload-limit", "nobody", "1MiB", ok=False).exit_code == 1
    assert "the site's upload limit (2 GiB)" in kiln("users", "set-upload-limit", "dora", "none").output
    assert "2 GiB (the site's max_upload_bytes)" in kiln("users", "show", "dora").output
    assert kiln("addmedia", "dora", str(picture)).exit_code == 0


def test_the_sweeper_removes_uploads_whose_process_died(rt):
    """A web process killed mid-upload cannot run its cleanup; the sweeper's workbench pass removes
    the half-received file by the process named in it, and leaves live processes' files alone."""
    import os

    from kiln.media.services import workbench_file
    from kiln.processing.limits import HOST
    from kiln.processing.service import clean_workbench

    fd, live = workbench_file(rt.settings)
    os.close(fd)
    dead = rt.settings.workbench_dir / f"upload-{HOST}-{2**22 + 12345}-abc123"
    dead.write_bytes(b"half an upload")
    elsewhere = rt.settings.workbench_dir / "upload-otherhost-1-abc123"  # another machine's: not ours to judge
    elsewhere.write_bytes(b"x")
    dead_worker = rt.settings.workbench_dir / f"work-{HOST}-{2**22 + 12346}-abc123"  # a worker killed mid-step
    dead_worker.mkdir()
    (dead_worker / "original.jpg").write_bytes(b"x")
    live_worker = rt.settings.workbench_dir / f"work-{HOST}-{os.getpid()}-abc123"
    live_worker.mkdir()
    assert live.name.startswith(f"upload-{HOST}-{os.getpid()}-")
    assert clean_workbench(rt) == 2
    assert live.exists() and elsewhere.exists() and live_worker.exists()
    assert not dead.exists() and not dead_worker.exists()


def test_forms_and_json_bodies_are_cut_at_a_mebibyte_before_any_route_reads_them(small_site):
    """An anonymous 60 MiB JSON PATCH or a 180 MiB login form is refused with 413 after at most 1 MiB,
    not read and parsed whole (a web process once grew by 350 MB)."""
    app = create_app(small_site.settings, small_site)
    piece = b"x" * 65536
    patch = call(app, "/api/v1/media/1", {"host": "testserver", "content-type": "application/json"},
                 (piece for _ in range(960)), method="PATCH")
    assert patch.status == 413 and "too large" in patch.error()["message"]
    assert patch.received <= 2 * MIB, patch.received
    login = call(app, "/auth/login", {"host": "testserver", "content-type": "application/x-www-form-urlencoded",
                                      "accept": "application/json"}, (piece for _ in range(2880)))
    assert login.status in (403, 413) and login.received <= 2 * MIB, (login.status, login.received)
    declared = call(app, "/api/v1/tokens", {"host": "testserver", "content-type": "application/json",
                                            "content-length": str(50 * MIB)}, (piece for _ in range(800)))
    assert declared.status == 413 and declared.received <= 2 * MIB, (declared.status, declared.received)
