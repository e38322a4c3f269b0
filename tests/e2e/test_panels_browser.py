"""The processing panels in a real browser against `kiln serve`: live updates, retry, admin counts.

The worker processes are paused (SIGSTOP) around the moments the test wants to see, so "queued"
and "turns processed while you watch" are observed deterministically, not raced.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402

PASSWORD = "correct horse battery"
SHOTS = os.environ.get("KILN_SCREENSHOTS", "/tmp")



def _server_env(live_server) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The environment for CLI commands on the live server's site (its database URL)."""
    db_url = getattr(live_server, "db_url", None)
    if db_url is None:  # an older LiveServer: read it from the running server
        raw = Path(f"/proc/{live_server.process.pid}/environ").read_bytes().split(b"\0")
        db_url = dict(item.decode().split("=", 1) for item in raw if b"=" in item)["KILN_DATABASE_URL"]
    return {**os.environ, "KILN_DATABASE_URL": db_url}


def add_user(live_server, name: str, admin: bool = False) -> None:  # type: ignore[no-untyped-def]
    args = [sys.executable, "-m", "kiln", "--data", str(live_server.data), "adduser", name,
            "--email", f"{name}@example.com", "--password", PASSWORD] + (["--admin"] if admin else [])
    done = subprocess.run(args, env=_server_env(live_server), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _descendants(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for c in found] + [g for c in found for g in _descendants(int(c))]


@contextmanager
def workers_paused(live_server) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Stop the processing worker (and its pool) of `kiln serve`; the web processes keep answering."""
    children = subprocess.run(["pgrep", "-P", str(live_server.process.pid)], capture_output=True,
                              text=True).stdout.split()
    worker = [int(c) for c in children if b"worker" in Path(f"/proc/{c}/cmdline").read_bytes().split(b"\0")]
    assert len(worker) == 1, "kiln serve started no processing worker"
    pids = worker + _descendants(worker[0])
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def log_in(browser: Browser, live_server, name: str, javascript: bool = True) -> Page:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900},
                                  java_script_enabled=javascript)
    page = context.new_page()
    page.goto("/auth/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page


def panel_row(page: Page, title: str):  # type: ignore[no-untyped-def]
    return page.locator("table.panel tbody tr", has=page.get_by_role("link", name=title, exact=True))


def test_owner_watches_processing_live_retries_and_admin_sees_counts(browser: Browser, live_server, images):  # type: ignore[no-untyped-def]
    add_user(live_server, "pia")
    add_user(live_server, "root", admin=True)
    page = log_in(browser, live_server, "pia")

    with workers_paused(live_server):
        page.get_by_role("link", name="Upload").click()
        page.set_input_files("input[name=file]", [str(images["truncated"]), str(images["plain"])])
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("#progress li")).to_have_count(2)
        for i in range(2):
            expect(page.locator("#progress li .status").nth(i)).to_contain_text("Processing")
        page.get_by_role("link", name="Processing", exact=True).click()
        bad, good = panel_row(page, "truncated"), panel_row(page, "plain")
        expect(page.locator("table.panel tbody tr")).to_have_count(2)
        for row in (bad, good):
            expect(row.locator(".badge")).to_have_text("Queued")
        # upload.js sends two files at once, so either may be first in line.
        expect(page.locator("td.status", has_text="Next in line")).to_have_count(1)
        expect(page.locator("td.status", has_text="Waiting in line: 1 item ahead")).to_have_count(1)
        expect(page.locator('[data-count="queued"]')).to_have_text("2")
        page.screenshot(path=f"{SHOTS}/panel-owner-queued.png", full_page=True)
        page.evaluate("window.kilnNotReloaded = true")

    # The worker runs: both rows change in place, without a reload.
    expect(bad.locator(".badge")).to_have_text("Failed", timeout=30_000)
    expect(bad.locator(".reason")).to_contain_text("damaged")
    expect(bad.get_by_role("button", name="Retry now")).to_be_visible()
    expect(good.locator(".badge")).to_have_text("Published", timeout=30_000)
    thumb = good.locator("td.thumb img")
    expect(thumb).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    expect(page.locator('[data-count="failed"]')).to_have_text("1")
    expect(page.locator('[data-count="processed"]')).to_have_text("1")
    expect(page.locator("#panel-live")).to_contain_text("Everything is finished")
    assert page.evaluate("window.kilnNotReloaded") is True, "the panel reloaded instead of updating in place"
    page.screenshot(path=f"{SHOTS}/panel-owner.png", full_page=True)

    # Retry now: the item goes back in line (the retry lane), then fails again for the same reason.
    with workers_paused(live_server):
        bad.get_by_role("button", name="Retry now").click()
        expect(bad.locator(".badge")).to_have_text("Queued")
        expect(bad).to_contain_text("image.retry")
        expect(page.locator("#panel-live")).to_contain_text("Retrying “truncated” now")
        page.screenshot(path=f"{SHOTS}/panel-owner-retry.png", full_page=True)
    expect(bad.locator(".badge")).to_have_text("Failed", timeout=30_000)
    expect(bad.locator(".reason")).to_contain_text("damaged")
    assert page.evaluate("window.kilnNotReloaded") is True

    # The admin, while one more upload waits for the (paused) worker, sees counts and queue depths.
    admin = log_in(browser, live_server, "root")
    expect(admin.get_by_role("link", name="Admin")).to_be_visible()
    with workers_paused(live_server):
        page.goto("/upload")
        page.set_input_files("input[name=file]", [str(images["webp"])])
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("#progress li .status")).to_contain_text("Processing")
        admin.get_by_role("link", name="Admin").click()
        expect(admin.locator('.stat[data-state="failed"] .stat-number')).to_have_text("1")
        expect(admin.locator('.stat[data-state="processed"] .stat-number')).to_have_text("1")
        expect(admin.locator('.stat[data-state="queued"] .stat-number')).to_have_text("1")
        lane = admin.locator('tr[data-lane="image.new"] td.num')
        expect(lane).to_have_text(["1", "1"])  # one item in the ledger, one message in the broker
        corrupt = admin.locator('tr[data-code="corrupt"]')
        expect(corrupt).to_contain_text("damaged")
        expect(corrupt.locator("td.num").first).to_have_text("1")
        latest = admin.locator("table.latest tbody tr")
        expect(latest).to_have_count(1)
        expect(latest).to_contain_text("pia")
        admin.screenshot(path=f"{SHOTS}/panel-admin.png", full_page=True)
    admin.get_by_role("button", name=re.compile(r"Retry all failed \(1\)")).click()
    expect(admin.locator(".notice.success")).to_contain_text("Retrying 1 failed item.")
    admin.context.close()
    page.context.close()


def test_retry_without_javascript(browser: Browser, live_server, images):  # type: ignore[no-untyped-def]
    add_user(live_server, "nojs")
    page = log_in(browser, live_server, "nojs", javascript=False)
    page.goto("/upload")
    page.set_input_files("input[name=file]", [str(images["truncated"])])
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/panel$"))
    row = page.locator("table.panel tbody tr")
    for _ in range(60):  # no script: the person reloads the page
        if row.get_attribute("data-state") == "failed":
            break
        page.wait_for_timeout(500)
        page.get_by_role("link", name="Reload").click()
    expect(row.locator(".reason")).to_contain_text("damaged")
    row.get_by_role("button", name="Retry now").click()
    expect(page).to_have_url(re.compile(r"/panel$"))
    expect(page.locator(".notice.success")).to_contain_text("Retrying “truncated” now")
    page.context.close()
