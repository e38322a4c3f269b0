"""A real `kiln serve` (web app + embedded worker + sweeper) in a subprocess, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]  # software WebGL for 3D viewers
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
NO_CHROMIUM = f"browser tests skipped: no Chromium at {CHROMIUM} (apt-get install chromium)"
# For locator.evaluate: true once the image has loaded and decoded, false if it fails to; waits for
# it (up to 15 s) instead of asking once, since a browser on a busy machine may not have it yet.
IMAGE_LOADED = ("img => Promise.race([img.decode().then(() => img.naturalWidth > 0, () => false), "
                "new Promise(r => setTimeout(() => r(img.complete && img.naturalWidth > 0), 15000))])")
# An init script that records CSP violations from the first script on, before any page script runs:
# read them with page.evaluate("window.__csp").
CSP_LISTENER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
    e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber));
"""


def _goto_again_when_the_network_changed() -> None:
    """Chromium ends a navigation with ERR_NETWORK_CHANGED when this machine's interfaces change, which
    the tests that build network namespaces do (a veth's peer goes down when a host is cut off, a
    bridge comes and goes) while browser tests run beside them: such a navigation is tried again."""
    from playwright.sync_api import Error, Page

    if getattr(Page.goto, "kiln_again", False):
        return
    goto = Page.goto

    def again(self, url, **kwargs):  # type: ignore[no-untyped-def]
        for attempt in range(4):
            try:
                return goto(self, url, **kwargs)
            except Error as exc:
                if "ERR_NETWORK_CHANGED" not in str(exc) or attempt == 3:
                    raise
                time.sleep(0.5)
        return None

    again.kiln_again = True  # type: ignore[attr-defined]
    Page.goto = again  # type: ignore[method-assign]


_goto_again_when_the_network_changed()


@contextmanager
def own_tab(context, init_script: str | None = None, **options):  # type: ignore[no-untyped-def]
    """A page in a browser of its own for a 3D model's page (logged in as ``context`` is, with
    ``options`` for its context), the browser closed afterwards. A WebGL scene drawn in software
    (SwiftShader: no GPU here) keeps the browser's one GPU process busy: leaving it by navigating the
    same tab took 7-8 s on a loaded two-core machine, and even after its tab was closed, the next page
    in another tab of that browser timed out at 30 s under CI's load. A browser of its own takes that
    GPU process away with it when closed."""
    browser = context.browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        own = browser.new_context(storage_state=context.storage_state(), **options)
        if init_script:
            own.add_init_script(init_script)
        yield own.new_page()
    finally:
        browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    data: Path
    process: subprocess.Popen[bytes]
    log: Path
    db_url: str

    def mail_link(self, path: str, to: str, timeout: float = 30.0) -> str:
        """The link to ``path`` (e.g. /auth/verify) in the newest mail to ``to``, waiting for the mail:
        it is sent after the request's commit, by the worker, not by the request."""
        import re
        from email import message_from_bytes

        deadline = time.monotonic() + timeout
        while True:
            for eml in sorted((self.data / "mail").glob("*.eml"), reverse=True):
                message = message_from_bytes(eml.read_bytes())
                if message["To"] != to:
                    continue
                found = re.findall(re.escape(self.url + path) + r"\?token=[\w-]+",
                                   message.get_payload(decode=True).decode())
                if found:
                    return found[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {to} with a {path} link within {timeout:.0f} s")
            time.sleep(0.1)


@contextmanager
def serve(folder: Path, config_toml: str = "", processes: int = 2) -> Iterator[LiveServer]:
    """Run `kiln serve` on a free port with its own database and data directory (and an optional
    kiln.toml), until the block ends; then SIGTERM it and check it stopped."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    if config_toml:
        (data / "kiln.toml").write_text(config_toml)
    with fresh_database(folder) as db_url:
        log = folder / "serve.log"
        for attempt in range(4):
            # A free port may be taken by another test process before kiln serve binds it: then
            # serve stops with "Address already in use", and the next attempt takes another port.
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {**os.environ, "KILN_DATABASE_URL": db_url, "KILN_BASE_URL": url,
                   "KILN_PROCESSING__SWEEP_INTERVAL": "2"}
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "kiln", "--data", str(data), "serve", "--port", str(port),
                     "--processes", str(processes), "--verbose"], env=env, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 180  # four of these start at once under CI's load
            started = False
            while not started and proc.poll() is None and time.monotonic() < deadline:
                with suppress(httpx.HTTPError):
                    started = httpx.get(url + "/", timeout=2).status_code == 200
                if not started:
                    time.sleep(0.2)
            if started:
                break
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            output = log.read_text(errors="replace")
            if "address already in use" not in output.lower() or attempt == 3:
                raise RuntimeError("kiln serve did not start:\n" + output[-4000:])
        try:
            yield LiveServer(url, data, proc, log, db_url)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError("kiln serve did not stop within 30 s of SIGTERM") from None


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("live")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    """Debian's Chromium, headless, driven by Playwright (skipped, saying why, when not installed)."""
    if not HAVE_CHROMIUM:
        pytest.skip(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
