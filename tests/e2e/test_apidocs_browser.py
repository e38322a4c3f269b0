"""/api/docs in a real browser that can reach no host but Kiln: Swagger UI loads from Kiln's own
files, lists every operation of the schema, and runs with no Content-Security-Policy violation."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import CSP_LISTENER as LISTEN
from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def test_api_docs_list_every_operation_offline_with_no_policy_violation(browser, live_server):  # type: ignore[no-untyped-def]
    # The first request builds the schema (about 150 operations now): allow for a loaded machine.
    schema = httpx.get(live_server.url + "/api/openapi.json", timeout=30).json()
    operations = {(method.upper(), path) for path, item in schema["paths"].items() for method in item
                  if method in METHODS}
    assert len(operations) >= 5
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.add_init_script(LISTEN)
    own = urlsplit(live_server.url).netloc
    outside: list[str] = []

    def offline(route):  # type: ignore[no-untyped-def]
        url = route.request.url
        if urlsplit(url).netloc == own or url.startswith("data:"):
            route.continue_()
        else:  # as on a machine with no Internet access
            outside.append(url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if msg.type == "error" else None)
    response = page.goto("/api/docs")
    assert response is not None and response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock", timeout=30_000)
    page.wait_for_load_state("networkidle")
    shown = page.eval_on_selector_all(".opblock-summary", """rows => rows.map(r => [
        r.querySelector('.opblock-summary-method').textContent,
        r.querySelector('.opblock-summary-path').dataset.path])""")
    assert {tuple(row) for row in shown} == operations  # an operation under two tags shows twice
    assert page.locator(".opblock-summary-path", has_text="/api/v1/media").count() >= 2
    page.locator(".opblock-summary").first.click()  # an operation opens with its parameters
    page.wait_for_selector(".opblock-body", timeout=10_000)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__csp") == [] and outside == [] and console == [], (
        page.evaluate("window.__csp"), outside, console)
