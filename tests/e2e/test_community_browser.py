"""Issue 16's "Done means", end to end in a real browser against `kiln serve`: two new people, anna and
boris, sign up and confirm through the pages and the mails. anna chooses her mail (favourites off,
comments at once), makes a private collection, uploads three photos straight into it and invites boris;
boris adds a photo of his, comments, anna replies, boris favourites and follows her. Each one's bell
counts up without a reload (the page's own poll, its 30 s interval jumped with Playwright's clock), the
notifications pages say the right sentences, and the captured mail holds what each chose, every mail
with one-click unsubscribe headers. A share link shows the private collection to a logged-out visitor
until anna revokes it (then the page and a private file it showed answer 404); made public, the
collection's Atom feed parses cleanly and lists its public items in the collection's order."""

from __future__ import annotations

import re
import time
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message

import feedparser
import pytest

from tests.e2e.conftest import HAVE_CHROMIUM, IMAGE_LOADED, NO_CHROMIUM

pytestmark = pytest.mark.browser

if not HAVE_CHROMIUM:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.e2e.people import photo  # noqa: E402
from tests.e2e.test_kinds_browser import sign_up  # noqa: E402

POLL = 30_000  # static/bell.js asks for the count this often (ms)


def bell_counts(page: Page, n: int) -> None:
    """The bell on the page already open says ``n`` after one poll, with no reload: the clock jumps
    one interval (firing bell.js's timer at once) and the page is still the same document."""
    page.evaluate("window.__same_page = true")
    page.clock.fast_forward(POLL + 1000)
    expect(page.locator("#kiln-bell .bell-n")).to_have_text(str(n))
    expect(page.locator("#kiln-bell .bell-count")).to_be_visible()
    expect(page.locator("#kiln-bell-news")).to_contain_text(f"You have {n} unread notification")
    assert page.evaluate("window.__same_page === true")


def sentences(page: Page) -> list[str]:
    page.locator("#kiln-bell").click()
    expect(page).to_have_url(re.compile(r"/notifications$"))
    return [" ".join(t.split()) for t in page.locator("ul.notifications .notification-text p:first-child")
            .all_inner_texts()]


def upload_into(page: Page, cid: int | None, files: list, visibility: str = "public") -> list[str]:  # type: ignore[type-arg]
    """Upload ``files`` from the upload page (into collection ``cid``); the links to their pages."""
    page.goto(f"/upload?collection={cid}" if cid else "/upload")
    if cid:
        assert page.locator("select[name=collection_id]").input_value() == str(cid)  # chosen already
    page.locator("select[name=visibility]").select_option(visibility)
    page.set_input_files("input[name=file]", [str(f) for f in files])
    page.get_by_role("button", name="Upload").click()
    done = page.get_by_role("link", name="Published — view it")
    expect(done).to_have_count(len(files), timeout=90_000)
    return [str(done.nth(i).get_attribute("href")) for i in range(len(files))]


def mails(server, to: str) -> list[Message]:  # type: ignore[no-untyped-def]
    """The notification mails to ``to`` (not the address confirmation), oldest first."""
    found = [message_from_bytes(p.read_bytes()) for p in sorted((server.data / "mail").glob("*.eml"))]
    return [m for m in found if m["To"] == to and "/auth/verify" not in body(m)]


def body(m: Message) -> str:
    return m.get_payload(decode=True).decode()  # type: ignore[union-attr]


def subject(m: Message) -> str:
    return str(make_header(decode_header(m["Subject"])))


def wait_for_mail(server, to: str, words: str, limit: float = 30.0) -> Message:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while True:
        found = [m for m in mails(server, to) if words in subject(m) + body(m)]
        if found:
            return found[-1]
        got = [subject(m) for m in mails(server, to)]
        assert time.monotonic() < deadline, f"no mail to {to} saying {words!r}: {got}"
        time.sleep(0.2)


def grid(page: Page) -> list[tuple[str, str]]:
    """(title, link) of each item on a collection page, in its order; every picture has loaded."""
    cards = page.locator("ol.collection-grid > li")
    for i in range(cards.count()):
        assert cards.nth(i).locator("img.picture").evaluate(IMAGE_LOADED), cards.nth(i).inner_text()
    return [(cards.nth(i).locator(".caption").inner_text(), str(cards.nth(i).locator("a").first.get_attribute("href")))
            for i in range(cards.count())]


def test_two_new_people_share_a_collection_comment_favourite_follow_and_are_told(browser: Browser, live_server,  # type: ignore[no-untyped-def]
                                                                               tmp_path) -> None:
    server = live_server
    a_context, b_context = (browser.new_context(base_url=server.url) for _ in range(2))
    a, b = a_context.new_page(), b_context.new_page()
    sign_up(a, server, "anna")
    sign_up(b, server, "boris")
    for page in (a, b):
        page.clock.install()  # time runs as usual, but the bell's interval can be jumped

    # anna's mail choices, before anything happens: no mail about favourites, comments at once.
    a.goto("/account")
    a.get_by_label("Mail about favourites of your media").select_option("off")
    a.get_by_label("Mail about comments on your media").select_option("immediate")
    a.get_by_role("button", name="Save notification settings").click()
    expect(a.locator(".notice.success")).to_contain_text("Notification mail settings saved.")

    # 1. A private collection, three photos uploaded straight into it (one of them private), boris invited.
    a.goto("/collections/new")
    a.get_by_label("Title").fill("Seaside")
    a.get_by_label("Description (Markdown)").fill("Days by the *sea*.")
    a.get_by_label("Who can see it").select_option("private")
    a.get_by_role("button", name="Make the collection").click()
    expect(a).to_have_url(re.compile(r"/c/\d+$"))
    cid = int(a.url.rsplit("/", 1)[1])
    upload_into(a, cid, [photo(tmp_path, "Harbour.jpg", (200, 80, 20), (480, 300)),
                         photo(tmp_path, "Pier.jpg", (20, 120, 90), (480, 300))])
    upload_into(a, cid, [photo(tmp_path, "Diary.jpg", (20, 60, 200), (480, 300))], visibility="private")
    a.goto(f"/c/{cid}")
    owners_view = grid(a)
    assert sorted(title for title, _link in owners_view) == ["Diary", "Harbour", "Pier"]
    harbour = next(link for title, link in owners_view if title == "Harbour")

    b.goto("/")  # boris's page is open while anna invites him
    a.goto(f"/c/{cid}/edit")
    a.locator("#collaborators").get_by_label("Username").fill("boris")
    a.get_by_role("button", name="Invite").click()
    expect(a.locator(".notice.success")).to_contain_text("boris can now add their media to this collection.")

    # 2. boris is told, follows the notification to the collection and adds a photo of his own.
    bell_counts(b, 1)
    said = sentences(b)
    assert said == ["Unread: anna invited you to add your media to the collection Seaside"], said
    b.locator("ul.notifications").get_by_role("link", name="Open").click()
    expect(b).to_have_url(server.url + f"/c/{cid}")
    assert sorted(title for title, _link in grid(b)) == ["Harbour", "Pier"]  # anna's private item is hers
    boat_page = upload_into(b, None, [photo(tmp_path, "Boat.jpg", (120, 20, 120), (480, 300))])[0]
    b.goto(boat_page)
    b.locator("details.add-to-collection summary").click()
    b.locator("#add-to-collection select[name=collection_id]").select_option(label="Seaside (anna)")
    b.get_by_label("Note (optional)").fill("Mine, from the ferry")
    b.get_by_role("button", name="Add", exact=True).click()
    expect(b.locator(".notice.success")).to_contain_text("Added to “Seaside”.")

    # boris comments on anna's photo while her page is open; she is told, opens it and replies.
    a.goto(harbour)
    b.goto(harbour)
    b.get_by_label("Your comment").fill("What a **light**!")
    b.get_by_role("button", name="Post comment").click()
    expect(b.locator("article.comment .comment-text strong")).to_have_text("light")
    bell_counts(a, 1)
    assert sentences(a) == ["Unread: boris commented on Harbour"]
    a.locator("ul.notifications").get_by_role("link", name="Open").click()
    expect(a).to_have_url(re.compile(r"#comment-\d+$"))
    a.locator("details.reply summary").first.click()
    a.get_by_label("Your reply").fill("Thank you, it was early morning.")
    a.get_by_role("button", name="Post reply").click()
    expect(a.locator("ol.comment-replies .comment-text")).to_have_text("Thank you, it was early morning.")

    # boris hears of the reply on the page he has open (the invitation he opened is read), then
    # favourites the photo and follows anna.
    bell_counts(b, 1)
    b.get_by_role("button", name="Favourite").click()
    expect(b.get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "true")
    b.goto("/u/anna")
    b.get_by_role("button", name="Follow").click()
    expect(b.get_by_role("button", name="Unfollow")).to_be_visible()
    b.goto("/timeline")  # anna's public photos, never her private one
    expect(b.locator("main")).to_contain_text("Harbour")
    expect(b.locator("main")).not_to_contain_text("Diary")

    # 3. Each one's notifications, the newest first.
    bell_counts(a, 2)  # the comment she opened is read
    assert sentences(a) == ["Unread: boris started following you", "Unread: boris favourited Harbour",
                            "boris commented on Harbour"]
    assert sentences(b) == ["Unread: anna replied to your comment on Harbour",
                            "anna invited you to add your media to the collection Seaside"]

    # 4. The mail each chose. boris (the defaults): the invitation and the reply at once. anna: the
    # comment at once, the follow in her first daily digest, and nothing about the favourite.
    wait_for_mail(server, "boris@example.com", "anna invited you to add your media to the collection Seaside")
    wait_for_mail(server, "boris@example.com", "anna replied to your comment on Harbour")
    wait_for_mail(server, "anna@example.com", "boris commented on Harbour")
    digest = wait_for_mail(server, "anna@example.com", "boris started following you")
    assert "1 new notification" in subject(digest)
    assert len(mails(server, "boris@example.com")) == 2 and len(mails(server, "anna@example.com")) == 2
    assert not [m for m in mails(server, "anna@example.com") if "favourited" in subject(m) + body(m)]
    for m in mails(server, "anna@example.com") + mails(server, "boris@example.com"):
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", subject(m)
        assert re.fullmatch(rf"<{re.escape(server.url)}/unsubscribe\?token=[\w.-]+>", m["List-Unsubscribe"])

    # 5. A share link shows the private collection, private item included, to a logged-out visitor.
    a.goto(f"/c/{cid}/edit")
    a.locator("#shares").get_by_label("Label (for you)").fill("family")
    a.get_by_role("button", name="Make a share link").click()
    link = a.locator(".notice.success code.token").inner_text().strip()
    visitor_context = browser.new_context(base_url=server.url)
    visitor = visitor_context.new_page()
    assert visitor.goto(link).status == 200  # type: ignore[union-attr]
    expect(visitor.locator("h1")).to_have_text("Seaside")
    seen = grid(visitor)
    assert sorted(title for title, _link in seen) == ["Boat", "Diary", "Harbour", "Pier"]
    diary_file = str(visitor.locator("ol.collection-grid > li", has_text="Diary").locator("img.picture")
                     .get_attribute("src"))
    assert "share=" in diary_file and visitor.request.get(diary_file).status == 200
    a.locator("#shares").get_by_role("button", name="Revoke").click()
    expect(a.locator(".notice.success")).to_contain_text("Link revoked")
    assert visitor.reload().status == 404  # type: ignore[union-attr]
    assert visitor.request.get(diary_file).status == 404

    # 6. Made public, the collection's feed (found from its page) lists its public items in its order.
    a.goto(f"/c/{cid}/edit")
    a.locator("#details").get_by_label("Who can see it").select_option("public")
    a.get_by_role("button", name="Save", exact=True).click()
    expect(a.locator(".notice.success")).to_contain_text("Saved.")
    a.goto(f"/c/{cid}")
    in_order = [title for title, _link in grid(a)]
    assert visitor.goto(f"/c/{cid}").status == 200  # type: ignore[union-attr]
    public = grid(visitor)
    assert [title for title, _link in public] == [t for t in in_order if t != "Diary"]
    feeds = visitor.locator('head link[rel=alternate][type="application/atom+xml"]')
    expect(feeds).to_have_count(1)
    answer = visitor.request.get(str(feeds.get_attribute("href")))
    assert answer.status == 200 and answer.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(answer.body())
    assert not feed.bozo, feed.get("bozo_exception")
    assert [e.title for e in feed.entries] == [title for title, _link in public]
    assert [e.link for e in feed.entries] == [server.url + href for _title, href in public]
    assert all(e.id and e.updated for e in feed.entries)
    for context in (a_context, b_context, visitor_context):
        context.close()
