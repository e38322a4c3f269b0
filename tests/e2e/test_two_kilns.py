"""Issue #20's acceptance test: two Kiln sites on two host names follow each other, and a photo, a
video and a sound posted on one appear, playable, on the other, with a comment flowing back.

Each site is a host of the namespace rig (tests/rig/network.py): its own network namespace on a private
bridge, its own host name, and an /etc/hosts of its own naming both (``kilna.test``, ``kilnb.test``),
so the sites reach each other by name as servers on the Internet do, over plain http on private
addresses (``allow_private_addresses``, as tests/federation's peer needs too). Each runs a real
`kiln serve` (web and embedded worker) on its own SQLite database and data directory.

Alice on A and Bob on B follow each other (WebFinger by ``@name@host:port``, signed Follow, Accept);
Alice posts a photo, a video and a sound; each appears in Bob's timeline on B with B's own copy of its
file (fetched from B: its type and its bytes, the same as A's rendition); Bob comments on each; the
comments arrive on Alice's items on A, and his favourite of one counts there. Bob's Following page shows the three
as <img>, <video controls> and <audio controls> from B's copies.

Needs root and `ip netns` (it fails, saying why, without them).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiln.db.migrate import upgrade
from tests.e2e.test_brokers import small_jpeg
from tests.fixtures_video import FFMPEG, H264, lavfi
from tests.rig.network import Host, network

pytestmark = pytest.mark.slow

PORT = 8000
PASSWORD = "correct horse battery"
TIMEOUT = 45.0  # seconds for the whole chain of one step on a loaded two-core machine


@dataclass
class Site:
    host: Host
    name: str  # kilna.test
    data: Path
    token: dict[str, str]

    @property
    def url(self) -> str:  # from the test, in the root namespace: by address
        return f"http://{self.host.address}:{PORT}"

    @property
    def handle_host(self) -> str:
        return f"{self.name}:{PORT}"

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, headers=self.token, timeout=30, **kw)


def _kiln_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}


def _start(host: Host, name: str) -> Path:
    data = host.folder / "data"
    data.mkdir(parents=True)
    db = f"sqlite:///{host.folder / 'kiln.db'}"
    upgrade(db)
    (data / "kiln.toml").write_text(f"""\
base_url = "http://{name}:{PORT}"
database_url = "{db}"

[processing]
sweep_interval = 1.0

[federation]
allow_private_addresses = true
""")
    host.run([sys.executable, "-m", "kiln", "--data", str(data), "serve", "--host", host.address, "--port", str(PORT),
              "--processes", "1", "--verbose"], log=host.folder / "serve.log", env=_kiln_env())
    return data


def _wait(what: str, ready: Callable[[], Any], timeout: float = TIMEOUT, logs: tuple[Path, ...] = ()) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = ready()
            if found:
                return found
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {log} ---\n{log.read_text(errors='replace')[-3000:]}"
                              for log in logs if log.exists())
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n{tails}")
        time.sleep(0.3)


def _add_user(data: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kiln", "--data", str(data), "adduser", name, "--email",
                             f"{name}@example.org", "--password", PASSWORD], env=_kiln_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _token(url: str, name: str) -> dict[str, str]:
    resp = httpx.post(url + "/api/v1/tokens", json={"username": name, "password": PASSWORD}, timeout=30)
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[Site, Site]]:
    started = time.monotonic()
    with network() as net:
        hosts = f"127.0.0.1 localhost\n{net.subnet}.2 kilna.test\n{net.subnet}.3 kilnb.test\n"
        a, b = net.add("kilna", 2, etc_hosts=hosts), net.add("kilnb", 3, etc_hosts=hosts)
        data_a, data_b = _start(a, "kilna.test"), _start(b, "kilnb.test")
        # The accounts are made while the servers start (both write to their own SQLite file).
        adding = [_add_user(data_a, "alice"), _add_user(data_b, "bob")]
        for made in adding:
            output, _ = made.communicate(timeout=120)
            assert made.returncode == 0, output
        for host in (a, b):
            _wait(f"kiln serve on {host.name}", lambda h=host: httpx.get(f"http://{h.address}:{PORT}/",
                                                                        timeout=2).status_code == 200,
                  120, (host.folder / "serve.log",))
        alice = Site(a, "kilna.test", data_a, _token(f"http://{a.address}:{PORT}", "alice"))
        bob = Site(b, "kilnb.test", data_b, _token(f"http://{b.address}:{PORT}", "bob"))
        print(f"\ntwo Kilns up in {time.monotonic() - started:.1f} s")
        yield alice, bob


def _files(folder: Path) -> list[Path]:
    photo = small_jpeg(folder, "photo.jpg", seed=7)
    video, sound = folder / "clip.mp4", folder / "tone.mp3"
    subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-y", *lavfi(160, 120, 10, 1.0), *H264, "-c:a", "aac",
                    str(video)], check=True, timeout=120)
    subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=44100:duration=1", str(sound)], check=True, timeout=120)
    return [photo, video, sound]


def _follow(site: Site, me: str, other: Site, name: str) -> None:
    """``me`` on ``site`` follows ``@name@other`` and waits for its Accept."""
    resp = site.api("PUT", "/api/v1/following/remote", json={"account": f"@{name}@{other.handle_host}"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["pending"] is True
    actor = f"http://{other.handle_host}/u/{name}"
    _wait(f"{name}@{other.name} accepts", lambda: any(
        p["url"] == actor for p in site.api("GET", f"/api/v1/users/{me}/following").json()["items"]),
          logs=(site.host.folder / "serve.log", other.host.folder / "serve.log"))


def test_two_kilns_follow_each_other_and_media_and_comments_flow(sites, tmp_path):
    alice, bob = sites
    started = time.monotonic()
    logs = (alice.host.folder / "serve.log", bob.host.folder / "serve.log")
    _follow(bob, "bob", alice, "alice")
    _follow(alice, "alice", bob, "bob")

    ids = []
    for path in _files(tmp_path):
        with path.open("rb") as fh:
            resp = alice.api("POST", "/api/v1/media", files={"file": (path.name, fh)}, data={"title": path.stem})
        assert resp.status_code == 202, resp.text
        ids.append(int(resp.json()["id"]))

    def arrived() -> list[dict[str, Any]] | None:
        posts = bob.api("GET", "/api/v1/timeline").json()["remote_posts"]
        ready = [p for p in posts if p["attachments"] and p["attachments"][0]["url"]]
        return ready if len(ready) == 3 else None

    posts = _wait("three posts, their files copied, on B", arrived, 90, logs)
    kinds = {}
    for post in posts:
        (attachment,) = post["attachments"]
        assert post["author"] == f"@alice@{alice.name}"  # as people write it (the port left out)
        copy = httpx.get(attachment["url"].replace(f"http://{bob.handle_host}", bob.url), headers=bob.token, timeout=30)
        original = httpx.get(attachment["remote_url"].replace(f"http://{alice.handle_host}", alice.url), timeout=30)
        assert copy.status_code == 200 and original.status_code == 200
        assert copy.content == original.content  # B's own copy, byte for byte
        assert copy.headers["content-type"] == attachment["media_type"]
        assert copy.headers["x-content-type-options"] == "nosniff"
        kinds[attachment["kind"]] = copy.headers["content-type"]
        assert httpx.get(attachment["url"].replace(f"http://{bob.handle_host}", bob.url), timeout=30).status_code == 404
    assert set(kinds) == {"image", "video", "audio"}, kinds
    assert kinds["image"].startswith("image/") and kinds["video"].startswith("video/")
    assert kinds["audio"].startswith("audio/")

    # Bob's Following page on B shows them playable, from B's copies (a browser session: cookie login).
    with httpx.Client(base_url=bob.url, timeout=30, follow_redirects=True) as browser:
        form = browser.get("/auth/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        assert browser.post("/auth/login", data={"username": "bob", "password": PASSWORD,
                                                 "csrf_token": token.group(1)}).status_code == 200
        page = browser.get("/timeline").text
    for post in posts:
        attachment = post["attachments"][0]
        copy = f'src="/remote/files/{attachment["url"].rsplit("/", 1)[-1]}"'
        tag = {"image": "<img ", "video": '<video controls preload="metadata" ',
               "audio": '<audio controls preload="metadata" '}[attachment["kind"]]
        assert tag + copy in page, (tag + copy, page[page.find("remote-post"):][:2000])
    assert f'src="http://{alice.handle_host}' not in page  # the reader's browser is never sent to A

    # Bob comments on each; the comments arrive on Alice's items on A.
    for post in posts:
        resp = bob.api("POST", f"/api/v1/remote/posts/{post['id']}/comments", json={"body": f"Lovely {post['id']}"})
        assert resp.status_code == 201, resp.text

    def commented() -> bool:
        found = [c for media_id in ids for c in alice.api("GET", f"/api/v1/media/{media_id}/comments").json()["items"]]
        return len([c for c in found if c.get("remote") and c["author"] == f"@bob@{bob.name}"]) == 3

    _wait("Bob's comments on Alice's items on A", commented, logs=logs)

    # Bob favourites one of them: a Like, counted among the item's favourites on A.
    photo = next(p for p in posts if p["attachments"][0]["kind"] == "image")
    assert bob.api("PUT", f"/api/v1/remote/posts/{photo['id']}/favourite").json() == {"favourited": True}
    _wait("Bob's favourite on A", lambda: any(
        alice.api("GET", f"/api/v1/media/{media_id}").json()["favourites"] == 1 for media_id in ids), logs=logs)
    print(f"\ntwo Kilns: follows, 3 items, copies, comments and a favourite in {time.monotonic() - started:.1f} s")
