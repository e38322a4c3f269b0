"""static/i18n.js and static/sizes.js in Chromium say numbers and sizes exactly as the server does, in
every language Kiln speaks: the language's decimal symbol, Latin digits (Arabic too, where Chromium's
own default would be Arabic-Indic digits). No server: the two scripts are served from a routed page."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest

from kiln import i18n
from kiln.i18n import format_number
from kiln.units import format_size
from kiln.web.templating import STATIC_DIR
from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Browser, Route  # noqa: E402

ORIGIN = "http://kiln.test"
SIZES = [0, 700, 1024, 1280, 1536, 102_400, 1_048_575, 12_345_678, 2 * 1024**3, 5000 * 1024**4]
NUMBERS = [0, 7, 1000, 1234, 1_234_567, 1.5, 1234.5, 3.125]


@contextlib.contextmanager
def speaking(code: str) -> Iterator[None]:
    token = i18n.begin(code)  # no catalogue is needed for numbers: Babel's CLDR data
    try:
        yield
    finally:
        i18n.end(token)


@pytest.mark.parametrize("lang", ["en", "de", "es", "fr", "ar"])
def test_chromium_writes_numbers_and_sizes_as_the_server_does(browser: Browser, lang: str) -> None:
    page_html = (f'<!doctype html><html lang="{lang}" dir="{i18n.direction(lang)}"><head>'
                 '<script src="/static/i18n.js"></script><script src="/static/sizes.js"></script>'
                 "</head><body></body></html>")

    def answer(route: Route) -> None:
        path = route.request.url.removeprefix(ORIGIN).split("?")[0]
        if path.startswith("/static/"):
            route.fulfill(body=(STATIC_DIR / path.removeprefix("/static/")).read_bytes(),
                          content_type="text/javascript")
        else:
            route.fulfill(body=page_html, content_type="text/html")

    context = browser.new_context()
    try:
        page = context.new_page()
        page.route(f"{ORIGIN}/**", answer)
        page.goto(f"{ORIGIN}/")
        said = page.evaluate(f"""[{json.dumps(SIZES)}.map(function (n) {{ return Kiln.formatSize(n); }}),
                                  {json.dumps(NUMBERS)}.map(formatNumber),
                                  gettext('Version %(number)s', {{number: 1234}})]""")
    finally:
        context.close()
    with speaking(lang):
        assert said == [[format_size(n) for n in SIZES], [format_number(n) for n in NUMBERS],
                        f"Version {format_number(1234)}"]
