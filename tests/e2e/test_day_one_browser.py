"""What a new person meets on day one, in a real browser against `kiln serve`, on a phone-sized
screen: the uploader says each file's size as the server would and refuses a file over the limit
before sending it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from PIL import Image

from kiln.units import format_size
from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402

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
