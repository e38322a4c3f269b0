"""What a new person meets on day one, in a real browser against `kiln serve`, on a phone-sized
screen: the uploader says each file's size as the server would and refuses a file over the limit
before sending it; an owner finds their private items, marked, in their own gallery; visitors find
the tag index from the menu; the site has an icon."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from PIL import Image

from kiln.units import format_size
from tests.e2e.conftest import HAVE_CHROMIUM, IMAGE_LOADED, NO_CHROMIUM

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.e2e.people import api_user, photo, upload  # noqa: E402
from tests.e2e.test_kinds_browser import sign_up  # noqa: E402

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Browser, live_server) -> Iterator[Page]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    yield context.new_page()
    context.close()


def kiln(live_server, *args: str) -> str:  # type: ignore[no-untyped-def]
    env = {**os.environ, "KILN_DATABASE_URL": live_server.db_url}
    done = subprocess.run([sys.executable, "-m", "kiln", "--data", str(live_server.data), *args], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_the_uploader_shows_sizes_and_refuses_a_file_over_the_limit_before_sending_it(phone, live_server, tmp_path):  # type: ignore[no-untyped-def]
    sign_up(phone, live_server, "sizer")
    kiln(live_server, "users", "set-upload-limit", "sizer", "100KiB")
    small, big = tmp_path / "small.png", tmp_path / "noise.png"
    Image.new("RGB", (40, 30), (200, 90, 20)).save(small)
    Image.effect_noise((400, 300), 90).convert("RGB").save(big)
    assert big.stat().st_size > 100 * 1024 > small.stat().st_size
    posts: list[str] = []
    phone.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    phone.goto("/upload")
    expect(phone.locator("#files-hint")).to_contain_text("Your upload limit is 100 KiB.")
    expect(phone.locator("#title-hint")).to_have_text("Up to 200 characters.")
    assert phone.locator("input[name=title]").get_attribute("maxlength") == "200"
    assert fits(phone)
    phone.set_input_files("input[name=file]", [str(small), str(big)])
    phone.get_by_role("button", name="Upload").click()
    rows = phone.locator("#progress li")
    expect(rows.nth(0)).to_contain_text(f"small.png · {format_size(small.stat().st_size)}")
    expect(rows.nth(1)).to_contain_text(f"noise.png · {format_size(big.stat().st_size)}")
    expect(rows.nth(1)).to_contain_text("The file is larger than your 100 KiB upload limit.")
    expect(rows.nth(0).get_by_role("link", name="Published — view it")).to_be_visible(timeout=60_000)
    # The big one never left the browser: one upload was sent, and the server has one item.
    assert [url for url in posts if url.endswith("/upload")] == [live_server.url + "/upload"]
    assert '"id"' in kiln(live_server, "media", "list", "--user", "sizer", "--json")
    assert kiln(live_server, "media", "list", "--user", "sizer").count("\n") == 1
    assert fits(phone)


def test_owners_see_their_private_items_marked_and_visitors_find_tags_from_the_menu(browser, phone, live_server,  # type: ignore[no-untyped-def]
                                                                                  tmp_path):
    api = api_user(phone, live_server, "tagger")
    sent = [upload(api, photo(tmp_path, "harbour.jpg", (200, 80, 20), (320, 200)), title="Harbour",
                   tags="harbour, quay"),
            upload(api, photo(tmp_path, "diary.jpg", (20, 80, 200), (320, 200)), title="Diary", tags="quay, diary",
                   visibility="private")]
    deadline = time.monotonic() + 120
    while any(api.get(f"/api/v1/media/{item['id']}").json()["state"] != "processed" for item in sent):
        assert time.monotonic() < deadline, "not processed after 120 s"
        time.sleep(0.5)
    phone.goto("/u/tagger")
    diary = phone.locator("ul.grid li", has_text="Diary")
    expect(diary.locator(".mark")).to_have_text("Private")
    assert diary.locator("img.picture").evaluate(IMAGE_LOADED)
    assert "/r/thumbnail" in (diary.locator("img.picture").get_attribute("src") or "")
    assert fits(phone)

    visitor = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = visitor.new_page()
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    page.goto("/u/tagger")
    expect(page.locator("ul.grid li")).to_have_count(1)
    expect(page.locator(".mark")).to_have_count(0)
    page.get_by_role("link", name="Explore").click()
    expect(page).to_have_url(live_server.url + "/explore")
    assert fits(page)
    page.get_by_role("link", name="All tags").click()
    expect(page).to_have_url(live_server.url + "/tags")
    quay = page.locator(".tag-index a", has_text="quay")
    expect(quay.locator(".count")).to_have_text("Public items: 1")  # the private one does not count
    expect(page.locator(".tag-index a", has_text="diary")).to_have_count(0)
    assert fits(page)
    quay.click()
    expect(page.locator("ul.grid li")).to_have_count(1)
    page.get_by_role("link", name="All tags").click()
    expect(page).to_have_url(live_server.url + "/tags")
    for icon in page.locator("link[rel=icon]").evaluate_all("links => links.map(l => l.href)") + ["/favicon.ico"]:
        answer = page.request.get(icon)
        assert answer.ok and answer.headers["content-type"].startswith("image/"), icon
    assert missing == []
    visitor.close()
