"""Links that unfurl, in a real browser: a page on another site frames the embed player and cannot frame
the media page; the share box's copy buttons copy; on a phone the share box fits the screen."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM
from tests.e2e.people import api_user, photo, upload, wait_processed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)



@contextlib.contextmanager
def another_site(html: str) -> Iterator[str]:
    """A page served from another origin (this machine, another port), for as long as the block runs."""
    class Post(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Post)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/a-blog-post"
    finally:
        server.shutdown()
        server.server_close()


def test_another_site_frames_the_player_only_and_the_copy_buttons_copy(browser, live_server, tmp_path):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    api = api_user(page, live_server, "una")
    item = wait_processed(api, [upload(api, photo(tmp_path, "sea.jpg", (20, 90, 160)), title="Sea at noon")["id"]])[0]
    media_path = item["url"].replace(live_server.url, "")

    # The share box: read-only texts, and with JavaScript a button that copies each.
    page.goto(media_path)
    page.get_by_text("Share or embed").click()
    link = page.locator("#share-link")
    assert link.input_value() == item["url"]
    page.get_by_role("button", name="Copy link").click()
    page.locator(".share-status", has_text="Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == item["url"]
    page.get_by_role("button", name="Copy embed code").click()
    embed_code = page.evaluate("navigator.clipboard.readText()")
    assert embed_code.startswith("<iframe ") and f"/m/{item['id']}/embed" in embed_code
    # On a 390 px phone the open share box scrolls nothing sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # A post on another site, with the embed code pasted in, and an attempt to frame the page itself.
    post = (f"<!doctype html><title>A blog</title>{embed_code}"
            f'<iframe id="page" src="{item["url"]}" width="400" height="300"></iframe>')
    with another_site(post) as elsewhere:
        page.goto(elsewhere)
        page.wait_for_load_state("networkidle")
    frames = [frame for frame in page.frames if frame != page.main_frame]
    players = [f for f in frames if f.url.endswith(f"/m/{item['id']}/embed")]
    assert len(frames) == 2 and len(players) == 1, [f.url for f in frames]
    player = players[0]
    player.locator(".embed-bar a", has_text="Sea at noon").wait_for()
    assert player.locator("img.embed-picture").evaluate("img => img.complete && img.naturalWidth > 0")
    refused = next(f for f in frames if f is not player)
    # The media page stayed out of its frame: Chromium shows its own error page there instead.
    assert refused.url != item["url"] and "Sea at noon" not in refused.content(), refused.url
    context.close()
