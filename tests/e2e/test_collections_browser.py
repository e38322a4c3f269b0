"""Collections in a real browser: three photos uploaded straight into a private collection, arranged
with the keyboard buttons and by dragging, and shown by a share link to a logged-out visitor until
it is revoked."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import CSP_LISTENER, HAVE_CHROMIUM, IMAGE_LOADED, NO_CHROMIUM

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Browser, expect  # noqa: E402

from tests.e2e.people import api_user, photo, wait_processed  # noqa: E402
from tests.e2e.test_a11y_browser import AXE, check  # noqa: E402


def order(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.strip() for t in page.locator(".arrange-item .arrange-title").all_text_contents()]


def test_upload_into_a_private_collection_arrange_and_share(browser: Browser, live_server, tmp_path):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    api = api_user(page, live_server, "annika")
    page.goto("/collections/new")
    page.fill("input[name=title]", "Kept for family")
    page.select_option("select[name=visibility]", "private")
    page.get_by_role("button", name="Make the collection").click()
    collection_url = page.url
    collection_id = collection_url.rstrip("/").rsplit("/", 1)[-1]

    page.get_by_role("link", name="Upload into this collection").click()
    expect(page.locator("select[name=collection_id]")).to_have_value(collection_id)
    files = [photo(tmp_path, f"{name}.jpg", colour) for name, colour in
             (("red", (200, 40, 40)), ("green", (40, 160, 60)), ("blue", (40, 80, 200)))]
    page.set_input_files("input[name=file]", [str(f) for f in files])
    page.select_option("select[name=visibility]", "private")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-summary")).to_contain_text("3 files were stored")
    items = api.get(f"/api/v1/collections/{collection_id}").json()["items"]
    assert [i["title"] for i in items] == ["red", "green", "blue"]  # one at a time, in the order chosen
    wait_processed(api, [i["id"] for i in items])

    # Arrange: the keyboard's Move up button, then a drag; saved by the form.
    page.goto(collection_url + "/edit")
    page.get_by_role("button", name="Move up: blue").focus()
    page.keyboard.press("Enter")
    assert order(page) == ["red", "blue", "green"]
    page.locator(".arrange-item", has_text="green").drag_to(page.locator(".arrange-item", has_text="red"))
    assert order(page)[0] == "green"
    page.get_by_role("button", name="Save order and notes").click()
    expect(page.locator(".notice.success")).to_contain_text("Order and notes saved")
    saved = order(page)
    assert saved[0] == "green" and sorted(saved) == ["blue", "green", "red"]

    if AXE.exists():  # axe-core (scripts/test.sh installs it): the new pages, on a phone, in the dark theme
        found: list[str] = []
        checker = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                      color_scheme="dark", bypass_csp=True,  # axe is injected
                                      storage_state=context.storage_state())
        axe_page = checker.new_page()
        for path in (collection_url, collection_url + "/edit", "/u/annika/collections", "/collections/new",
                     f"/u/annika/m/{items[0]['id']}", f"/upload?collection={collection_id}"):
            check(axe_page, path, found, "annika")
        assert axe_page.evaluate("typeof axe.run") == "function"  # it really ran
        checker.close()
        assert not found, "\n".join(found)

    page.goto(collection_url + "/edit")
    page.fill("input[name=label]", "grandma")
    page.get_by_role("button", name="Make a share link").click()
    link = re.search(r"http://\S+\?share=[\w-]+", page.locator(".notice.success code").inner_text()).group(0)  # type: ignore[union-attr]
    assert page.evaluate("window.__csp") == []

    visitor = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    assert visitor.goto(collection_url).status == 404  # private
    assert visitor.goto(link).status == 200
    thumbs = visitor.locator("ol.collection-grid img.picture")
    expect(thumbs).to_have_count(3)
    assert [t.strip() for t in visitor.locator("ol.collection-grid .caption").all_text_contents()] == saved
    for i in range(3):  # the private photos' files, through the app, opened by the link
        assert thumbs.nth(i).evaluate(IMAGE_LOADED), f"thumbnail {i} did not load"
    visitor.locator("ol.collection-grid a").first.click()
    expect(visitor.locator("article.media h1")).to_have_text("green")

    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".notice.success")).to_contain_text("Link revoked")
    assert visitor.goto(link).status == 404
    token = link.rsplit("=", 1)[-1]
    thumb = api.get(f"/api/v1/media/{items[0]['id']}").json()["renditions"]["thumbnail"]["url"]
    assert visitor.request.get(f"{thumb}?share={token}").status == 404  # files too
    context.close()
    visitor.context.close()
