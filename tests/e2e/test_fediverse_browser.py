"""What people see of federation, in Chromium: the profile's fediverse handle selects whole at one
click (to copy); beside a real remote reply (a peer on 127.0.0.1, signing with apsig) a logged-in
person blocks its author in one step, without JavaScript, on a 390 px phone, and is brought back to
the reply with a message; the blocks page and the deliveries page pass axe (tests/e2e/test_a11y_browser.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, NO_CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.e2e.federating import PASSWORD, account, federating_kiln, kiln, published_photo, wait_for  # noqa: E402
from tests.e2e.test_a11y_browser import AXE, check  # noqa: E402
from tests.federation import peer as peer_kit  # noqa: E402

PHONE = {"width": 390, "height": 844}
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


@pytest.fixture(scope="module")
def site(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A federating Kiln with ada (an admin) and a photo that rita, on another server, replied to."""
    folder = tmp_path_factory.mktemp("fediverse")
    with federating_kiln(folder / "kiln") as server, peer_kit.serve() as rita:
        api = account(server, "ada")
        kiln(server, "makeadmin", "ada")
        item = published_photo(api, folder, "Harbour at dusk")
        note = f"{server.url}/u/ada/m/{item['id']}"
        reply = {"id": f"{rita.base}/notes/1/activity", "type": "Create", "actor": rita.actor_id,
                 "object": {"id": f"{rita.base}/notes/1", "type": "Note", "attributedTo": rita.actor_id,
                            "inReplyTo": note, "content": "<p>Lovely light!</p>", "to": [PUBLIC]}}
        body, headers = rita.signed(f"{server.url}/inbox", reply)
        answer = httpx.post(f"{server.url}/inbox", content=body, headers=headers, timeout=30)
        assert answer.status_code == 202, answer.text
        wait_for(lambda: api.get(f"/api/v1/media/{item['id']}").json()["comments"] == 1, "rita's reply kept", 30,
                 server.log)
        yield {"server": server, "item": item, "page": f"/u/ada/m/{item['id']}", "rita": rita}


def logged_in(browser, server, **options: Any):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=server.url, **options)
    page = context.new_page()
    page.goto("/auth/login")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form[action='/auth/login'] button[type=submit]").click()  # in any language
    expect(page.locator("form[action='/auth/logout']")).to_have_count(1)
    return page


def test_the_handle_selects_whole_at_one_click(browser, site):
    server = site["server"]
    page = browser.new_context(base_url=server.url, viewport=PHONE).new_page()
    page.goto("/u/ada")
    handle = page.locator(".fediverse-handle .handle-copy")
    expected = f"@ada@{server.url.split('//')[1]}"
    expect(handle).to_have_text(expected)
    expect(page.locator(".fediverse-handle")).to_contain_text("Follow from Mastodon and other servers")
    handle.click()
    assert page.evaluate("window.getSelection().toString()") == expected
    box = handle.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]  # it wraps rather than overflows
    page.context.close()


def test_a_phone_without_javascript_blocks_a_remote_replys_author_in_one_step(browser, site):
    server = site["server"]
    anonymous = browser.new_context(base_url=server.url, viewport=PHONE, java_script_enabled=False).new_page()
    anonymous.goto(site["page"])
    expect(anonymous.locator("article.comment")).to_contain_text("Lovely light!")
    expect(anonymous.locator("form.remote-block")).to_have_count(0)  # for people logged in only
    anonymous.context.close()

    page = logged_in(browser, server, viewport=PHONE, java_script_enabled=False)
    page.goto(site["page"])
    button = page.locator("article.comment form.remote-block button")
    expect(button).to_have_text("Block @rita@127.0.0.1")
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    button.click()
    expect(page.locator("[role=status]").filter(has_text="You blocked @rita@127.0.0.1.")).to_be_visible()
    assert page.url.split("#")[0].endswith(site["page"]) and page.url.endswith(f"#comment-{_comment_id(page)}")
    page.goto("/account/blocks")
    expect(page.locator("#remote")).to_contain_text("@rita@127.0.0.1")
    page.context.close()


def _comment_id(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("article.comment").first.get_attribute("id").removeprefix("comment-")  # type: ignore[union-attr]


@pytest.mark.parametrize(("language", "viewport", "scheme"), [("en", {"width": 1280, "height": 900}, "light"),
                                                              ("ar", PHONE, "dark")])
def test_the_federation_pages_have_no_serious_violations(browser, site, language, viewport, scheme):
    assert AXE.exists(), f"axe-core is missing: run `npm ci --prefix {AXE.parents[2]}`"
    server = site["server"]
    page = logged_in(browser, server, viewport=viewport, color_scheme=scheme, bypass_csp=True,
                     extra_http_headers={"Accept-Language": language})
    page.goto("/account/blocks")  # a remote block listed (made here when run alone)
    if "@rita@127.0.0.1" not in (page.locator("#remote ul.people").all_inner_texts() or [""])[0]:
        page.fill("#remote input[name=account]", "@rita@127.0.0.1")
        page.locator("#remote form.form button").click()
    found: list[str] = []
    for path in ("/u/ada", site["page"], "/account/blocks", "/admin/federation"):
        check(page, path, found, "ada", server)
    page.context.close()
    assert not found, json.dumps(found, indent=1)
