"""No page scrolls sideways on a 390 px phone, whatever people typed: every kind of page, filled with
the longest titles, tags, names, descriptions and file names Kiln accepts, unbroken (no spaces)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.e2e.people import api_user, photo, upload, wait_processed  # noqa: E402

WIDTH = 390
USERNAME = "w" * 30  # the longest username
TITLE = "Ü" + "W" * 199  # 200 characters, the longest title
TAG = "T" * 64  # the longest tag
URL = "https://example.com/" + "path/" * 30 + "x" * 80
DESCRIPTION = (f"A link: {URL}\n\nA long word: {'Q' * 300}\n\n`{'code' * 60}`\n\n    {'pre' * 80}\n\n"
               f"| {'c' * 120} | {'d' * 50} |\n|---|---|\n| {'e' * 90} | f |")
DISPLAY_NAME = "D" * 100
# Lists what sticks out past the right edge, to say what to fix; not what is inside a row that scrolls
# sideways on its own (the phone's top bar links), which the page does not.
WIDEST = """() => Array.from(document.querySelectorAll('body *')).filter(el => {
    const r = el.getBoundingClientRect();
    if (!(r.right > window.innerWidth + 1 && r.width > 0)) return false;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement)
        if (['auto', 'scroll'].includes(getComputedStyle(up).overflowX)) return false;
    return true;
}).slice(0, 10).map(el => el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined
    ? '.' + String(el.className).split(' ').join('.') : '') + ' ' + Math.round(el.getBoundingClientRect().right))"""


def make_admin(server, username: str) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "KILN_DATABASE_URL": server.db_url, "KILN_BASE_URL": server.url}
    subprocess.run([sys.executable, "-m", "kiln", "--data", str(server.data), "makeadmin", username],
                   env=env, check=True, capture_output=True, timeout=60)


def test_no_page_scrolls_sideways_on_a_phone(browser, live_server, tmp_path):  # type: ignore[no-untyped-def]
    phone = {"viewport": {"width": WIDTH, "height": 844}, "base_url": live_server.url}
    context = browser.new_context(**phone)
    page = context.new_page()
    api = api_user(page, live_server, USERNAME)
    make_admin(live_server, USERNAME)
    fields = {"title": TITLE, "tags": f"{TAG}, {'S' * 64}, short", "description": DESCRIPTION}
    picture = upload(api, photo(tmp_path, "wide.jpg", (120, 90, 60), size=(2400, 600)), **fields)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("A long line: " + "N" * 380 + "\n")
    text = upload(api, text_file, **fields)
    broken = tmp_path / "broken.jpg"  # a JPEG cut short: accepted, then fails, so panels list it with a reason
    broken.write_bytes(photo(tmp_path, "whole.jpg", (1, 2, 3), size=(3000, 2000)).read_bytes()[:3000])
    failed = upload(api, broken, **fields)
    wait_processed(api, [picture["id"], text["id"]])
    for _ in range(300):
        if api.get(f"/api/v1/media/{failed['id']}").json()["state"] == "failed":
            break
        page.wait_for_timeout(200)
    api.patch(f"/api/v1/media/{picture['id']}", json={"original": "public"})
    page.goto("/account")
    page.fill("input[name=display_name]", DISPLAY_NAME)
    page.fill("textarea[name=bio]", DESCRIPTION[:2000])
    page.get_by_role("button", name="Save profile").click()

    too_wide: dict[str, object] = {}

    def check(where: str) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > WIDTH:
            too_wide[where] = (width, page.evaluate(WIDEST))

    def visit(path: str, status: int = 200) -> None:
        response = page.goto(path)
        assert response is not None and response.status == status, (path, response and response.status)
        page.wait_for_load_state("load")
        check(path)

    media = f"/u/{USERNAME}/m/{picture['id']}"
    for path in ("/", f"/u/{USERNAME}", media, f"/u/{USERNAME}/m/{text['id']}", f"/m/{picture['id']}/edit",
                 f"/m/{picture['id']}/delete", f"/tag/{TAG.lower()}", "/panel", "/account", "/admin/processing",
                 "/api/docs", "/notifications", "/timeline", f"/u/{USERNAME}/followers"):
        visit(path)
    visit(f"/tag/{'z' * 64}", 404)  # the error page repeats the unbroken slug
    visit("/u/" + "n" * 200, 404)
    page.goto(media)
    page.locator("a[data-viewer]").click()  # the photo viewer, with the longest title and sizes
    expect(page.locator("dialog.viewer")).to_be_visible()
    check("the photo viewer")
    page.keyboard.press("Escape")

    page.goto("/upload")
    check("/upload")
    names = [tmp_path / (("F" * 200) + ".jpg"), tmp_path / ("G" * 120 + " " + "H" * 100 + ".txt")]
    photo(tmp_path, names[0].name, (10, 10, 10), size=(64, 64))
    names[1].write_text("hello\n")
    page.set_input_files("input[name=file]", [str(p) for p in names])
    check("/upload with long file names chosen")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#progress li")).to_have_count(2)
    expect(page.locator("#progress li").first).to_contain_text("view it", timeout=60_000)
    check("/upload after sending long file names")

    anonymous = browser.new_context(**phone)
    page = anonymous.new_page()
    for path in ("/", f"/u/{USERNAME}", media, f"/tag/{TAG.lower()}", "/auth/login", "/auth/register",
                 "/auth/forgot"):
        visit(path)
    page.goto("/auth/login")
    page.fill("input[name=username]", "L" * 254)
    page.fill("input[name=password]", "wrong password")
    page.get_by_role("button", name="Log in").click()
    check("/auth/login after a failed login with a long name")
    for opened in (context, anonymous):
        opened.close()
    assert too_wide == {}, "\n".join(f"{where}: {found}" for where, found in too_wide.items())
