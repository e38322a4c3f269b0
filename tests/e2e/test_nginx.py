"""The production setup for real: Debian's nginx loading contrib/nginx/kiln.conf in front of `kiln serve`.

nginx sends static files and the public store itself; Kiln serves the pages and private items' files.
Kiln runs with --access-log, so a path that never shows up in its log never reached it.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from kiln.web.templating import STATIC_DIR
from tests.conftest import fresh_database
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.slow

NGINX = "/usr/sbin/nginx"
WEB_USER = "www-data"  # Debian's nginx workers
SITE = Path(__file__).parents[2] / "contrib" / "nginx" / "kiln.conf"
# Headers Kiln adds to its pages but never to the files nginx sends itself.
KILN_ONLY = ("x-frame-options", "referrer-policy", "permissions-policy", "cross-origin-opener-policy")
# The headers a public file must carry whoever sends it.
FILE_HEADERS = ("content-type", "content-disposition", "content-security-policy", "x-content-type-options",
                "cache-control")


@dataclass
class Site:
    url: str  # through nginx
    kiln_url: str  # Kiln itself
    data: Path
    kiln_log: Path
    nginx_errors: Path
    env: dict[str, str]

    def kiln_saw(self, path: str) -> bool:
        """Whether Kiln's access log has this path, once every request made before is logged."""
        mark = f"/log-mark-{uuid.uuid4().hex}"
        httpx.get(self.kiln_url + mark)
        deadline = time.monotonic() + 30
        while mark not in (log := self.kiln_log.read_text(errors="replace")):
            assert time.monotonic() < deadline, "Kiln's access log stays empty"
            time.sleep(0.1)
        return path in log

    def raw_get(self, path: str) -> tuple[int, bytes]:
        """GET exactly this request target (httpx would resolve the dot segments itself)."""
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n" + log.read_text(errors="replace")[-4000:])
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes], sig: int, what: str) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{what} did not stop within 30 s") from None


def nginx_config(folder: Path, port: int, kiln_port: int, data: Path) -> Path:
    """A minimal main config around the contrib site, changed only in its paths and ports."""
    site = SITE.read_text()
    # A copy of the package's static files, as an install puts them: this checkout may sit in a folder
    # nginx's user cannot enter.
    static = shutil.copytree(STATIC_DIR, folder / "static")
    for placeholder, value in {
        "/srv/kiln/.venv/lib/python3.11/site-packages/kiln/web/static/": f"{static}/",
        "/srv/kiln/data": str(data),
        "127.0.0.1:6543": f"127.0.0.1:{kiln_port}",
        "listen 80;": f"listen 127.0.0.1:{port};",
        "listen [::]:80;": "",  # one loopback listener is enough here
    }.items():
        assert placeholder in site, f"contrib/nginx/kiln.conf lost its placeholder {placeholder}"
        site = site.replace(placeholder, value)
    (folder / "kiln-site.conf").write_text(site)
    temps = " ".join(f"{name}_temp_path {folder}/{name};" for name in ("client_body", "proxy", "fastcgi",
                                                                        "uwsgi", "scgi"))
    # As in production, nginx's workers are not Kiln's user: started as root, they run as www-data and
    # must be able to read the public store (and nothing else) the way Kiln leaves it.
    user = f"user {WEB_USER} {WEB_USER};" if os.geteuid() == 0 else ""
    main = f"""{user}
worker_processes 2;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;  # warn: nginx says when it spools a request body
events {{ worker_connections 128; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder}/access.log;
    {temps}
    include {folder}/kiln-site.conf;
}}
"""
    conf = folder / "nginx.conf"
    conf.write_text(main)
    return conf


@contextmanager
def production() -> Iterator[Site]:
    """`kiln serve --workers 2 --access-log` behind nginx (its own master process, in the foreground),
    in a folder of its own that other users may pass through (pytest's tmp folder is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="kiln-nginx-"))
    folder.chmod(0o711)
    try:
        with _production(folder) as site:
            yield site
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _production(folder: Path) -> Iterator[Site]:
    port, kiln_port = free_port(), free_port()
    url, kiln_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{kiln_port}"
    data = folder / "data"
    (data / "media" / "public").mkdir(parents=True)
    for passage in (data, data / "media"):  # as docs/deploy.md says: nginx may pass through, not list
        passage.chmod(0o711)
    conf = nginx_config(folder, port, kiln_port, data)
    with fresh_database(folder) as db_url:
        env = {**os.environ, "KILN_DATABASE_URL": db_url, "KILN_BASE_URL": url, "KILN_DATA": str(data),
               "KILN_PROCESSING__SWEEP_INTERVAL": "2", "KILN_SECURITY__TRUSTED_PROXIES": '["127.0.0.1"]'}
        kiln_log = folder / "serve.log"
        with kiln_log.open("wb") as out:
            kiln = subprocess.Popen([sys.executable, "-m", "kiln", "serve", "--port", str(kiln_port), "--workers",
                                     "2", "--processes", "1", "--access-log", "--verbose"],
                                    env=env, stdout=out, stderr=subprocess.STDOUT)
        nginx_log = folder / "nginx.out"
        try:
            _wait_until_up(kiln_url + "/", kiln, kiln_log, "kiln serve")
            check = subprocess.run([NGINX, "-t", "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")],
                                   capture_output=True, text=True)
            assert check.returncode == 0, check.stderr
            with nginx_log.open("wb") as out:
                nginx = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log"),
                                          "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT)
            try:
                _wait_until_up(url + "/", nginx, folder / "error.log", "nginx")
                yield Site(url, kiln_url, data, kiln_log, folder / "error.log", env)
            finally:
                _stop(nginx, signal.SIGQUIT, "nginx")  # graceful shutdown of the master and its workers
        finally:
            _stop(kiln, signal.SIGTERM, "kiln serve")


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    if not os.path.exists(NGINX):
        pytest.skip(f"nginx tests skipped: no nginx at {NGINX} (apt-get install nginx)")
    with production() as running:
        yield running


@pytest.fixture(scope="module")
def token(site: Site) -> str:
    subprocess.run([sys.executable, "-m", "kiln", "adduser", "nora", "--email", "nora@example.org",
                    "--password", "correct horse battery"], env=site.env, check=True, capture_output=True)
    resp = httpx.post(site.url + "/api/v1/tokens", json={"username": "nora", "password": "correct horse battery"})
    assert resp.status_code in (200, 201), resp.text
    return str(resp.json()["token"])


@pytest.fixture(scope="module")
def item(site: Site, token: str, images: dict[str, Path]) -> dict:
    """A real photo uploaded through nginx and processed by Kiln's worker."""
    auth = {"Authorization": f"Bearer {token}"}
    photo = images["camera"]
    resp = httpx.post(site.url + "/api/v1/media", headers=auth, timeout=60, data={"title": "Harbour"},
                      files={"file": (photo.name, photo.read_bytes(), "image/jpeg")})
    assert resp.status_code == 202, resp.text
    media_id = resp.json()["id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = httpx.get(f"{site.url}/api/v1/media/{media_id}", headers=auth).json()
        if found["state"] in ("processed", "failed"):
            break
        time.sleep(0.3)
    assert found["state"] == "processed", found
    return dict(found)


def test_kiln_serves_the_page_and_nginx_the_thumbnail(site: Site, item: dict) -> None:
    page = httpx.get(item["url"])
    assert item["url"].startswith(site.url) and page.status_code == 200
    assert "Harbour" in page.text
    assert page.headers["x-frame-options"] == "DENY"  # Kiln's page headers came through the proxy
    assert site.kiln_saw(urlsplit(item["url"]).path)

    thumb_url = item["renditions"]["thumbnail"]["url"]
    thumb_path = urlsplit(thumb_url).path
    assert thumb_url.startswith(site.url + "/media/")
    assert urlsplit(item["renditions"]["medium"]["url"]).path in page.text  # the page shows the medium size
    thumb = httpx.get(thumb_url)
    stored = site.data / "media" / "public" / Path(*thumb_path.removeprefix("/media/").split("/"))
    assert thumb.status_code == 200, (
        f"nginx answered {thumb.status_code} for a rendition stored with mode {stored.stat().st_mode & 0o777:o}: "
        f"its workers ({WEB_USER}) must be able to read the public store")
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:3] == b"\xff\xd8\xff"
    assert thumb.headers["server"] == "nginx"
    assert thumb.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert thumb.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert thumb.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in thumb.headers
    assert not any(name in thumb.headers for name in KILN_ONLY)
    assert thumb.content == stored.read_bytes()
    # The ETag nginx made lets a browser revalidate without the bytes.
    assert httpx.get(thumb_url, headers={"If-None-Match": thumb.headers["etag"]}).status_code == 304
    assert not site.kiln_saw(thumb_path), "the thumbnail request reached Kiln"


def test_nginx_sends_public_files_with_the_headers_kiln_sends(site: Site) -> None:
    folder = site.data / "media" / "public" / "entries" / "999" / "t0ken"
    folder.mkdir(parents=True)
    names = ["medium-1a2b3c4d5e.jpg", "original-public-0123456789.png", "text-1a2b3c4d5e.txt",
             "document-1a2b3c4d5e.pdf", "data-1a2b3c4d5e.json", "model-1a2b3c4d5e.glb", "sound-1a2b3c4d5e.opus",
             "page-1a2b3c4d5e.html", "script-1a2b3c4d5e.svg", "noextension"]
    for name in names:
        (folder / name).write_bytes(b"<html><script>alert(1)</script></html>")
    for name in names:
        path = f"/media/entries/999/t0ken/{name}"
        via_nginx, from_kiln = httpx.get(site.url + path), httpx.get(site.kiln_url + path)
        assert via_nginx.status_code == from_kiln.status_code == 200, name
        assert not any(h in via_nginx.headers for h in KILN_ONLY), f"{name} was not sent by nginx"
        for header in FILE_HEADERS:
            assert via_nginx.headers.get(header) == from_kiln.headers.get(header), (name, header)
    assert "attachment" in httpx.get(site.url + "/media/entries/999/t0ken/page-1a2b3c4d5e.html").headers[
        "content-disposition"]


def test_nginx_serves_nothing_outside_the_public_store(site: Site, item: dict) -> None:
    originals = site.data / "media" / "originals"
    secret = next(p for p in originals.rglob("*") if p.is_file())  # the uploaded photo's original
    key = secret.relative_to(originals).as_posix()
    body = secret.read_bytes()
    secret.chmod(0o644)  # so only nginx's rules, not the file's mode, can keep it in
    attempts = [f"/media/../originals/{key}", f"/media/%2e%2e/originals/{key}", f"/media/..%2foriginals/{key}",
                f"/media/entries/../../originals/{key}", f"/media/../../data/media/originals/{key}",
                f"/media..%2foriginals/{key}", f"/media/../queue/{key}", "/media/", "/media/entries/"]
    for target in attempts:
        status, answer = site.raw_get(target)
        assert status in (400, 403, 404), (target, status)
        assert body not in answer, target
    # A link planted in the public store does not lead out of it.
    (site.data / "media" / "public" / "escape.jpg").symlink_to(secret)
    status, answer = site.raw_get("/media/escape.jpg")
    assert status in (403, 404) and body not in answer


def test_static_files_come_from_nginx_with_a_year_of_cache(site: Site, item: dict) -> None:
    page = httpx.get(item["url"]).text
    link = next(part.split('"')[0] for part in page.split('href="')[1:] if part.startswith("/static/kiln.css?v="))
    resp = httpx.get(site.url + link, headers={"Accept-Encoding": "gzip"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/css")
    assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert resp.headers["content-encoding"] == "gzip"
    assert resp.content == (STATIC_DIR / "kiln.css").read_bytes()  # httpx decoded the gzip
    # Without the fingerprint the URL's bytes may change: browsers must check again.
    assert httpx.get(site.url + "/static/kiln.css").headers["cache-control"] == "no-cache"
    assert httpx.get(site.url + "/static/nothing-here.css").status_code == 404
    assert not site.kiln_saw("/static/kiln.css")


def test_uploads_stream_through_nginx_in_chunks(site: Site, token: str, images: dict[str, Path]) -> None:
    """A chunked request body (no Content-Length) passes the proxy as it arrives, never spooled to a
    file first (nginx logs a warning whenever it spools one)."""
    photo = images["plain"].read_bytes()
    boundary = "kilnboundary7"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"plain.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    parts = [head, photo[: len(photo) // 2], photo[len(photo) // 2:], f"\r\n--{boundary}--\r\n".encode()]
    resp = httpx.post(site.url + "/api/v1/media", content=iter(parts), timeout=60,
                      headers={"Authorization": f"Bearer {token}",
                               "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status_code == 202, resp.text
    assert len(photo) > 64 * 1024  # larger than nginx's in-memory body buffer
    assert "buffered to a temporary file" not in site.nginx_errors.read_text()


def test_nginx_overwrites_the_forwarded_headers_a_client_sends(site: Site) -> None:
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    # Kiln believes its trusted proxy: told https, it sends HSTS ...
    assert "strict-transport-security" in httpx.get(site.kiln_url + "/", headers=forged).headers
    # ... but through nginx the client's claim is replaced by the real scheme.
    assert "strict-transport-security" not in httpx.get(site.url + "/", headers=forged).headers


def test_a_private_items_files_leave_the_public_urls(site: Site, token: str, item: dict) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    old_thumb = item["renditions"]["thumbnail"]["url"]
    assert httpx.get(old_thumb).status_code == 200
    resp = httpx.patch(f"{site.url}/api/v1/media/{item['id']}", headers=auth, json={"visibility": "private"})
    assert resp.status_code == 200, resp.text
    assert httpx.get(old_thumb).status_code == 404
    new_thumb = resp.json()["renditions"]["thumbnail"]["url"]
    assert urlsplit(new_thumb).path == f"/m/{item['id']}/r/thumbnail"
    mine = httpx.get(new_thumb, headers=auth)
    assert mine.status_code == 200 and mine.content[:3] == b"\xff\xd8\xff"
    assert mine.headers["cache-control"] == "private, no-store"
    assert httpx.get(new_thumb).status_code == 404  # anonymous
    assert site.kiln_saw(urlsplit(new_thumb).path)  # checked by Kiln, not sent by nginx
    # The copy under the new token is in the public folder, yet no listing reveals its name.
    assert site.raw_get(f"/media/entries/{item['id']}/")[0] == 404


@pytest.mark.parametrize("unit", ["kiln-web.service", "kiln-worker@image.service"])
def test_systemd_units_verify(tmp_path: Path, unit: str) -> None:
    """systemd itself parses the contrib units (with this checkout's kiln in place of /srv/kiln's)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd unit check skipped: no systemd-analyze here")
    source = SITE.parents[1] / "systemd" / unit.replace("@image", "@")
    kiln = Path(sys.executable).parent / "kiln"
    text = source.read_text()
    assert "/srv/kiln/.venv/bin/kiln " in text
    (tmp_path / unit).write_text(text.replace("/srv/kiln/.venv/bin/kiln ", f"{kiln} "))
    result = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
