"""Comments and favourites in a real browser: the live preview (a script file under the CSP, calling the
preview operation), posting, replying in a <details> form, the favourite button's pressed state, and the
page on a 390 px phone without sideways scrolling."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import CSP_LISTENER, HAVE_CHROMIUM, NO_CHROMIUM
from tests.e2e.people import api_user, photo, upload, wait_processed

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Browser, expect  # noqa: E402


def test_preview_post_reply_and_favourite_on_a_phone(browser: Browser, live_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    owner_context = browser.new_context(base_url=live_server.url)
    api = api_user(owner_context.new_page(), live_server, "olga")
    item = upload(api, photo(tmp_path, "pier.jpg", (30, 80, 120), size=(800, 500)), title="Pier")
    wait_processed(api, [item["id"]])
    owner_context.close()

    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    api_user(page, live_server, "pablo")
    page.goto(f"/u/olga/m/{item['id']}")
    box = page.get_by_label("Your comment")
    box.fill("So **calm**, see <script>alert(1)</script>")
    preview = page.locator("#comment-preview")
    expect(preview.locator("strong")).to_have_text("calm")  # rendered by the server as you type
    expect(preview.locator("script")).to_have_count(0)
    page.get_by_role("button", name="Post comment").click()
    comment = page.locator("article.comment").first
    expect(comment.locator(".comment-text strong")).to_have_text("calm")
    expect(page.locator("#comments-heading")).to_have_text("1 comment")

    page.locator("details.reply summary").first.click()
    page.get_by_label("Your reply").fill("Replying to myself")
    page.get_by_role("button", name="Post reply").click()
    expect(page.locator("ol.comment-replies .comment-text")).to_have_text("Replying to myself")

    button = page.get_by_role("button", name="Favourite")
    expect(button).to_have_attribute("aria-pressed", "false")
    button.click()
    expect(page.get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".media-social")).to_contain_text("1 favourite")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing pushes the page sideways
    assert page.evaluate("window.__csp") == []
    page.screenshot(path=str(tmp_path / "comments-phone.png"), full_page=True)
    context.close()
