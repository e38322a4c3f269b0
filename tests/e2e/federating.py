"""A real `kiln serve` that federates on loopback (private addresses allowed, plain http), for tests
against ActivityPub software nobody here wrote (fediverse-pasture, bovine-herd): an account made with
the CLI, an API client with its token, and a published photo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import LiveServer, serve
from tests.e2e.people import photo, upload, wait_processed

FEDERATING = "[federation]\nallow_private_addresses = true\n"
PASSWORD = "correct horse battery"


@contextmanager
def federating_kiln(folder: Path) -> Iterator[LiveServer]:
    with serve(folder, FEDERATING, processes=1) as server:
        yield server


def kiln(server: LiveServer, *args: str) -> str:
    env = {**os.environ, "KILN_DATABASE_URL": server.db_url, "KILN_BASE_URL": server.url}
    done = subprocess.run([sys.executable, "-m", "kiln", "--data", str(server.data), *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def account(server: LiveServer, username: str) -> httpx.Client:
    """An account made with `kiln adduser`, and an API client with a write token of its own."""
    kiln(server, "adduser", username, "--email", f"{username}@example.com", "--password", PASSWORD)
    token = json.loads(kiln(server, "token", "create", username, "--json"))["token"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def published_photo(api: httpx.Client, folder: Path, title: str) -> dict[str, Any]:
    item = upload(api, photo(folder, f"{title.lower().replace(' ', '-')}.jpg", (40, 90, 140), size=(640, 400)),
                  title=title, description="Seen from the pier.", tags="harbour")
    return wait_processed(api, [item["id"]])[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], what: str, limit: float = 30.0, log: Path | None = None) -> Any:
    """``check()``'s first true answer, asked every 0.2 s for ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {limit:.0f} s" + (f"\n{log.read_text()[-4000:]}" if log else ""))
        time.sleep(0.2)


@contextmanager
def asgi_on_loopback(app: Any, port: int) -> Iterator[str]:
    """Serve an ASGI app (a Quart app of pasture or bovine) with Hypercorn on 127.0.0.1:``port`` in a
    thread of its own, until the block ends."""
    import asyncio

    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def run() -> None:
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(url), f"{url} answering")
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def _answers(url: str) -> bool:
    try:
        httpx.get(url + "/", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def run_async(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    import asyncio

    return asyncio.run(make())


# The terms of the security vocabulary an actor's key is read with. bovine fetches the whole context
# (https://w3id.org/security/v1) over the network at run time, and reads "publicKey" as an unknown term
# when it cannot: offline, its cache is given these, which the vocabulary defines.
SECURITY_TERMS = {"id": "@id", "type": "@type", "sec": "https://w3id.org/security#",
                  "publicKey": {"@id": "sec:publicKey", "@type": "@id"}, "publicKeyPem": "sec:publicKeyPem",
                  "owner": {"@id": "sec:owner", "@type": "@id"}}


class ContextCache(dict[str, Any]):
    """bovine's cache of JSON-LD contexts, in memory: its own keeps them in SQLite through a connection
    that only the thread which opened it may use, and bovine-herd's server runs in another thread here."""

    @property
    def cache(self) -> dict[str, Any]:
        return self

    def retrieve(self, url: str) -> Any:
        return self.get(url)

    def add(self, url: str, context: Any) -> None:
        self[url] = context


def offline_bovine(folder: Path) -> None:
    """bovine, imported in ``folder`` (it opens a context cache file in the working directory when
    imported), with a cache in memory that knows the security terms; other contexts it cannot fetch
    it reads as empty, as bovine does."""
    previous = Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    try:
        import bovine.jsonld
    finally:
        os.chdir(previous)
    cache = ContextCache({"https://w3id.org/security/v1": SECURITY_TERMS})
    bovine.jsonld.jsonld_cache = cache  # type: ignore[assignment]
