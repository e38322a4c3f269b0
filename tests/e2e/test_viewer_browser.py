"""The photo viewer in a real browser: a photo opens at full size in a modal dialog, Right shows the
older item and Left the newer, a swipe does the same on a phone, focus stays in the dialog, Escape
closes it on the page of the item shown, a neighbour that is not a photo opens as its page, and the
download button offers the published original or else the picture itself; opened from a list (a
search here), the page and the viewer walk that list. Without JavaScript the
photo is a plain link to its largest rendition. A private photo's files come through the app's
checked route."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import CSP_LISTENER as LISTEN
from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.e2e.people import api_user, photo, upload, wait_processed  # noqa: E402


def path(url: str) -> str:
    return urlsplit(url).path


def shown(page) -> bool:  # type: ignore[no-untyped-def]
    """The viewer's picture has finished loading and has pixels."""
    return bool(page.eval_on_selector(".viewer-img", "img => img.complete && img.naturalWidth > 0"))


def wait_shown(page) -> None:  # type: ignore[no-untyped-def]
    for _ in range(100):
        if shown(page):
            return
        page.wait_for_timeout(100)
    raise AssertionError("the viewer's picture did not load")


def test_photo_viewer(browser, live_server, tmp_path):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.add_init_script(LISTEN)
    page = context.new_page()
    api = api_user(page, live_server, "vera")
    (tmp_path / "note.txt").write_text("A note, the oldest item: not a photo.\n")
    wait_processed(api, [upload(api, tmp_path / "note.txt", title="A note")["id"]])
    colours = [(200, 40, 40), (40, 160, 60), (40, 60, 200)]
    ids = [upload(api, photo(tmp_path, f"p{i}.jpg", c), title=f"Photo {i}")["id"] for i, c in enumerate(colours)]
    secret = upload(api, photo(tmp_path, "secret.jpg", (90, 90, 90)), title="Secret", visibility="private")["id"]
    wait_processed(api, [*ids, secret])
    # Newest first, as the gallery and the pages' neighbour links order them.
    listed = api.get("/api/v1/media", params={"user": "vera"}).json()["items"]
    newest, middle, oldest, note = listed
    assert api.patch(f"/api/v1/media/{middle['id']}", json={"original": "public"}).status_code == 200
    middle = api.get(f"/api/v1/media/{middle['id']}").json()

    page.goto(path(newest["url"]))
    link = page.locator("a[data-viewer]")
    assert link.get_attribute("href") == path(newest["renditions"]["medium"]["url"])  # no original published
    link.click()
    dialog = page.locator("dialog.viewer")
    expect(dialog).to_be_visible()
    wait_shown(page)
    assert page.locator(".viewer-img").get_attribute("alt") == newest["title"]
    expect(page.locator(".viewer-prev")).to_be_disabled()  # nothing newer
    download = page.locator(".viewer-download")
    assert download.get_attribute("href") == path(newest["renditions"]["medium"]["url"])
    assert download.get_attribute("download") == f"{newest['title']}.jpg"
    for _ in range(6):  # focus is trapped in the modal dialog
        page.keyboard.press("Tab")
        assert page.evaluate("document.querySelector('dialog.viewer').contains(document.activeElement)")

    page.keyboard.press("ArrowRight")  # the older item, as the page's "Older" link
    expect(page.locator(".viewer-title")).to_have_text(middle["title"])
    wait_shown(page)
    original = path(middle["renditions"]["original"]["url"])
    assert page.locator(".viewer-img").get_attribute("src") == original  # the largest the visitor may see
    assert download.get_attribute("href") == original and "original" in download.inner_text()
    saved = page.request.get(original)
    assert saved.status == 200 and saved.headers["content-type"] == "image/jpeg"
    page.keyboard.press("ArrowRight")
    expect(page.locator(".viewer-title")).to_have_text(oldest["title"])
    page.keyboard.press("ArrowLeft")
    expect(page.locator(".viewer-title")).to_have_text(middle["title"])

    page.keyboard.press("Escape")  # closes on the page of the item shown
    page.wait_for_url(f"**{path(middle['url'])}")
    expect(page.locator("dialog.viewer")).to_be_hidden()

    page.goto(path(oldest["url"]))  # the next older item is a text: the viewer opens its page
    page.locator("a[data-viewer]").click()
    wait_shown(page)
    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"**{path(note['url'])}")

    # Opened from a search (oldest first), the page and the viewer walk the search's list instead of
    # the owner's newer and older items (context.js).
    for _ in range(50):  # the search index is written by the worker just after processing
        page.goto("/search?q=photo&kind=image&sort=oldest")  # the note says "photo" too
        if page.locator("ul.grid a").count() == 3:
            break
        page.wait_for_timeout(200)
    page.locator("ul.grid a", has_text=oldest["title"]).click()
    page.wait_for_url(f"**{path(oldest['url'])}")
    nav = page.locator("nav.prevnext")
    expect(nav.locator("a.context-back")).to_have_text("Back to “Search”")
    expect(nav.locator('a[rel="prev"]')).to_have_count(0)  # the first of the list
    assert nav.locator('a[rel="next"]').get_attribute("href") == path(middle["url"])  # not the note
    page.locator("a[data-viewer]").click()
    wait_shown(page)
    page.keyboard.press("ArrowRight")
    expect(page.locator(".viewer-title")).to_have_text(middle["title"])
    page.keyboard.press("ArrowRight")
    expect(page.locator(".viewer-title")).to_have_text(newest["title"])
    expect(page.locator(".viewer-next")).to_be_disabled()  # the end of the list
    page.keyboard.press("Escape")
    page.wait_for_url(f"**{path(newest['url'])}")  # closed on the page of the item shown

    page.goto(f"/u/vera/m/{secret}")  # private: through the app's checked route
    assert page.locator("a[data-viewer]").get_attribute("href") == f"/m/{secret}/r/medium"
    page.locator("a[data-viewer]").click()
    wait_shown(page)
    page.keyboard.press("Escape")
    expect(page.locator("dialog.viewer")).to_be_hidden()
    assert page.evaluate("window.__csp") == []

    phone = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    phone.add_init_script(LISTEN)
    small = phone.new_page()
    small.goto(path(newest["url"]))
    small.locator("a[data-viewer]").click()
    wait_shown(small)
    box = small.locator(".viewer-stage").bounding_box()
    y = box["y"] + box["height"] / 2
    small.mouse.move(box["x"] + 320, y)  # pointer events, as a finger's
    small.mouse.down()
    small.mouse.move(box["x"] + 60, y + 10, steps=6)
    small.mouse.up()
    expect(small.locator(".viewer-title")).to_have_text(middle["title"])
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    assert small.evaluate("window.__csp") == []

    plain = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    bare = plain.new_page()
    bare.goto(path(middle["url"]))
    expect(bare.locator("dialog.viewer")).to_be_hidden()
    bare.locator("a[data-viewer]").click()  # a plain link to the largest picture the browser shows
    bare.wait_for_url(f"**{path(middle['renditions']['medium']['url'])}")
    assert bare.evaluate("document.images[0].naturalWidth") == middle["renditions"]["medium"]["width"]
    for opened in (context, phone, plain):
        opened.close()
