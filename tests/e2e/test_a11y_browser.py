"""Accessibility: axe-core (tests/e2e/package.json, installed by scripts/test.sh) run in Chromium over
every page type, logged out and logged in, on a desktop and a 390 px phone, in English and in Arabic
(right to left), in the light and the dark theme: no serious or critical violation of WCAG 2.2 A/AA or
axe's best practices."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from tests.e2e.people import api_user, photo, upload, wait_processed  # noqa: E402
from tests.e2e.test_narrow_browser import make_admin  # noqa: E402

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
OWNER = "ada"
SERIOUS = ("serious", "critical")
# The rules axe reports for WCAG 2.0-2.2 A and AA, plus its best practices (landmarks, headings, regions).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
RUN = """async tags => {
    const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
    return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.slice(0, 3).map(
            n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').split('\\n')[1])}));
}"""


def check(page, path: str, found: list[str], label: str) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(path)
    assert response is not None
    page.wait_for_load_state("load")
    page.add_script_tag(path=str(AXE))
    for violation in page.evaluate(RUN, TAGS):
        if violation["impact"] in SERIOUS:
            found.append(f"{label} {path} [{violation['impact']}] {violation['id']}: {violation['help']}"
                         + "".join(f"\n      {t}" for t in violation["targets"]))


@pytest.fixture(scope="module")
def site(browser, live_server, samples, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One person with one published item of every kind (tagged), an admin, and their pages."""
    assert AXE.exists(), f"axe-core is missing: run `npm ci --prefix {AXE.parents[2]}` (scripts/test.sh does)"
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    api = api_user(page, live_server, OWNER)
    make_admin(live_server, OWNER)
    folder = tmp_path_factory.mktemp("a11y")
    files = [photo(folder, "harbour.jpg", (40, 90, 140), size=(900, 600)), samples("video")["landscape_mp4"],
             samples("audio")["mp3"], samples("pdf")["one_page"], samples("text")["utf8"],
             samples("model3d")["stl"]]
    items = [upload(api, path, title=f"Item {n}", tags="harbour, evening", description="Seen *from* the pier.")
             for n, path in enumerate(files)]
    wait_processed(api, [item["id"] for item in items], limit=240)
    state = folder / "owner.json"
    context.storage_state(path=str(state))
    context.close()
    media = [f"/u/{OWNER}/m/{item['id']}" for item in items]
    public = ["/", f"/u/{OWNER}", *media, "/tags", "/tag/harbour", "/api/docs", "/no/such/page"]
    anonymous = [*public, "/auth/login", "/auth/register", "/auth/forgot", "/auth/reset?token=not-a-token",
                 "/auth/verify?token=not-a-token"]
    first = items[0]["id"]
    owner = [*public, "/upload", f"/m/{first}/edit", f"/m/{first}/delete", "/account", "/panel",
             "/admin/processing"]
    return {"state": state, "anonymous": anonymous, "owner": owner}


VIEWS = [
    pytest.param("en", {"width": 1280, "height": 900}, "light", id="en-desktop"),
    pytest.param("en", {"width": 390, "height": 844}, "dark", id="en-phone-dark"),
    pytest.param("ar", {"width": 1280, "height": 900}, "dark", id="ar-desktop-dark"),
    pytest.param("ar", {"width": 390, "height": 844}, "light", id="ar-phone"),
]


@pytest.mark.parametrize(("language", "viewport", "scheme"), VIEWS)
def test_every_page_type_has_no_serious_violations(browser, live_server, site, language: str,
                                                   viewport: dict[str, int], scheme: str) -> None:  # type: ignore[no-untyped-def]
    found: list[str] = []
    for who in ("anonymous", "owner"):
        options: dict[str, Any] = {
            "base_url": live_server.url, "viewport": viewport, "color_scheme": scheme,
            "extra_http_headers": {"Accept-Language": language}, "bypass_csp": True}  # axe is injected
        if who == "owner":
            options["storage_state"] = str(site["state"])
        context = browser.new_context(**options)
        page = context.new_page()
        for path in site[who]:
            check(page, path, found, who)
        if language == "ar":  # the page really is the Arabic, mirrored one
            assert page.evaluate("document.documentElement.dir") == "rtl"
        context.close()
    if found and os.environ.get("KILN_A11Y_REPORT"):
        Path(os.environ["KILN_A11Y_REPORT"]).write_text("\n".join(found))
    assert not found, f"{len(found)} serious or critical accessibility violations:\n" + "\n".join(found)
