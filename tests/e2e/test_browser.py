"""The pages in a real browser (Debian's Chromium driven by Playwright), against `kiln serve`."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, IMAGE_LOADED, NO_CHROMIUM

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402


@pytest.fixture
def page(browser: Browser, live_server) -> Iterator[Page]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def test_new_user_registers_verifies_and_uploads_three_photos(page: Page, live_server, images, tmp_path):  # type: ignore[no-untyped-def]
    page.goto("/")
    page.get_by_role("link", name="Create account").click()
    page.fill("input[name=username]", "frida")
    page.fill("input[name=email]", "frida@example.com")
    page.fill("input[name=password]", "correct horse battery")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".notice.confirm")).to_contain_text("open the link we sent to frida@example.com")
    page.goto(live_server.mail_link("/auth/verify", "frida@example.com"))
    expect(page.locator(".notice.success")).to_contain_text("your email address is confirmed")
    # Log out and in again, as a person coming back would.
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Log in").click()
    page.fill("input[name=username]", "frida")
    page.fill("input[name=password]", "correct horse battery")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Upload").click()

    photos = [images["camera"], images["plain"], images["flat_png"]]
    page.set_input_files("input[name=file]", [str(p) for p in photos])
    page.fill("input[name=tags]", "browser")
    page.get_by_role("button", name="Upload").click()
    rows = page.locator("#progress li")
    expect(rows).to_have_count(3)
    # Each file shows its progress bar, then a link once processing is done.
    expect(page.locator("#progress progress")).to_have_count(3)
    for i in range(3):
        expect(rows.nth(i).get_by_role("link", name=re.compile("Published"))).to_be_visible(timeout=60_000)
    page.screenshot(path=str(tmp_path / "upload.png"))

    page.get_by_role("link", name="My gallery").click()
    thumbs = page.locator("ul.grid img.picture")
    expect(thumbs).to_have_count(3)
    for i in range(3):
        thumbs.nth(i).scroll_into_view_if_needed()
        loaded = thumbs.nth(i).evaluate(IMAGE_LOADED)
        assert loaded, f"thumbnail {i} did not load"
    # The camera photo (EXIF orientation 6) is shown upright: taller than wide.
    camera = page.locator("ul.grid li", has_text=photos[0].stem)
    size = camera.locator("img.picture").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size[1] > size[0], f"camera photo not upright: {size}"
    camera.locator("a.card").click()
    medium = page.locator("article.media figure img")
    expect(medium).to_be_visible()
    assert medium.evaluate("img => img.naturalHeight") == 1280
    page.screenshot(path=str(tmp_path / "media.png"), full_page=True)


def test_pages_work_without_javascript(browser: Browser, live_server, images):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/auth/register")
    page.fill("input[name=username]", "nojs")
    page.fill("input[name=email]", "nojs@example.com")
    page.fill("input[name=password]", "correct horse battery")
    page.get_by_role("button", name="Create account").click()
    page.goto(live_server.mail_link("/auth/verify", "nojs@example.com"))
    page.goto("/upload")
    page.set_input_files("input[name=file]", [str(images["webp"]), str(images["text"])])
    page.get_by_role("button", name="Upload").click()
    # The plain form posts both: one accepted, one refused with a reason.
    expect(page.locator(".notice.error").first).to_contain_text("1 file was accepted and is being processed.")
    expect(page.locator(".notice.error").nth(1)).to_contain_text("text file, which Kiln cannot publish")
    page.goto("/panel")
    expect(page.locator("table.panel tbody tr")).to_have_count(1)
    context.close()
