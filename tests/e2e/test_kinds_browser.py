"""One file of every kind, uploaded in a real browser to `kiln serve`, each ends with a useful
thumbnail and a working page: the phone video plays portrait and seeks, the audio player has its
waveform, the PDF shows its pages, the .nfo shows its box art as text, the 3D models show a
picture and a viewer, the animated GIF stays animated. And the strict Content-Security-Policy breaks
nothing: every page visited here (and the main pages) carries it and runs its scripts, viewers and
players with zero policy violations."""

from __future__ import annotations

import os
import time

import pytest

from tests.e2e.conftest import CSP_LISTENER as LISTEN
from tests.e2e.conftest import HAVE_CHROMIUM, IMAGE_LOADED, NO_CHROMIUM, own_tab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

PASSWORD = "correct horse battery"
SHOTS = os.environ.get("KILN_SCREENSHOTS", "/tmp")
# (kind, sample name) for every case the issue lists, plus audio with cover art.
CASES = [
    ("video", "portrait_phone_mov"), ("image", "heic"), ("image", "gif"), ("image", "dng"),
    ("pdf", "multipage"), ("text", "scene"), ("model3d", "stl"), ("model3d", "glb"),
    ("audio", "m4a_cover"),
]


def sign_up(page: Page, server, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/auth/register")
    page.fill("input[name=username]", username)
    page.fill("input[name=email]", f"{username}@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.goto(server.mail_link("/auth/verify", f"{username}@example.com"))


def wait_until_settled(page: Page, user: str, count: int, limit: float = 240.0) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + limit
    while True:
        items = [item for state in ("queued", "processing", "processed", "failed")
                 for item in page.request.get(f"/api/v1/media?user={user}&state={state}&limit=50").json()["items"]]
        if len(items) >= count and all(i["state"] in ("processed", "failed") for i in items):
            return items
        states = [(i["title"], i["state"]) for i in items]
        assert time.monotonic() < deadline, f"not settled after {limit:.0f} s: {states}"
        time.sleep(1)


def loaded(locator) -> bool:  # type: ignore[no-untyped-def]
    return bool(locator.evaluate(IMAGE_LOADED))


def test_one_file_of_each_kind_publishes_with_a_thumbnail_and_a_working_page(browser, live_server, samples):  # type: ignore[no-untyped-def]
    files = {(kind, name): samples(kind)[name] for kind, name in CASES}
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.add_init_script(LISTEN)  # every page keeps the policy violations it meets in window.__csp
    page = context.new_page()
    console: list[str] = []
    context.on("console", lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None)
    violations: list[str] = []

    def policed(tab: Page, response, path: str) -> None:  # type: ignore[no-untyped-def]
        assert response is not None and response.status == 200, path
        assert "default-src 'self'" in (response.headers.get("content-security-policy") or ""), path
        violations.extend(f"{path}: {v}" for v in tab.evaluate("window.__csp"))

    sign_up(page, live_server, "kim")
    page.goto("/upload")
    page.set_input_files("input[name=file]", [str(p) for p in files.values()])
    page.get_by_role("button", name="Upload").click()

    items = wait_until_settled(page, "kim", len(files))
    by_name = {}
    for item in items:
        match = next(key for key, path in files.items() if item["title"] == path.stem.replace("_", " ")
                     or item["title"] == path.stem)
        by_name[match] = item
    failed = [(key, i.get("error")) for key, i in by_name.items() if i["state"] != "processed"]
    assert not failed, failed
    for (kind, name), item in by_name.items():
        assert item["kind"] == kind, (name, item["kind"])

    page.goto("/u/kim")
    thumbs = page.locator("ul.grid img.picture")
    expect(thumbs).to_have_count(len(files))
    for i in range(len(files)):
        thumbs.nth(i).scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbs.nth(i).element_handle())

    page.screenshot(path=f"{SHOTS}/kinds-gallery.png", full_page=True)

    def open_page(key: tuple[str, str], shot: bool = True, tab=page) -> None:  # type: ignore[no-untyped-def]
        path = by_name[key]["url"].replace(live_server.url, "")
        policed(tab, tab.goto(path), path)
        expect(tab.locator("article.media h1")).to_be_visible()
        if shot:
            tab.screenshot(path=f"{SHOTS}/kinds-{key[0]}-{key[1]}.png", full_page=True)

    # The phone video: portrait, plays, seeks (Range requests on /media).
    open_page(("video", "portrait_phone_mov"))
    video = page.locator("video.video-player")
    page.wait_for_function("v => v.readyState >= 1", arg=video.element_handle(), timeout=30_000)
    width, height = video.evaluate("v => [v.videoWidth, v.videoHeight]")
    assert height > width, (width, height)
    video.evaluate("v => { v.muted = true; v.currentTime = v.duration / 2; }")
    page.wait_for_function("v => !v.seeking && v.currentTime > 0", arg=video.element_handle(), timeout=30_000)
    violations.extend(f"video: {v}" for v in page.evaluate("window.__csp"))  # the player, once seeking

    for key in [("image", "heic"), ("image", "dng")]:
        open_page(key)
        assert loaded(page.locator("figure.display-image img"))

    open_page(("image", "gif"))  # animated: a WebP animation is offered to browsers that allow motion
    assert page.locator("figure.display-image picture source").get_attribute("type") == "image/webp"
    assert page.locator("figure.display-image img").evaluate("img => img.currentSrc").endswith(".webp")

    open_page(("pdf", "multipage"))
    pages = page.locator("ol.pdf-pages img")
    expect(pages).to_have_count(3)
    assert loaded(pages.first)

    open_page(("text", "scene"))
    art = page.locator("pre.text-art")
    expect(art).to_be_visible()
    assert any(ch in art.inner_text() for ch in "═║╔▀▄█░▒▓"), "box drawing shown as text"

    for key in [("model3d", "stl"), ("model3d", "glb")]:
        # The picture is taken once the model is drawn: a full-page shot of a page still loading its
        # WebGL scene waits on software rendering, which a loaded two-core machine may not finish in 30 s.
        with own_tab(context, LISTEN, base_url=live_server.url, viewport={"width": 1280, "height": 900}) as tab:
            open_page(key, shot=False, tab=tab)
            figure = tab.locator("figure.display-model3d")
            assert figure.get_attribute("data-model")
            tab.wait_for_function(
                "() => { const v = document.querySelector('model-viewer'); return v && v.loaded; }", timeout=60_000)
            tab.screenshot(path=f"{SHOTS}/kinds-{key[0]}-{key[1]}.png", timeout=90_000)
            violations.extend(f"{key}: {v}" for v in tab.evaluate("window.__csp"))  # the viewer's WebAssembly

    open_page(("audio", "m4a_cover"))
    audio = page.locator("audio.audio-element")
    page.wait_for_function("a => a.readyState >= 1 && a.duration > 1", arg=audio.element_handle(), timeout=30_000)
    wave = page.locator(".audio-wave")
    box = wave.bounding_box()
    assert box
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    page.wait_for_function("a => a.currentTime > 0.5", arg=audio.element_handle(), timeout=10_000)
    violations.extend(f"audio: {v}" for v in page.evaluate("window.__csp"))  # the player, once playing

    for path in ("/", "/u/kim", "/auth/login", "/auth/register", "/account", "/upload", "/auth/forgot"):
        response = page.goto(path)
        page.wait_for_load_state("networkidle")
        policed(page, response, path)
    context.close()
    assert violations == [] and console == [], (violations, console)
