"""`kiln serve` as a person runs it: the web app with its embedded worker, over real HTTP."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import httpx

from tests.e2e.conftest import free_port


def _csrf(client: httpx.Client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def test_register_verify_upload_and_publish_through_the_embedded_worker(live_server, images):
    with httpx.Client(base_url=live_server.url, follow_redirects=True, timeout=30) as client:
        client.post("/auth/register", data={"username": "erin", "email": "erin@example.com",
                                            "password": "correct horse", "csrf_token": _csrf(client, "/auth/register")})
        link = live_server.mail_links("/auth/verify")[-1]
        assert "confirmed" in client.get(link).text
        files = [("file", (images[n].name, images[n].read_bytes(), "image/jpeg")) for n in ("camera", "plain", "webp")]
        started = time.monotonic()
        resp = client.post("/upload", data={"csrf_token": _csrf(client, "/upload")}, files=files)
        assert resp.status_code == 200 and "Uploaded 3 files" in resp.text
        while time.monotonic() - started < 60:
            items = client.get("/api/v1/media", params={"user": "erin"}).json()["items"]
            if len(items) == 3:
                break
            time.sleep(0.3)
        assert len(items) == 3, client.get("/panel").text
        took = time.monotonic() - started
        assert took < 60
        for item in items:
            for rendition in item["renditions"].values():
                assert client.get(rendition["url"]).status_code == 200


def test_sigterm_stops_serve_and_its_worker(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kiln", "--data", str(tmp_path), "serve", "--port", str(port),
                             "--processes", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert children, "serve started no worker process"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    output = proc.stdout.read().decode()
    assert f"Kiln is running at http://127.0.0.1:{port}/" in output
    time.sleep(0.5)
    for pid in children:
        assert subprocess.run(["kill", "-0", pid], capture_output=True).returncode != 0, "worker left running"
