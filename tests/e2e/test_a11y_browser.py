"""Accessibility: axe-core (tests/e2e/package.json, installed by scripts/test.sh) run in Chromium over
every page type, logged out and logged in, on a desktop and a 390 px phone, in English and in Arabic
(right to left), in the light and the dark theme: no serious or critical violation of WCAG 2.2 A/AA or
axe's best practices."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM, own_tab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from tests.e2e.people import api_user, photo, upload, wait_processed  # noqa: E402
from tests.e2e.test_narrow_browser import make_admin  # noqa: E402

CAPTIONS = {"en": "Good evening from the pier", "de": "Guten Abend vom Steg"}
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


def check(page, path: str, found: list[str], label: str, server=None) -> None:  # type: ignore[no-untyped-def]
    try:
        response = page.goto(path)
    except PlaywrightTimeout:
        # A navigation that gets no answer: ask the server on a connection of our own. If it answers at
        # once, the wait was the browser's and the page is asked for again; if it does not, that is a
        # server that hangs, and the test fails with its log. (The one cause seen so far was the browser:
        # leaving a software-drawn 3D scene in the same tab, now checked in a browser of its own.)
        if server is None:
            raise
        try:
            status = httpx.get(server.url + path, timeout=10).status_code
        except httpx.HTTPError as exc:
            raise AssertionError(f"{path} hangs: {exc!r}\n" + server.log.read_text()[-6000:]) from exc
        assert status < 500, f"{path}: {status}\n" + server.log.read_text()[-6000:]
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
    """One person with one published item of every kind (tagged), an admin, and their pages; a friend
    they follow who follows them back, comments and favourites (so notifications and timeline list some)."""
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
    for item in items[1:3]:  # the video and the sound get English and German captions
        for language, words in CAPTIONS.items():
            vtt = f"WEBVTT\n\n00:00.000 --> 00:05.000\n{words}\n".encode()
            resp = api.post(f"/api/v1/media/{item['id']}/captions", files={"file": (f"{language}.vtt", vtt)},
                            data={"language": language})
            assert resp.status_code == 201, resp.text
    first_item = f"/api/v1/media/{items[0]['id']}"  # a thread with a reply, and a favourite
    top = api.post(f"{first_item}/comments", json={"body": "Lovely *light*, see [the pier](https://example.org)"})
    assert top.status_code == 201, top.text
    assert api.post(f"{first_item}/comments", json={"body": "Thanks!", "parent_id": top.json()["id"]}).is_success
    assert api.put(f"{first_item}/favourite").is_success
    # A second person who follows, comments and favourites (the owner's notifications page has
    # something to list), and whom the owner follows (their timeline has an item).
    friend_context = browser.new_context(base_url=live_server.url)
    friend = api_user(friend_context.new_page(), live_server, "bo")
    friend_context.close()
    assert friend.put(f"/api/v1/users/{OWNER}/follow").is_success
    assert friend.post(f"{first_item}/comments", json={"body": "Where *is* this?"}).status_code == 201
    assert friend.put(f"{first_item}/favourite").is_success
    assert api.put("/api/v1/users/bo/follow").is_success
    wait_processed(friend, [upload(friend, photo(folder, "boat.jpg", (120, 40, 90), size=(600, 400)))["id"]])
    block_remote_account(live_server, OWNER)
    state = folder / "owner.json"
    context.storage_state(path=str(state))
    context.close()
    media = [f"/u/{OWNER}/m/{item['id']}" for item in items]
    album = api.post("/api/v1/collections", json={"title": "Evening", "description": "From *the* pier."}).json()
    for item in items[:3]:
        api.post(f"/api/v1/collections/{album['id']}/items", json={"media_id": item["id"], "note": "Calm water"})
    public = ["/", f"/u/{OWNER}", *media, "/tags", "/tag/harbour", "/api/docs", "/no/such/page",
              f"/c/{album['id']}", f"/u/{OWNER}/collections"]
    embeds = [f"/m/{item['id']}/embed" for item in items]  # the player other sites frame (kiln.web.unfurl)
    anonymous = [*public, *embeds, "/auth/login", "/auth/register", "/auth/forgot", "/auth/reset?token=not-a-token",
                 "/auth/verify?token=not-a-token"]
    first = items[0]["id"]
    owner = [*public, "/upload", f"/m/{first}/edit", f"/m/{items[1]['id']}/edit", f"/m/{first}/delete",
             "/account", "/panel", "/favourites", f"/m/{first}/favourites",
             f"/m/{first}/comments/{top.json()['id']}/edit",
             "/admin/processing", f"/c/{album['id']}/edit", "/collections/new", "/notifications", "/timeline",
             f"/u/{OWNER}/followers", f"/u/{OWNER}/following", "/account/blocks", "/admin/federation"]
    # Each page is checked in the light and the dark view of its pair (VIEWS), as a visitor and as the
    # owner, except that a visitor's dark view skips the public pages: they are the owner's templates and
    # colours with fewer controls (the owner's dark view checks them; the light view as a visitor).
    return {"state": state, "anonymous": anonymous, "owner": owner, "video": media[1], "audio": media[2],
            "model3d": media[5], "anonymous_dark": [p for p in anonymous if p not in public]}


def block_remote_account(server, username: str) -> None:  # type: ignore[no-untyped-def]
    """An account on another server that ``username`` blocks, for the blocks page to list (written to the
    database: this site does not reach other servers; tests/e2e/test_fediverse_live.py makes one
    through a real reply and the button beside it)."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from kiln.accounts.models import User
    from kiln.federation.models import RemoteActor, RemoteBlock

    engine = create_engine(server.db_url)
    with Session(engine) as session:
        actor = RemoteActor(uri="https://social.example/users/rita", key_id="https://social.example/users/rita#main-key",
                            public_key_pem="", inbox="https://social.example/users/rita/inbox", username="rita",
                            display_name="Rita Remote", profile_url="https://social.example/@rita")
        session.add(actor)
        session.flush()
        user_id = session.scalars(select(User.id).where(User.username == username)).one()
        session.add(RemoteBlock(user_id=user_id, actor_id=actor.id))
        session.commit()
    engine.dispose()


# Four views, in two pairs whose members differ in everything (language and direction, width, colours):
# views 0 and 2, and views 1 and 3. Each page is checked in one pair (by its place in the list), so that
# every page is seen in both languages, at both widths and in both colour schemes, at half the cost of
# checking every page in every view.
VIEWS = [
    pytest.param("en", {"width": 1280, "height": 900}, "light", id="en-desktop"),
    pytest.param("en", {"width": 390, "height": 844}, "dark", id="en-phone-dark"),
    pytest.param("ar", {"width": 390, "height": 844}, "dark", id="ar-phone-dark"),
    pytest.param("ar", {"width": 1280, "height": 900}, "light", id="ar-desktop"),
]
PAIR = {"en-desktop": 0, "ar-phone-dark": 0, "en-phone-dark": 1, "ar-desktop": 1}


@pytest.mark.parametrize(("language", "viewport", "scheme"), VIEWS)
def test_every_page_type_has_no_serious_violations(request, browser, live_server, site, language: str,  # type: ignore[no-untyped-def]
                                                   viewport: dict[str, int], scheme: str) -> None:
    pair = PAIR[request.node.callspec.id]
    found: list[str] = []
    for who in ("anonymous", "owner"):
        options: dict[str, Any] = {
            "base_url": live_server.url, "viewport": viewport, "color_scheme": scheme,
            "extra_http_headers": {"Accept-Language": language}, "bypass_csp": True}  # axe is injected
        if who == "owner":
            options["storage_state"] = str(site["state"])
        context = browser.new_context(**options)
        page = context.new_page()
        for path in site[who][pair::2]:
            if scheme == "dark" and who == "anonymous" and path not in site["anonymous_dark"]:
                continue  # the owner's dark view of it is checked
            if path == site["model3d"]:
                with own_tab(context, **{k: v for k, v in options.items() if k != "storage_state"}) as tab:
                    check(tab, path, found, who, live_server)
            else:
                check(page, path, found, who, live_server)
        if language == "ar":  # the page really is the Arabic, mirrored one
            assert page.evaluate("document.documentElement.dir") == "rtl"
        context.close()
    if found and os.environ.get("KILN_A11Y_REPORT"):
        Path(os.environ["KILN_A11Y_REPORT"]).write_text("\n".join(found))
    assert not found, f"{len(found)} serious or critical accessibility violations:\n" + "\n".join(found)


def test_video_and_audio_offer_english_and_german_captions(browser, live_server, site) -> None:  # type: ignore[no-untyped-def]
    """The player lists both tracks (Chromium's captions menu is built from them); the German one shows
    its words while the video plays; the audio's own menu writes the caption under the player."""
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.goto(site["video"])
    tracks = page.evaluate("Array.from(document.querySelector('video').textTracks).map(t => [t.language, t.label])")
    assert sorted(tracks) == [["de", "Deutsch"], ["en", "English"]]
    shown = page.evaluate("""async () => {
        const video = document.querySelector('video');
        const track = Array.from(video.textTracks).find(t => t.language === 'de');
        track.mode = 'showing';
        video.muted = true;
        await video.play();
        for (let i = 0; i < 100 && !(track.activeCues && track.activeCues.length); i++)
            await new Promise(r => setTimeout(r, 50));
        video.pause();
        return track.activeCues && track.activeCues.length ? track.activeCues[0].text : null;
    }""")
    assert shown == CAPTIONS["de"]

    page.goto(site["audio"])
    page.select_option(".audio-caption-choice", "de")
    page.evaluate("() => { const a = document.querySelector('audio'); a.muted = true; return a.play(); }")
    # Playwright's own polling (a string given to wait_for_function is eval'd, which the CSP forbids).
    expect(page.locator(".audio-caption-text")).to_have_text(CAPTIONS["de"], timeout=15000)
    assert page.get_attribute(".audio-caption-text", "lang") == "de"
    context.close()
