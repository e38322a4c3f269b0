"""Comments: who may post, reply, edit and delete; turning them off; the rate limit; the count on the
item; notifications; the media page's thread (paginated, a fixed number of queries) and the API."""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, update

from kiln.accounts import services as accounts
from kiln.accounts.models import User, UserPrivilege
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.runtime import Runtime
from kiln.social import comments
from kiln.social.models import COMMENT_MAX, NOTIFICATION_TYPES, Comment, Notification
from kiln.web.deps import CSRF_COOKIE, SESSION_COOKIE
from tests.test_caching import counting

NAMES = ("alice", "bob", "carol", "mona", "uma")  # alice owns the item; mona moderates; uma is unverified


@dataclass
class Site:
    rt: Runtime
    client: TestClient
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    media_id: int = 0

    def api(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def page(self, who: str | None) -> dict[str, str]:
        """Headers for a page request (or form post) as ``who``, logged in by cookie, CSRF included."""
        csrf = secrets.token_urlsafe(16)
        if who is None:
            return {"Cookie": f"{CSRF_COOKIE}={csrf}", "X-CSRF-Token": csrf}
        with self.rt.sessions() as session:
            login = accounts.start_session(session, session.get_one(User, self.ids[who]))
            session.commit()
        return {"Cookie": f"{SESSION_COOKIE}={login}; {CSRF_COOKIE}={csrf}", "X-CSRF-Token": csrf}

    def request(self, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
        self.client.cookies.clear()
        return self.client.request(method, path, follow_redirects=False, **kwargs)

    def user(self, session, who: str) -> User:  # type: ignore[no-untyped-def]
        return session.get_one(User, self.ids[who])

    def media(self, session, media_id: int | None = None) -> MediaEntry:  # type: ignore[no-untyped-def]
        return session.get_one(MediaEntry, media_id or self.media_id, populate_existing=True)

    def post(self, who: str, body: str, parent_id: int | None = None, media_id: int | None = None) -> Comment:
        with self.rt.sessions() as session:
            row = comments.post(self.rt, session, self.user(session, who), self.media(session, media_id), body,
                                parent_id)
            session.expunge(row)
            return row

    def upload(self, who: str = "alice", **fields: str) -> int:
        data = io.BytesIO()
        Image.new("RGB", (48, 32), (40, 120, 200)).save(data, "PNG")
        data.seek(0)
        with self.rt.sessions() as session:
            entry = media_service.submit(self.rt, session, self.user(session, who), data, "p.png",
                                         media_service.MediaFields(title="Harbour", **fields))  # type: ignore[arg-type]
            return entry.id

    def notifications(self, who: str) -> list[tuple[str, str | None]]:
        """(type, actor's name) of ``who``'s notifications, oldest first."""
        with self.rt.sessions() as session:
            rows = session.scalars(select(Notification).where(Notification.user_id == self.ids[who])
                                   .order_by(Notification.id))
            return [(n.type, n.actor.username if n.actor else None) for n in rows]


def make_site(rt: Runtime, client: TestClient) -> Site:
    """alice, bob, carol, mona (a moderator) and uma (unverified), with API tokens, and alice's item."""
    out = Site(rt, client)
    with rt.sessions() as session:
        for name in NAMES:
            user = accounts.create_user(session, name, f"{name}@example.com", "correct horse",
                                        verified=name != "uma")
            if name == "mona":
                user.privileges.append(UserPrivilege(name="moderator"))
            session.flush()
            out.ids[name] = user.id
        session.commit()
        for name in NAMES:
            out.tokens[name] = accounts.create_api_token(session, session.get_one(User, out.ids[name]), "t", "write")
        session.commit()
    out.media_id = out.upload()
    return out


@pytest.fixture
def site(rt: Runtime, client: TestClient) -> Site:
    return make_site(rt, client)


# The service ---------------------------------------------------------------------------------------

@pytest.mark.db
def test_comments_and_replies_count_and_notify_once(site: Site) -> None:
    with site.rt.sessions() as session:
        before = site.media(session).updated
    first = site.post("bob", "Lovely *light*")
    reply = site.post("carol", "Agreed", first.id)
    nested = site.post("alice", "Thanks both", reply.id)  # a reply to a reply joins the thread
    assert reply.parent_id == first.id and nested.parent_id == first.id
    own = site.post("alice", "A note from the owner")
    site.post("bob", "Thank you", own.id)  # the owner hears it once, as a reply
    with site.rt.sessions() as session:
        media = site.media(session)
        assert media.comment_count == 5 and media.updated == before  # counted without touching `updated`
    assert site.notifications("alice") == [("comment", "bob"), ("comment", "carol"), ("reply", "bob")]
    assert site.notifications("bob") == [("reply", "carol"), ("reply", "alice")]
    assert site.notifications("carol") == []


@pytest.mark.db
def test_deleting_keeps_a_placeholder_only_while_replies_remain(site: Site) -> None:
    first = site.post("bob", "Top")
    reply = site.post("carol", "Under it")
    lone = site.post("carol", "Alone")
    answer = site.post("alice", "Answer", first.id)
    with site.rt.sessions() as session:
        media = site.media(session)
        comments.delete(session, site.user(session, "bob"), media, session.get_one(Comment, first.id))
        placeholder = session.get_one(Comment, first.id)
        assert placeholder.deleted is not None and placeholder.body == ""
        comments.delete(session, site.user(session, "alice"), site.media(session),
                        session.get_one(Comment, lone.id))  # the item's owner may
        assert session.get(Comment, lone.id) is None
        comments.delete(session, site.user(session, "mona"), site.media(session),
                        session.get_one(Comment, answer.id))  # moderators may
        assert session.get(Comment, first.id) is None  # the last reply took its deleted parent along
        assert site.media(session).comment_count == 1
        with pytest.raises(comments.PermissionDenied):
            comments.delete(session, site.user(session, "bob"), site.media(session),
                            session.get_one(Comment, reply.id))
        with pytest.raises(comments.NotFound):  # a deleted comment cannot be replied to or edited
            comments.get_comment(session, site.media(session), first.id)


@pytest.mark.db
def test_who_may_comment(site: Site) -> None:
    url = f"/api/v1/media/{site.media_id}/comments"
    unverified = site.request("POST", url, headers=site.api("uma"), json={"body": "hi"})
    assert unverified.status_code == 403 and unverified.json()["error"]["code"] == "not_verified"
    with site.rt.sessions() as session:
        bob = site.user(session, "bob")
        bob.privileges = [p for p in bob.privileges if p.name != "commenter"]
        session.commit()
    revoked = site.request("POST", url, headers=site.api("bob"), json={"body": "hi"})
    assert revoked.status_code == 403 and revoked.json()["error"]["code"] == "not_commenter"
    assert site.request("POST", url, json={"body": "hi"}).status_code == 401
    empty = site.request("POST", url, headers=site.api("carol"), json={"body": " \n\x00 "})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_comment"
    too_long = site.request("POST", url, headers=site.api("carol"), json={"body": "x" * (COMMENT_MAX + 1)})
    assert too_long.status_code == 422
    gone = site.request("POST", url, headers=site.api("carol"), json={"body": "hi", "parent_id": 99999})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "no_parent"
    # A private item: it does not exist for others (404), its owner may comment.
    private = site.upload(visibility="private")
    assert site.request("POST", f"/api/v1/media/{private}/comments", headers=site.api("carol"),
                        json={"body": "hi"}).status_code == 404
    assert site.request("GET", f"/api/v1/media/{private}/comments", headers=site.api("carol")).status_code == 404
    assert site.request("POST", f"/api/v1/media/{private}/comments", headers=site.api("alice"),
                        json={"body": "note to self"}).status_code == 201


@pytest.mark.db
def test_comments_turned_off_per_item_and_per_account(site: Site) -> None:
    url = f"/api/v1/media/{site.media_id}/comments"
    patched = site.request("PATCH", f"/api/v1/media/{site.media_id}", headers=site.api("alice"),
                           json={"comments_enabled": False})
    assert patched.status_code == 200 and patched.json()["comments_enabled"] is False
    off = site.request("POST", url, headers=site.api("bob"), json={"body": "hi"})
    assert off.status_code == 403 and off.json()["error"]["code"] == "comments_off"
    page = site.request("GET", f"/u/alice/m/{site.media_id}", headers=site.page("bob")).text
    assert "Comments are turned off for this item." in page and 'name="body"' not in page
    # The edit page's checkbox turns them back on; the owner's account setting still wins.
    resp = site.request("POST", f"/m/{site.media_id}/edit", headers=site.page("alice"),
                        data={"title": "Harbour", "comments_enabled": "on"})
    assert resp.status_code == 303
    assert site.request("POST", url, headers=site.api("bob"), json={"body": "hi"}).status_code == 201
    with site.rt.sessions() as session:
        site.user(session, "alice").comments_enabled = False
        session.commit()
    assert site.request("POST", url, headers=site.api("bob"), json={"body": "hi"}).status_code == 403
    edit_page = site.request("GET", f"/m/{site.media_id}/edit", headers=site.page("alice")).text
    assert 'name="comments_enabled" checked' in edit_page and "for all your media" in edit_page
    # Existing comments stay readable.
    assert len(site.request("GET", url).json()["items"]) == 1


@pytest.mark.db
def test_comments_are_rate_limited_per_person(site: Site) -> None:
    site.rt.settings.security.comments_per_user_per_hour = 3
    url = f"/api/v1/media/{site.media_id}/comments"
    for n in range(3):
        assert site.request("POST", url, headers=site.api("bob"), json={"body": f"#{n}"}).status_code == 201
    paused = site.request("POST", url, headers=site.api("bob"), json={"body": "one more"})
    assert paused.status_code == 429 and paused.json()["error"]["code"] == "too_many_attempts"
    assert int(paused.headers["retry-after"]) > 0
    assert "many comments" in paused.json()["error"]["message"]
    # Others are not held up, and the form keeps what was typed.
    assert site.request("POST", url, headers=site.api("carol"), json={"body": "mine"}).status_code == 201
    form = site.request("POST", f"/m/{site.media_id}/comments", headers=site.page("bob"),
                        data={"body": "typed with care"})
    assert form.status_code == 429 and "typed with care" in form.text


# Pages --------------------------------------------------------------------------------------------

@pytest.mark.db
def test_post_preview_reply_edit_and_delete_through_the_pages(site: Site) -> None:
    media_page = f"/u/alice/m/{site.media_id}"
    anonymous = site.request("GET", media_page).text
    assert "Log in to comment." in anonymous and 'name="body"' not in anonymous
    preview = site.request("POST", f"/m/{site.media_id}/comments", headers=site.page("bob"),
                           data={"body": "Look at **this**", "preview": "1"})
    assert preview.status_code == 200 and "<strong>this</strong>" in preview.text and "Look at **this**" in preview.text
    with site.rt.sessions() as session:
        assert site.media(session).comment_count == 0  # a preview posts nothing
    posted = site.request("POST", f"/m/{site.media_id}/comments", headers=site.page("bob"),
                          data={"body": "Look at **this**"})
    assert posted.status_code == 303
    first_id = int(posted.headers["location"].rsplit("#comment-", 1)[1])
    reply = site.request("POST", f"/m/{site.media_id}/comments", headers=site.page("carol"),
                         data={"body": "A reply", "parent_id": str(first_id), "page": ""})
    assert reply.status_code == 303
    page = site.request("GET", media_page, headers=site.page("bob")).text
    assert "2 comments" in page and "<strong>this</strong>" in page and "A reply" in page
    assert f'/m/{site.media_id}/comments/{first_id}/edit' in page  # bob's own comment
    assert page.count('name="parent_id"') == 1  # one reply form, under the top-level comment
    edit_form = site.request("GET", f"/m/{site.media_id}/comments/{first_id}/edit", headers=site.page("bob"))
    assert edit_form.status_code == 200 and "Look at **this**" in edit_form.text
    assert site.request("GET", f"/m/{site.media_id}/comments/{first_id}/edit",
                        headers=site.page("carol")).status_code == 403
    saved = site.request("POST", f"/m/{site.media_id}/comments/{first_id}/edit", headers=site.page("bob"),
                         data={"body": "Changed my mind"})
    assert saved.status_code == 303
    page = site.request("GET", media_page, headers=site.page("carol")).text
    assert "Changed my mind" in page and "edited" in page
    deleted = site.request("POST", f"/m/{site.media_id}/comments/{first_id}/delete", headers=site.page("alice"))
    assert deleted.status_code == 303
    page = site.request("GET", media_page).text
    assert "Deleted comment" in page and "Changed my mind" not in page and "A reply" in page
    assert site.request("POST", f"/m/{site.media_id}/comments/{first_id}/delete",
                        headers=site.page("carol")).status_code == 404  # already a placeholder


@pytest.mark.db
def test_the_media_page_costs_the_same_queries_with_200_comments_as_with_2(site: Site) -> None:
    few, many = site.media_id, site.upload()
    site.rt.settings.security.comments_per_user_per_hour = 10_000
    with site.rt.sessions() as session:  # no mail about 200 comments: this test is about the page
        session.execute(update(User).values(notify_mail=dict.fromkeys(NOTIFICATION_TYPES, "off")))
        session.commit()
    for n in range(2):
        site.post("bob", f"few {n}", media_id=few)
    parents: list[int] = []
    for n in range(200):
        parent = parents[-1 - n % len(parents) % 3] if n % 4 == 0 and parents else None
        row = site.post("bob" if n % 2 else "carol", f"many {n}", parent, media_id=many)
        if parent is None:
            parents.append(row.id)
    measured = {}
    for who in (None, "carol"):
        for media_id in (few, many):
            headers = site.page(who)
            site.request("GET", f"/u/alice/m/{media_id}", headers=headers)  # warm up the templates
            with counting(site.rt) as statements:
                page = site.request("GET", f"/u/alice/m/{media_id}?fresh={secrets.token_hex(4)}", headers=headers)
            assert page.status_code == 200
            measured[(who, media_id)] = len(statements)
    assert measured[(None, few)] == measured[(None, many)], measured
    assert measured[("carol", few)] == measured[("carol", many)], measured
    pages, url = [], f"/u/alice/m/{many}"
    while url:
        pages.append(site.request("GET", url).text)
        older = re.search(r'href="\?comments_before=(\d+)#comments"', pages[-1])
        url = f"/u/alice/m/{many}?comments_before={older.group(1)}" if older else ""
    assert len(pages) == 4  # 151 top-level comments (and 49 replies), 50 a page
    assert "<p>many 199</p>" in pages[0] and "<p>many 0</p>" in pages[-1]
    shown = [int(n) for page in pages for n in re.findall(r"<p>many (\d+)</p>", page)]
    assert sorted(shown) == list(range(200))  # every comment once, replies with their thread
    with site.rt.sessions() as session:  # a comment's lasting address finds its page
        rows = {c.body: c for c in session.scalars(select(Comment).where(Comment.media_id == many))}
    for body, where in (("many 0", pages[-1]), ("many 4", pages[-2]), ("many 199", pages[0]),
                        ("many 196", pages[0])):
        found = site.request("GET", f"/m/{many}/comments/{rows[body].id}")
        assert found.status_code == 303 and found.headers["location"].endswith(f"#comment-{rows[body].id}")
        assert f"<p>{body}</p>" in site.request("GET", found.headers["location"].split("#")[0]).text
        assert f"<p>{body}</p>" in where


# The API ------------------------------------------------------------------------------------------

@pytest.mark.db
def test_api_lists_posts_edits_and_deletes(site: Site) -> None:
    url = f"/api/v1/media/{site.media_id}/comments"
    made = site.request("POST", url, headers=site.api("bob"), json={"body": "See [this](https://example.org)"})
    assert made.status_code == 201, made.text
    top = made.json()
    assert top["author"] == "bob" and top["parent_id"] is None and top["edited"] is None
    assert 'rel="nofollow ugc noopener"' in top["body_html"]
    reply = site.request("POST", url, headers=site.api("carol"), json={"body": "ok", "parent_id": top["id"]}).json()
    listed = site.request("GET", url).json()
    assert [c["id"] for c in listed["items"]] == [top["id"]] and listed["next"] is None
    assert [r["id"] for r in listed["items"][0]["replies"]] == [reply["id"]]
    patch = site.request("PATCH", f"{url}/{top['id']}", headers=site.api("bob"), json={"body": "_new_"})
    assert patch.status_code == 200 and patch.json()["body_html"] == "<p><em>new</em></p>\n" and patch.json()["edited"]
    assert site.request("PATCH", f"{url}/{top['id']}", headers=site.api("alice"),
                        json={"body": "not mine"}).status_code == 403
    assert site.request("DELETE", f"{url}/{reply['id']}", headers=site.api("bob")).status_code == 403
    assert site.request("DELETE", f"{url}/{top['id']}", headers=site.api("alice")).status_code == 204
    placeholder = site.request("GET", url).json()["items"][0]
    assert placeholder["deleted"] and placeholder["body"] == "" and placeholder["author"] is None
    assert site.request("GET", url, params={"cursor": "x"}).status_code == 422
    media = site.request("GET", f"/api/v1/media/{site.media_id}").json()
    assert media["comments"] == 1 and media["favourites"] == 0 and media["favourited"] is None
    preview = site.request("POST", "/api/v1/comments/preview", headers=site.api("carol"), json={"body": "**b**"})
    assert preview.json() == {"body_html": "<p><strong>b</strong></p>\n"}
    assert site.request("POST", "/api/v1/comments/preview", json={"body": "x"}).status_code == 401


def test_the_api_documents_the_comment_and_favourite_operations(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    ops = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert ops >= {("/api/v1/media/{media_id}/comments", "get"), ("/api/v1/media/{media_id}/comments", "post"),
                   ("/api/v1/media/{media_id}/comments/{comment_id}", "patch"),
                   ("/api/v1/media/{media_id}/comments/{comment_id}", "delete"),
                   ("/api/v1/comments/preview", "post"), ("/api/v1/media/{media_id}/favourite", "put"),
                   ("/api/v1/media/{media_id}/favourite", "delete"), ("/api/v1/favourites", "get"),
                   ("/api/v1/media/{media_id}/favourites", "get")}
    media = schema["components"]["schemas"]["MediaOut"]["properties"]
    assert {"favourites", "comments", "favourited", "comments_enabled"} <= set(media)


def test_a_kept_thread_shows_each_viewer_only_their_own_buttons(site: Site) -> None:
    """The thread is made once for everyone who may reply (kiln.web.fragments) and each viewer's buttons
    and CSRF token are put in afterwards: nobody gets another's, and no comment can fake the marks."""
    mine = site.post("bob", "Mine")
    forged = site.post("carol", '<!--kiln-actions 1 2--> value="kiln-csrf-mark-9f2c" kiln-csrf-mark-9f2c')
    path = f"/u/alice/m/{site.media_id}"
    pages = {who: site.request("GET", path, headers=site.page(who)).text for who in ("bob", "carol", "alice")}
    edit_mine = f"/m/{site.media_id}/comments/{mine.id}/edit"
    delete_mine = f"/m/{site.media_id}/comments/{mine.id}/delete"
    assert edit_mine in pages["bob"] and delete_mine in pages["bob"]
    assert edit_mine not in pages["carol"] and delete_mine not in pages["carol"]
    assert delete_mine in pages["alice"] and edit_mine not in pages["alice"]  # the owner deletes, never edits
    assert f"/comments/{forged.id}/delete" in pages["carol"] and f"/comments/{forged.id}/delete" not in pages["bob"]
    for who, text in pages.items():
        assert "<!--kiln-actions" not in text, who
        tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', text))
        assert len(tokens) == 1 and "kiln-csrf-mark-9f2c" not in tokens, who  # the viewer's own token only
    assert pages["bob"].count("kiln-csrf-mark-9f2c") == 2  # as text in carol's comment, escaped, twice
    assert len(site.client.app.state.fragments._items) >= 1  # type: ignore[attr-defined]
