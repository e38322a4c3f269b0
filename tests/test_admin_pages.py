"""The people pages (/admin/users, /admin/users/{name}), the audit log page and export, and their API:
who may see what, search and filters, each form acting through kiln.moderation.people and being
audited, refusals said as sentences, and a page of people costing the same few queries at any length."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from kiln.accounts import services as accounts
from kiln.accounts.models import User, UserPrivilege
from kiln.db.base import utcnow
from kiln.media.models import MediaEntry, Rendition
from kiln.moderation import directory, people
from kiln.moderation.models import AuditEntry
from kiln.runtime import Runtime
from kiln.social.models import Notification
from tests.social_kit import log_in, person, post, text, upload

pytestmark = pytest.mark.db


def _user(rt: Runtime, name: str) -> User:
    with rt.sessions() as session:
        user = session.scalar(select(User).where(User.username == name))
        assert user is not None
        user.privileges  # noqa: B018
        session.expunge(user)
        return user


def _staff(rt: Runtime, name: str, role: str) -> int:
    with rt.sessions() as session:
        user = accounts.create_user(session, name, f"{name}@example.com", "correct horse", verified=True,
                                    admin=role == "admin")
        if role == "moderator":
            user.privileges.append(UserPrivilege(name="moderator"))
        session.commit()
        return user.id


def _entries(rt: Runtime) -> list[AuditEntry]:
    with rt.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


@pytest.fixture
def cast(rt: Runtime) -> dict[str, int]:
    """alice (with one item), bob (address not confirmed), carl (banned), dora (commenting taken away
    for a week), mona (moderator), ada (admin)."""
    ids = {"alice": person(rt, "alice"), "carl": person(rt, "carl"), "dora": person(rt, "dora"),
           "mona": _staff(rt, "mona", "moderator"), "ada": _staff(rt, "ada", "admin")}
    with rt.sessions() as session:
        ids["bob"] = accounts.create_user(session, "bob", "bob@postbox.example.org", "correct horse", verified=False).id
        session.commit()
        carl, dora = session.get(User, ids["carl"]), session.get(User, ids["dora"])
        people.ban(session, None, carl, days=None, reason="spam", via="cli")  # type: ignore[arg-type]
        people.revoke(session, None, dora, "commenter", days=7, reason="rude", via="cli")  # type: ignore[arg-type]
        session.commit()
    upload(rt, ids["alice"], "Alice's picture")
    return ids


def test_who_may_see_the_pages_and_the_api(client: TestClient, rt: Runtime, cast: dict[str, int]) -> None:
    for path in ("/admin/users", "/admin/users/alice", "/admin/audit", "/admin/audit.jsonl"):
        client.cookies.clear()
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/auth/login"), path
    for path in ("/api/v1/admin/users", "/api/v1/admin/audit"):
        assert client.get(path).status_code == 401
    log_in(client, rt, cast["alice"])
    for path in ("/admin/users", "/admin/users/bob", "/admin/audit", "/admin/audit.jsonl", "/api/v1/admin/users",
                 "/api/v1/admin/audit"):
        assert client.get(path).status_code == 403, path
    log_in(client, rt, cast["mona"])
    page = client.get("/admin/users")
    assert page.status_code == 200 and 'data-user="alice"' in page.text
    assert "alice@example.com" not in page.text  # moderators do not see e-mail addresses
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/api/v1/admin/audit").status_code == 403
    listed = client.get("/api/v1/admin/users").json()["users"]
    assert {u["username"] for u in listed} == {"alice", "bob", "carl", "dora", "mona", "ada"}
    assert all(u["email"] is None for u in listed)
    assert 'href="/admin/users"' in page.text and 'href="/admin/audit"' not in page.text  # the nav
    log_in(client, rt, cast["ada"])
    page = client.get("/admin/users")
    assert "alice@example.com" in page.text and 'href="/admin/audit"' in page.text
    assert client.get("/admin/audit").status_code == 200
    assert {u["email"] for u in client.get("/api/v1/admin/users").json()["users"]} >= {"bob@postbox.example.org"}


def _names(client: TestClient, **params: object) -> list[str]:
    resp = client.get("/api/v1/admin/users", params=params)  # type: ignore[arg-type]
    assert resp.status_code == 200, resp.text
    return [u["username"] for u in resp.json()["users"]]


def test_search_and_filters_find_the_right_people(client: TestClient, rt: Runtime, cast: dict[str, int]) -> None:
    log_in(client, rt, cast["mona"])
    assert _names(client, q="AL") == ["alice"]
    assert _names(client, q="postbox") == []  # a moderator's search does not read addresses
    assert _names(client, state="banned") == ["carl"]
    assert _names(client, state="unverified") == ["bob"]
    assert _names(client, state="suspended") == ["dora"]
    assert set(_names(client, state="active")) == {"alice", "dora", "mona", "ada"}
    assert _names(client, privilege="moderator") == ["ada", "mona"]  # every admin is a moderator
    assert _names(client, privilege="commenter", q="d") == ["ada"]  # dora's is taken away for now
    assert _names(client, q="%") == [] and _names(client, q="_") == []  # wildcards are plain characters
    assert client.get("/api/v1/admin/users", params={"state": "gone"}).status_code == 422
    page = client.get("/admin/users", params={"state": "banned", "q": ""})
    assert 'data-user="carl"' in page.text and 'data-user="alice"' not in page.text
    assert client.get("/admin/users", params={"privilege": "wizard"}).status_code == 422
    log_in(client, rt, cast["ada"])
    assert _names(client, q="postbox") == ["bob"]  # administrators search addresses too


def test_pages_are_newest_first_with_a_cursor_and_show_what_each_stores(client: TestClient, rt: Runtime,
                                                                      cast: dict[str, int]) -> None:
    log_in(client, rt, cast["mona"])
    first = client.get("/api/v1/admin/users", params={"limit": 4}).json()
    assert [u["username"] for u in first["users"]] == ["bob", "ada", "mona", "dora"]
    second = client.get("/api/v1/admin/users", params={"limit": 4, "cursor": first["next"]}).json()
    assert [u["username"] for u in second["users"]] == ["carl", "alice"] and second["next"] is None
    alice = second["users"][1]
    with rt.sessions() as session:
        expected = session.scalar(select(func.sum(MediaEntry.size_bytes))) + session.scalar(
            select(func.sum(Rendition.size_bytes)))
    assert alice["media_count"] == 1 and alice["storage_bytes"] == expected > 0
    assert alice["upload_limit_bytes"] == rt.settings.max_upload_bytes and not alice["upload_limit_is_own"]
    carl = second["users"][0]
    assert carl["banned"] and carl["banned_until"] is None and carl["ban_reason"] == "spam"
    page = client.get("/admin/users", params={"before": first["next"]})
    assert 'data-user="carl"' in page.text and 'data-user="bob"' not in page.text


def test_a_page_of_people_costs_the_same_queries_however_long(rt: Runtime) -> None:
    with rt.sessions() as session:
        for n in range(60):
            user = accounts.create_user(session, f"p{n:02d}", f"p{n}@example.com", "correct horse", verified=True)
            session.add(MediaEntry(owner=user, kind="image", title="t", original_key=["k", str(n)], size_bytes=n))
        session.commit()

    def statements(limit: int) -> int:
        count = 0

        def counted(*args: object) -> None:
            nonlocal count
            count += 1

        event.listen(rt.engine, "before_cursor_execute", counted)
        try:
            with rt.sessions() as session:
                result = directory.page(session, directory.PeopleFilter(state="active"), limit=limit)
                assert len(result.rows) == limit
                assert sum(row.stored.bytes for row in result.rows) > 0
                for row in result.rows:
                    assert row.user.privilege_names  # loaded with the page, not per row
        finally:
            event.remove(rt.engine, "before_cursor_execute", counted)
        return count

    assert statements(5) == statements(50) <= 5


def test_each_form_acts_through_people_and_is_audited(client: TestClient, rt: Runtime,
                                                     cast: dict[str, int]) -> None:
    token = log_in(client, rt, cast["mona"])
    assert token
    before = len(_entries(rt))
    resp = post(client, "/admin/users/alice/ban", {"days": "3", "reason": "flooding"})
    assert resp.status_code == 303 and resp.headers["location"] == "/admin/users/alice"
    assert _user(rt, "alice").banned_now
    assert "alice is banned until" in text(client.get("/admin/users/alice").text)
    assert post(client, "/admin/users/alice/unban", {"reason": "appeal"}).status_code == 303
    assert not _user(rt, "alice").banned_now
    assert post(client, "/admin/users/alice/revoke", {"privilege": "uploader", "days": "",
                                                      "reason": "bad files"}).status_code == 303
    assert not _user(rt, "alice").has("uploader")
    assert post(client, "/admin/users/alice/restore", {"privilege": "uploader"}).status_code == 303
    assert _user(rt, "alice").has("uploader")
    assert post(client, "/admin/users/alice/warn", {"reason": "be kind"}).status_code == 303
    with rt.sessions() as session:
        note = session.scalar(select(Notification).where(Notification.user_id == cast["alice"],
                                                         Notification.type == "warning"))
        assert note is not None
    done = _entries(rt)[before:]
    assert [(e.action, e.actor_name, e.via, e.target_label) for e in done] == [
        ("ban", "mona", "web", "alice"), ("unban", "mona", "web", "alice"),
        ("privilege.revoke", "mona", "web", "alice"), ("privilege.restore", "mona", "web", "alice"),
        ("warn", "mona", "web", "alice")]
    assert done[0].reason == "flooding" and done[0].details["days"] == 3
    history = client.get("/admin/users/alice").text
    assert all(f'data-entry="{e.id}"' in history for e in done)
    shown = client.get("/api/v1/admin/users/alice").json()
    assert [e["action"] for e in shown["history"]] == ["warn", "privilege.restore", "privilege.revoke", "unban",
                                                       "ban"]
    assert shown["email"] is None and shown["media_count"] == 1 and not shown["banned"]
    assert client.get("/api/v1/admin/users/nobody").status_code == 404


def test_refusals_are_sentences_and_change_nothing(client: TestClient, rt: Runtime, cast: dict[str, int]) -> None:
    log_in(client, rt, cast["mona"])
    count = len(_entries(rt))
    page = client.get("/admin/users/ada")
    assert "Only administrators can act on moderators and administrators." in page.text
    assert 'action="/admin/users/ada/ban"' not in page.text
    resp = post(client, "/admin/users/ada/ban", {"reason": "no"})
    assert resp.status_code == 403 and "Only administrators can act on moderators and administrators." in resp.text
    resp = post(client, "/admin/users/alice/role", {"role": "moderator", "change": "grant"})
    assert resp.status_code == 403 and "Only administrators can change who is a moderator" in resp.text
    resp = post(client, "/admin/users/alice/upload-limit", {"limit": "2GiB"})
    assert resp.status_code == 403 and "Only administrators can change upload limits." in resp.text
    resp = post(client, "/admin/users/alice/ban", {"reason": " "})
    assert resp.status_code == 422 and "Give a reason: the person is told it." in resp.text
    resp = post(client, "/admin/users/alice/ban", {"reason": "x", "days": "soon"})
    assert resp.status_code == 422 and "Give a number of days from 1 to" in resp.text
    resp = post(client, "/admin/users/alice/unban", {})
    assert resp.status_code == 409 and "alice is not banned." in resp.text
    assert post(client, "/admin/users/mona/warn", {"reason": "me"}).status_code == 403
    assert post(client, "/admin/users/nobody/warn", {"reason": "x"}).status_code == 404
    assert not _user(rt, "alice").banned_now and len(_entries(rt)) == count


def test_admin_settings_changed_on_the_person_page_are_audited(client: TestClient, rt: Runtime,
                                                              cast: dict[str, int]) -> None:
    log_in(client, rt, cast["ada"])
    assert post(client, "/admin/users/alice/role", {"role": "moderator", "change": "grant",
                                                    "reason": "helps"}).status_code == 303
    assert _user(rt, "alice").has("moderator")
    assert post(client, "/admin/users/alice/upload-limit", {"limit": "2MiB"}).status_code == 303
    assert _user(rt, "alice").upload_limit_bytes == 2 * 1024 * 1024
    assert post(client, "/admin/users/alice/upload-limit", {"limit": ""}).status_code == 303
    assert _user(rt, "alice").upload_limit_bytes is None
    assert post(client, "/admin/users/alice/role", {"role": "moderator", "change": "take"}).status_code == 303
    resp = post(client, "/admin/users/alice/upload-limit", {"limit": "lots"})
    assert resp.status_code == 422 and "is not a size" in resp.text
    done = [(e.action, e.actor_name, e.details) for e in _entries(rt) if e.actor_name == "ada"]
    assert done == [("privilege.grant", "ada", {"privilege": "moderator", "changed": ["moderator"]}),
                    ("user.upload_limit", "ada", {"before": None, "after": 2 * 1024 * 1024}),
                    ("user.upload_limit", "ada", {"before": 2 * 1024 * 1024, "after": None}),
                    ("privilege.revoke", "ada", {"privilege": "moderator", "changed": ["moderator"]})]
    assert post(client, "/admin/users/ada/warn", {"reason": "me"}).status_code == 403  # not on oneself
    assert "This is your own account" in client.get("/admin/users/ada").text


def test_the_audit_log_filters_pages_and_exports(client: TestClient, rt: Runtime, cast: dict[str, int]) -> None:
    log_in(client, rt, cast["mona"])
    post(client, "/admin/users/alice/warn", {"reason": "first"})
    post(client, "/admin/users/bob/warn", {"reason": "second"})
    post(client, "/admin/users/alice/revoke", {"privilege": "commenter", "days": "2", "reason": "third"})
    log_in(client, rt, cast["ada"])
    page = client.get("/admin/audit", params={"actor": "mona"}).text
    assert page.count("data-entry=") == 3 and "Export (JSON lines)" in page
    page = client.get("/admin/audit", params={"subject": "alice", "action": "privilege"}).text
    assert page.count("data-entry=") == 1 and "third" in page
    tomorrow = (utcnow() + dt.timedelta(days=1)).date().isoformat()
    today = utcnow().date().isoformat()
    assert client.get("/admin/audit", params={"since": tomorrow}).text.count("data-entry=") == 0
    assert client.get("/admin/audit", params={"since": today, "until": today}).text.count("data-entry=") == 5
    assert client.get("/admin/audit", params={"since": "yesterday"}).status_code == 422

    export = client.get("/admin/audit.jsonl", params={"actor": "mona"})
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [(d["action"], d["target"], d["reason"]) for d in lines] == [
        ("warn", "alice", "first"), ("warn", "bob", "second"), ("privilege.revoke", "alice", "third")]

    first = client.get("/api/v1/admin/audit", params={"actor": "mona", "limit": 2}).json()
    assert [e["reason"] for e in first["entries"]] == ["third", "second"]
    rest = client.get("/api/v1/admin/audit", params={"actor": "mona", "limit": 2, "cursor": first["next"]}).json()
    assert [e["reason"] for e in rest["entries"]] == ["first"] and rest["next"] is None
    about = client.get("/api/v1/admin/audit", params={"user": "alice", "action": "warn"}).json()["entries"]
    assert [e["reason"] for e in about] == ["first"] and about[0]["via"] == "web"
    naive_future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert client.get("/api/v1/admin/audit", params={"since": naive_future}).json()["entries"] == []
    assert client.get("/api/v1/admin/audit", params={"cursor": "abc"}).status_code == 422


def test_entries_about_a_deleted_account_are_found_by_its_name(client: TestClient, rt: Runtime,
                                                              cast: dict[str, int]) -> None:
    log_in(client, rt, cast["ada"])
    post(client, "/admin/users/bob/warn", {"reason": "before leaving"})
    with rt.sessions() as session:
        session.delete(session.get(User, cast["bob"]))
        session.commit()
    about = client.get("/api/v1/admin/audit", params={"user": "bob"}).json()["entries"]
    assert [e["reason"] for e in about] == ["before leaving"]


def test_kiln_users_list_filters_like_the_page(rt: Runtime, cast: dict[str, int], kiln) -> None:  # type: ignore[no-untyped-def]
    listed = json.loads(kiln("users", "list", "--state", "banned", "--json").output)
    assert [(p["username"], p["banned"]) for p in listed] == [("carl", True)]
    listed = json.loads(kiln("users", "list", "--search", "postbox", "--json").output)
    assert [p["username"] for p in listed] == ["bob"]
    alice = json.loads(kiln("users", "list", "--search", "alice", "--json").output)[0]
    assert alice["media_count"] == 1 and alice["storage_bytes"] > 0
    assert "alice" in kiln("users", "list", "--limit", "10").output
    assert kiln("users", "list", "--state", "gone", ok=False).exit_code == 2


def test_upload_limits_are_read_as_people_write_them() -> None:
    from kiln.errors import InvalidInput
    from kiln.units import GIB, MIB, parse_size

    assert parse_size("500MiB") == 500 * MIB and parse_size(" 1.5 GiB ") == GIB * 3 // 2
    assert parse_size("1048576") == MIB and parse_size("2GB") == 2_000_000_000 and parse_size("none") is None
    for written, code in (("0", "bad_limit"), ("9" * 20, "bad_limit"), ("lots", "bad_size"),
                          ("5 parsecs", "bad_size")):
        with pytest.raises(InvalidInput) as refused:
            parse_size(written)
        assert refused.value.code == code, written
