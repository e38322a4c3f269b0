"""The front page's grid in a real browser: at least 3 columns on a 390x844 phone with no sideways
scroll, every thumbnail taken from its 2x source on a 2x screen, and dense on a 1440 px desktop.
Screenshots go to $KILN_SHOTS (else the test's temporary folder), in light, dark and Arabic."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, IMAGE_LOADED, NO_CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from tests import fixtures_images as F  # noqa: E402
from tests.e2e.people import api_user, photo, upload, wait_processed  # noqa: E402
from tests.fixtures_model3d import binary_stl  # noqa: E402
from tests.fixtures_pdf import document  # noqa: E402

# Shapes people upload: landscape, portrait, panorama, square, and one smaller than a thumbnail.
SHAPES = [(1600, 1000), (900, 1400), (2400, 700), (1200, 1200), (1400, 1050), (1000, 1500), (1800, 1000),
          (1300, 900), (150, 110)]
COLOURS = [(180, 70, 40), (40, 110, 160), (70, 140, 60), (200, 160, 40), (120, 60, 140), (30, 30, 30),
           (220, 120, 150), (90, 160, 170), (160, 90, 40)]
# The number of cards in the grid's first row, and whether the page is wider than the screen.
COLUMNS = """() => { const cards = [...document.querySelectorAll('ul.grid > li')];
    const top = cards[0].getBoundingClientRect().top;
    return cards.filter(c => Math.abs(c.getBoundingClientRect().top - top) < 2).length; }"""
SIDEWAYS = "() => document.documentElement.scrollWidth > window.innerWidth"


def shots_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("KILN_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_front_page_grid_on_a_phone_and_a_desktop(browser, live_server, tmp_path):  # type: ignore[no-untyped-def]
    shots = shots_folder(tmp_path)
    desk = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    page = desk.new_page()
    api = api_user(page, live_server, "lena")
    ids = []
    for n, size in enumerate(SHAPES):
        path = photo(tmp_path, f"p{n}.jpg", COLOURS[n], size)
        if n % 2:  # half of them textured like photographs, where softness would show
            F.photo(*size, seed=n).save(path, quality=88)
        ids.append(upload(api, path, title=f"Harbour view {n + 1}")["id"])
    (tmp_path / "notes.pdf").write_bytes(document([(595, 842)] * 3))
    (tmp_path / "bracket.stl").write_bytes(binary_stl())
    others = [upload(api, tmp_path / "notes.pdf", title="Tide tables")["id"],
              upload(api, tmp_path / "bracket.stl", title="Mooring bracket")["id"]]
    wait_processed(api, ids + others)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                has_touch=True, base_url=live_server.url)
    mobile = phone.new_page()
    mobile.goto("/")
    assert mobile.evaluate(COLUMNS) >= 3
    assert mobile.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    pictures = mobile.locator("ul.grid img.picture")
    assert pictures.count() == len(SHAPES) + 2
    badges = mobile.locator("ul.grid .badge").all_inner_texts()
    assert sorted(badges) == ["3 pages", "3D"], badges
    sharp = 0
    for n in range(pictures.count()):
        picture = pictures.nth(n)
        picture.scroll_into_view_if_needed()
        assert picture.evaluate(IMAGE_LOADED)
        src = picture.evaluate("img => img.currentSrc")
        if picture.get_attribute("srcset"):
            assert "/thumbnail_2x-" in src, src
            sharp += 1
    assert sharp == len(SHAPES) + 1  # all but the picture smaller than a thumbnail, whose 2x is the 1x
    # Each card says who and when; the date is machine-readable.
    card = mobile.locator("ul.grid > li", has_text="Mooring bracket")
    assert "lena" in card.locator(".byline").inner_text() and card.locator(".byline time[datetime]").count() == 1
    assert card.get_by_role("link", name="lena").get_attribute("href") == "/u/lena"
    mobile.evaluate("() => window.scrollTo(0, 0)")
    mobile.screenshot(path=str(shots / "gallery-phone.png"))

    page.goto("/")
    assert page.evaluate(COLUMNS) >= 5 and not page.evaluate(SIDEWAYS)
    page.keyboard.press("Tab")
    for _ in range(40):  # move with the keyboard to the first card: its focus ring shows
        if page.evaluate("() => !!document.activeElement.closest('ul.grid')"):
            break
        page.keyboard.press("Tab")
    assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.screenshot(path=str(shots / "gallery-desktop.png"))

    for name, options in (("dark", {"color_scheme": "dark"}), ("arabic", {"locale": "ar"})):
        other = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                    is_mobile=True, has_touch=True, base_url=live_server.url, **options)
        view = other.new_page()
        view.goto("/?lang=ar" if name == "arabic" else "/")
        assert view.evaluate(COLUMNS) >= 3 and not view.evaluate(SIDEWAYS), name
        view.screenshot(path=str(shots / f"gallery-phone-{name}.png"))
        other.close()
    phone.close()
    desk.close()
