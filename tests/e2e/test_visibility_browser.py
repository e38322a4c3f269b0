"""A private photo in a real browser: its owner sees it; logged out, or logged in as someone else, its
page, thumbnail, medium and original URLs (the old public ones and the checked ones) all answer 404."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.e2e.conftest import HAVE_CHROMIUM, IMAGE_LOADED, NO_CHROMIUM

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Browser, BrowserContext, Page, expect  # noqa: E402


@pytest.fixture
def contexts(browser: Browser, live_server) -> Iterator[list[BrowserContext]]:  # type: ignore[no-untyped-def]
    made: list[BrowserContext] = []
    yield made
    for context in made:
        context.close()


def new_page(browser: Browser, live_server, contexts) -> Page:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    contexts.append(context)
    return context.new_page()


def register(page: Page, live_server, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/auth/register")
    page.fill("input[name=username]", name)
    page.fill("input[name=email]", f"{name}@example.com")
    page.fill("input[name=password]", "correct horse battery")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".notice.confirm")).to_contain_text(f"{name}@example.com")
    page.goto(live_server.mail_link("/auth/verify", f"{name}@example.com"))
    expect(page.locator(".notice.success")).to_contain_text("confirmed")


def test_a_private_photo_is_404_for_everyone_but_its_owner(browser, live_server, contexts, tmp_path):  # type: ignore[no-untyped-def]
    photo = tmp_path / "family.jpg"
    Image.linear_gradient("L").resize((640, 480)).convert("RGB").save(photo, "JPEG")
    owner = new_page(browser, live_server, contexts)
    register(owner, live_server, "olga")
    owner.goto("/upload")
    owner.set_input_files("input[name=file]", str(photo))
    owner.get_by_role("button", name="Upload").click()
    owner.locator("#progress li").get_by_role("link", name=re.compile("Published")).click(timeout=60_000)
    media_path = owner.url.removeprefix(live_server.url)
    media_id = media_path.rsplit("/", 1)[1]
    # While public, its files are plain store URLs.
    old_medium = owner.locator("article.media figure img").get_attribute("src")
    owner.goto("/u/olga")
    old_thumb = owner.locator("ul.grid img.picture").first.get_attribute("src")
    assert old_medium and old_thumb and old_medium.startswith("/media/")

    owner.goto(f"/m/{media_id}/edit")
    owner.select_option("select[name=visibility]", "private")
    owner.check("input[name=original][value=public]")
    owner.get_by_role("button", name="Save").click()
    expect(owner.locator(".notice.visibility")).to_contain_text("Private: only you")
    medium = owner.locator("article.media figure img")
    expect(medium).to_have_attribute("src", f"/m/{media_id}/r/medium")
    assert medium.evaluate(IMAGE_LOADED), "the owner's medium did not load"
    original = owner.get_by_role("link", name="Download the original").get_attribute("href")
    assert original == f"/m/{media_id}/r/original"
    assert owner.request.get(original).status == 200
    owner.goto("/u/olga")  # only in the owner's own view of their gallery, marked, through the checked route
    expect(owner.locator("ul.grid li .mark")).to_have_text("Private")
    thumb = owner.locator("ul.grid img.picture")
    expect(thumb).to_have_attribute("src", f"/m/{media_id}/r/thumbnail")
    assert thumb.evaluate(IMAGE_LOADED), "the owner's thumbnail did not load"

    urls = [media_path, old_medium, old_thumb, f"/m/{media_id}/r/medium", f"/m/{media_id}/r/thumbnail", original,
            f"/api/v1/media/{media_id}"]
    anonymous = new_page(browser, live_server, contexts)
    someone_else = new_page(browser, live_server, contexts)
    register(someone_else, live_server, "bob")
    for viewer in (anonymous, someone_else):
        for url in urls:
            response = viewer.goto(url)
            assert response is not None and response.status == 404, (url, response and response.status)
    # Gone on the server for the owner too (the owner's own browser still has it cached: public files
    # are sent with a one-year cache, which nothing can recall; docs/visibility.md says so).
    assert owner.request.get(old_medium).status == 404
