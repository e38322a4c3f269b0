"""In a real browser: B follows A with the button (no JavaScript needed); A's bell shows it without
reloading when the page polls (bell.js, under the strict CSP); the screen-reader sentence is said once;
A's daily digest arrives from the worker's sweeper with one-click unsubscribe, and the link works
logged out."""

from __future__ import annotations

import time
from email import message_from_bytes

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import CSP_LISTENER, HAVE_CHROMIUM, NO_CHROMIUM
from tests.e2e.test_kinds_browser import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)


def _digest(server, to: str, limit: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while True:
        for eml in sorted((server.data / "mail").glob("*.eml")):
            message = message_from_bytes(eml.read_bytes())
            if message["To"] == to and message["List-Unsubscribe"]:
                return message
        assert time.monotonic() < deadline, "no notification mail"
        time.sleep(0.5)


def test_follow_bell_digest_and_unsubscribe(browser, live_server) -> None:  # type: ignore[no-untyped-def]
    anna_context = browser.new_context(base_url=live_server.url)
    anna_context.add_init_script(CSP_LISTENER)
    anna = anna_context.new_page()
    sign_up(anna, live_server, "annabell")
    bruno = browser.new_context(base_url=live_server.url).new_page()
    sign_up(bruno, live_server, "brunofollows")

    anna.goto("/")
    bell = anna.locator("#kiln-bell")
    assert bell.get_attribute("data-unseen") == "0" and anna.locator("#kiln-bell .bell-count").is_hidden()

    bruno.goto("/u/annabell")
    bruno.get_by_role("button", name="Follow").click()
    expect(bruno.get_by_role("button", name="Unfollow")).to_be_visible()

    # The tab comes back into view: bell.js asks at once (and then every 30 s).
    anna.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    anna.wait_for_function("() => document.getElementById('kiln-bell').dataset.unseen === '1'", timeout=10_000)
    assert anna.locator("#kiln-bell .bell-n").inner_text() == "1"
    assert anna.locator("#kiln-bell-news").inner_text() == "You have 1 unread notification."
    anna.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # unchanged: nothing said again
    anna.wait_for_load_state("networkidle")
    assert anna.evaluate("window.__csp") == []

    anna.click("#kiln-bell")
    assert "brunofollows started following you" in anna.locator("main").inner_text()
    anna.get_by_role("button", name="Mark all read").click()
    assert anna.locator("#kiln-bell").get_attribute("data-unseen") == "0"

    # New followers default to the daily digest: the worker's sweeper sends it (the first one at once).
    mail = _digest(live_server, "annabell@example.com")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = mail["List-Unsubscribe"].strip("<>")
    assert link.startswith(live_server.url + "/unsubscribe?token=") and link in mail.get_payload(decode=True).decode()
    stranger = browser.new_context(base_url=live_server.url).new_page()  # logged out
    stranger.goto(link)
    stranger.get_by_role("button", name="Stop these mails").click()
    assert "no more mail about new followers" in stranger.locator("main").inner_text()
    anna.goto("/account")
    assert anna.locator("select[name=mail_follow]").input_value() == "off"
