"""The people pages and the audit log in a real browser on a 390 px phone, with JavaScript off: an
administrator finds a person, bans them with the form, sees it on the person page and in the audit
log, and no page scrolls sideways, even with the longest username and display name."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.e2e.test_kinds_browser import sign_up  # noqa: E402
from tests.e2e.test_narrow_browser import WIDEST, make_admin  # noqa: E402

WIDTH = 390
TARGET = "t" * 30  # the longest username
DISPLAY_NAME = "D" * 100


def test_an_admin_bans_someone_from_a_phone_without_javascript(browser, live_server):  # type: ignore[no-untyped-def]
    phone = {"viewport": {"width": WIDTH, "height": 844}, "base_url": live_server.url, "java_script_enabled": False}
    target_context = browser.new_context(**phone)
    target = target_context.new_page()
    sign_up(target, live_server, TARGET)
    target.goto("/account")
    target.fill("input[name=display_name]", DISPLAY_NAME)
    target.get_by_role("button", name="Save profile").click()

    context = browser.new_context(**phone)
    page = context.new_page()
    sign_up(page, live_server, "boss")
    make_admin(live_server, "boss")

    too_wide: dict[str, object] = {}

    def check(where: str) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > WIDTH:
            too_wide[where] = (width, page.evaluate(WIDEST))

    page.goto("/admin/users?q=ttt")
    expect(page.locator(f'tr[data-user="{TARGET}"]')).to_be_visible()
    expect(page.locator("tr[data-user=boss]")).to_have_count(0)
    check("/admin/users")
    page.locator(f'tr[data-user="{TARGET}"] a').first.click()
    expect(page.locator("h1")).to_contain_text(TARGET)
    check("the person page")

    ban = page.locator(f'form[action="/admin/users/{TARGET}/ban"]')
    ban.locator("input[name=days]").fill("2")
    ban.locator("textarea[name=reason]").fill("Posting the same link everywhere")
    ban.get_by_role("button", name="Ban").click()
    expect(page.locator(".notice.success")).to_contain_text(f"{TARGET} is banned until")
    expect(page.locator("dd[data-ban=yes]")).to_contain_text("Posting the same link everywhere")
    expect(page.locator(f'form[action="/admin/users/{TARGET}/unban"]')).to_be_visible()
    check("the person page of a banned person")

    page.goto("/admin/audit")
    expect(page.locator("tr[data-entry]").first).to_contain_text("ban")
    expect(page.locator("tr[data-entry]").first).to_contain_text("Posting the same link everywhere")
    check("/admin/audit")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export (JSON lines)").click()
    assert '"action": "ban"' in download.value.path().read_text()

    target.goto("/account")  # the ban ends their session at once: they are sent to log in
    assert "/auth/login" in target.url
    for opened in (context, target_context):
        opened.close()
    assert too_wide == {}, "\n".join(f"{where}: {found}" for where, found in too_wide.items())
