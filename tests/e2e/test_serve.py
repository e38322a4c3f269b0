"""`kiln serve` as a person runs it: the web app with its embedded worker, over real HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from email import message_from_bytes
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port


def _csrf(client: httpx.Client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def test_register_verify_upload_and_publish_through_the_embedded_worker(live_server, images):
    with httpx.Client(base_url=live_server.url, follow_redirects=True, timeout=30) as client:
        client.post("/auth/register", data={"username": "erin", "email": "erin@example.com",
                                            "password": "correct horse", "csrf_token": _csrf(client, "/auth/register")})
        link = live_server.mail_link("/auth/verify", "erin@example.com")
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


def _alive(pid: int) -> bool:
    """Running (a zombie that only waits to be reaped counts as stopped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> tuple[set[int], set[int]]:
    """The running web processes and processing workers (`kiln ... worker`) started by `kiln serve`."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    web, processing = set(), set()
    for child in map(int, found):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if _alive(child):
            (processing if b"worker" in argv else web).add(child)
    return web, processing


def _wait_for(condition, seconds: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"still not true after {seconds} s: {condition}")


@pytest.mark.slow
def test_sighup_replaces_every_process_while_the_port_keeps_answering(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kiln", "--data", str(tmp_path / "data"), "serve", "--port",
                                 str(port), "--workers", "2", "--processes", "1", "--verbose"],
                                stdout=out, stderr=subprocess.STDOUT)
    answers: list[object] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():  # a new connection each time, as new visitors come
            try:
                answers.append(httpx.get(url, timeout=20).status_code)
            except httpx.HTTPError as exc:
                answers.append(repr(exc))

    asker = threading.Thread(target=keep_asking)
    try:
        _wait_for(lambda: _up(url))

        def started():  # type: ignore[no-untyped-def]
            web, processing = _children(proc.pid)
            return (web, processing) if len(web) == 2 and processing else None

        old_web, old_processing = _wait_for(started)
        asker.start()
        _wait_for(lambda: len(answers) >= 5)
        proc.send_signal(signal.SIGHUP)

        def replaced():  # type: ignore[no-untyped-def]
            web, processing = _children(proc.pid)
            done = len(web) == 2 and not web & old_web and processing and not processing & old_processing
            return (web, processing) if done else None

        new_web, new_processing = _wait_for(replaced)
        seen = len(answers)
        _wait_for(lambda: len(answers) >= seen + 5)  # the new processes answer too
        stop.set()
        asker.join(30)
        assert answers and all(a == 200 for a in answers), [a for a in answers if a != 200]
        assert not any(_alive(pid) for pid in old_web | old_processing), "an old process is still running"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        _wait_for(lambda: not any(_alive(pid) for pid in new_web | new_processing), 10)
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)
        assert "Traceback" not in log.read_text(errors="replace"), log.read_text()[-4000:]
    finally:
        stop.set()
        if asker.is_alive():
            asker.join(30)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _mail_blocks_removed(output: str) -> list[str]:
    return [line for line in re.sub(r"\n--- mail to .*?--- end of mail ---\n", "\n", output, flags=re.S).splitlines()
            if line.strip()]


def test_a_first_run_on_another_port_links_there_says_little_and_stops_at_once(tmp_path, images):
    """As a new user: no base_url, `kiln serve --port N`. The mailed link, the API's URLs, the feed and
    the CLI's output all use port N; the terminal shows a few lines; Ctrl-C stops it in seconds."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("KILN_BASE_URL", "KILN_DATA", "KILN_DATABASE_URL")}
    proc = subprocess.Popen([sys.executable, "-m", "kiln", "--data", str(data), "serve", "--port", str(port),
                             "--workers", "1", "--processes", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)  # its own terminal group
    try:
        _wait_for(lambda: _up(base + "/"), 60)
        with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as client:
            client.post("/auth/register", data={"username": "nina", "email": "nina@example.com",
                                                "password": "correct horse",
                                                "csrf_token": _csrf(client, "/auth/register")})
            link = re.search(r"http://\S+/auth/verify\?token=[\w-]+", _wait_for(lambda: "".join(
                message_from_bytes(p.read_bytes()).get_payload(decode=True).decode()
                for p in (data / "mail").glob("*.eml")), 30)).group(0)
            assert link.startswith(base + "/auth/verify"), link
            assert "confirmed" in client.get(link).text
            with images["plain"].open("rb") as fh:
                resp = client.post("/upload", data={"csrf_token": _csrf(client, "/upload")},
                                   files={"file": ("p.jpg", fh, "image/jpeg")}, headers={"accept": "application/json"})
            item = resp.json()["media"][0]
            assert item["url"] == f"{base}/u/nina/m/{item['id']}"
            _wait_for(lambda: client.get("/api/v1/media", params={"user": "nina"}).json()["items"], 60)
            listed = client.get("/api/v1/media", params={"user": "nina"}).json()["items"][0]
            assert all(r["url"].startswith(base + "/") for r in listed["renditions"].values())
            feed = client.get("/feeds/atom").text
            assert f'href="{base}/u/nina/m/{item["id"]}"' in feed and ":6543" not in feed
        cli = subprocess.run([sys.executable, "-m", "kiln", "--data", str(data), "media", "show", str(item["id"]),
                              "--json"], env=env, capture_output=True, text=True, timeout=60)
        assert f'"url": "{base}/u/nina/m/{item["id"]}"' in cli.stdout, cli.stdout + cli.stderr
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        proc.wait(15)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = proc.stdout.read().decode()
    lines = _mail_blocks_removed(output)
    # At once, not after a graceful wait (30 s for web requests); it took 6.8 s once
    # under CI's load (four test processes on two cores), hence the bound.
    assert took < 12, f"Ctrl-C took {took:.1f} s"
    assert f"Kiln is running at {base}/" in lines[0]
    assert len(lines) <= 12, output
    for noise in ("SIGKILL", "out of memory", "SecurityWarning", "[queues]", "No hostname", "Booting worker"):
        assert noise not in output, noise
    assert (data / "kiln.log").read_text().count("kiln-") > 0  # the details went to the log


def test_a_port_in_use_is_said_plainly(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "kiln", "--data", str(tmp_path), "serve", "--port", str(port)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"Kiln cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
