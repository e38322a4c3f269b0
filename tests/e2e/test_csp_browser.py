"""The strict Content-Security-Policy breaks nothing: in a real browser, the main pages and the page of
one item of every kind run their scripts, viewers and players with zero policy violations."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import CSP_LISTENER as LISTEN
from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM, own_tab
from tests.e2e.test_kinds_browser import sign_up, wait_until_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

# One small, quick-to-process sample of each kind.
CASES = [("image", "gif"), ("video", "webm"), ("audio", "m4a_cover"), ("pdf", "one_page"), ("text", "scene"),
         ("model3d", "glb")]


def test_pages_and_every_kind_run_under_the_policy_with_no_violation(browser, live_server, samples):  # type: ignore[no-untyped-def]
    files = [samples(kind)[name] for kind, name in CASES]
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.add_init_script(LISTEN)
    page = context.new_page()
    console: list[str] = []
    context.on("console", lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None)
    violations: list[str] = []

    def visit(path: str, tab=page) -> None:  # type: ignore[no-untyped-def]
        response = tab.goto(path)
        assert response is not None and response.status == 200, path
        assert "default-src 'self'" in (response.headers.get("content-security-policy") or ""), path
        tab.wait_for_load_state("networkidle")
        violations.extend(f"{path}: {v}" for v in tab.evaluate("window.__csp"))

    sign_up(page, live_server, "cass")
    page.goto("/upload")
    page.set_input_files("input[name=file]", [str(p) for p in files])
    page.get_by_role("button", name="Upload").click()  # upload.js sends the files: it must run
    items = wait_until_settled(page, "cass", len(files))
    assert sorted(i["kind"] for i in items) == sorted(kind for kind, _ in CASES)

    for path in ("/", "/u/cass", "/auth/login", "/auth/register", "/account", "/upload", "/auth/forgot"):
        visit(path)
    for item in items:
        if item["kind"] == "model3d":  # the viewer module loads, compiles its WebAssembly and draws
            with own_tab(context, LISTEN, base_url=live_server.url, viewport={"width": 1280, "height": 900}) as tab:
                visit(item["url"].replace(live_server.url, ""), tab)
                tab.wait_for_function("customElements.get('model-viewer') !== undefined", timeout=30_000)
                violations.extend(tab.evaluate("window.__csp"))
            continue
        visit(item["url"].replace(live_server.url, ""))
        if item["kind"] in ("video", "audio"):
            player = page.locator("video, audio").first
            page.wait_for_function("m => m.readyState >= 1", arg=player.element_handle(), timeout=30_000)
            violations.extend(page.evaluate("window.__csp"))
    assert violations == [] and console == [], (violations, console)
