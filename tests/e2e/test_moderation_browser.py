"""Reports and the moderation queue in a real browser, on a phone, against `kiln serve`: a person
reports a photo and a comment with the no-JavaScript forms; a moderator removes the photo and bans its
owner for a day from the case page; the owner is told why on login and cannot post; the photo's page,
files, feed entry and API answer 404 for everyone but admins; the reporter is told the outcome."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM
from tests.e2e.people import api_user, photo, upload, wait_processed
from tests.e2e.test_kinds_browser import PASSWORD, sign_up
from tests.e2e.test_narrow_browser import WIDEST, make_admin

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Browser, expect  # noqa: E402

PHONE = {"width": 390, "height": 844}


def test_report_remove_and_ban_end_to_end(browser: Browser, live_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    def phone():  # type: ignore[no-untyped-def]
        return browser.new_context(viewport=PHONE, base_url=live_server.url).new_page()

    owner_page, reporter, moderator = phone(), phone(), phone()
    owner_api = api_user(owner_page, live_server, "anna")
    item = upload(owner_api, photo(tmp_path, "harbour.jpg", (30, 90, 160)), title="Harbour at dusk")
    [item] = wait_processed(owner_api, [item["id"]])
    files = [r["url"] for r in item["renditions"].values()]
    comment = owner_api.post(f"/api/v1/media/{item['id']}/comments", json={"body": "Cheap watches here"})
    assert comment.status_code == 201, comment.text
    media_page = f"/u/anna/m/{item['id']}"
    assert httpx.get(live_server.url + media_page).status_code == 200

    # The reporter reports the photo, then the comment, with the forms (no JavaScript needed).
    sign_up(reporter, live_server, "bruno")
    reporter.goto(media_page)
    reporter.locator("article.media > p.meta a.report-link").click()
    expect(reporter.get_by_role("heading", name="Report this media item")).to_be_visible()
    reporter.get_by_label("Illegal content").check()
    reporter.fill("textarea[name=text]", "This photo is not theirs to share")
    reporter.get_by_role("button", name="Send the report").click()
    expect(reporter.locator(".notice.success")).to_contain_text("the moderators will look at your report")
    reporter.goto(media_page)
    reporter.locator("article.comment a.report-link").click()
    reporter.get_by_label("Spam").check()
    reporter.get_by_role("button", name="Send the report").click()
    expect(reporter.locator("li.report-row")).to_have_count(2)

    # The moderator decides on the photo's case: remove it and ban its owner for a day.
    sign_up(moderator, live_server, "mira")
    make_admin(live_server, "mira")
    moderator.goto("/admin/moderation")
    assert moderator.evaluate(WIDEST) == [], "the queue scrolls sideways on a phone"
    moderator.get_by_role("link", name=re.compile("Harbour at dusk")).click()
    expect(moderator.locator("li.case", has_text="This photo is not theirs to share")).to_be_visible()
    assert moderator.evaluate(WIDEST) == [], "the case page scrolls sideways on a phone"
    moderator.get_by_label("Remove the content").check()
    moderator.get_by_label("Ban the owner").check()
    moderator.fill("input[name=days]", "1")
    moderator.fill("textarea[name=reason]", "Not allowed here")
    moderator.get_by_role("button", name="Apply").click()
    expect(moderator.locator(".notice.success")).to_contain_text("the case is resolved")

    # Gone for everyone but admins: page, files, feed entry, API.
    anonymous = httpx.Client(base_url=live_server.url, timeout=30)
    assert anonymous.get(media_page).status_code == 404
    assert anonymous.get(f"/api/v1/media/{item['id']}").status_code == 404
    assert all(anonymous.get(url).status_code == 404 for url in files), files
    assert f"/m/{item['id']}" not in anonymous.get("/feeds/atom").text
    moderator.goto(media_page)
    expect(moderator.locator(".notice.removed")).to_contain_text("Not allowed here")

    # The owner is banned: told why and until when on login; her token cannot post.
    owner_page.context.clear_cookies()
    owner_page.goto("/auth/login")
    owner_page.fill("input[name=username]", "anna")
    owner_page.fill("input[name=password]", PASSWORD)
    owner_page.get_by_role("button", name="Log in").click()
    expect(owner_page.locator("main")).to_contain_text("Not allowed here")
    refused = owner_api.post(f"/api/v1/media/{item['id']}/comments", json={"body": "Hello?"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "banned"

    # The reporter is told the outcome.
    reporter.goto("/notifications")
    expect(reporter.locator("main")).to_contain_text("the content was removed")
