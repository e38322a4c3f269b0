"""Reports, the moderation queue and removal (kiln.moderation.reports, .actions, .removal): who may
report, one case per target, each action, a removed item gone from every page, feed, API answer and
file URL for everyone but admins, restore, purge, and the reporter told the outcome."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from kiln.accounts.models import User, UserPrivilege
from kiln.media.models import MediaEntry
from kiln.moderation import audit
from kiln.moderation.models import AuditEntry, Report
from kiln.moderation.removal import purge_due, remove_media
from kiln.processing.sweeper import sweep
from kiln.runtime import Runtime
from kiln.social import collections as collection_service
from kiln.social import comments, favourites
from kiln.social.models import Collection, Comment, Notification
from tests.conftest import mails
from tests.social_kit import api, log_in, person, post, text, upload

pytestmark = pytest.mark.db


def _grant(rt: Runtime, user_id: int, *names: str) -> None:
    with rt.sessions() as session:
        user = session.get(User, user_id)
        assert user is not None
        for name in names:
            user.privileges.append(UserPrivilege(name=name))
        session.commit()


def _world(rt: Runtime) -> dict[str, int]:
    ids = {"ann": person(rt, "ann"), "bob": person(rt, "bob"), "cat": person(rt, "cat"),
           "mod": person(rt, "mod"), "root": person(rt, "root")}
    _grant(rt, ids["mod"], "moderator")
    _grant(rt, ids["root"], "admin", "moderator")
    ids["photo"] = upload(rt, ids["ann"], "Beach")
    return ids


def _report(client: TestClient, rt: Runtime, who: int, target_type: str, target_id: int,
            category: str = "spam", words: str = "") -> Any:
    log_in(client, rt, who)
    return api(client, "POST", "/api/v1/reports", json={"target_type": target_type, "target_id": target_id,
                                                        "category": category, "text": words})


def _path(url: str) -> str:
    return urlsplit(url).path


def _audit_actions(rt: Runtime) -> list[str]:
    with rt.sessions() as session:
        return [e.action for e in reversed(audit.page(session, audit.AuditFilter()))]


def test_one_case_per_target_and_no_second_report_from_the_same_person(rt: Runtime, client: TestClient,
                                                                       kiln: Any) -> None:
    ids = _world(rt)
    first = _report(client, rt, ids["bob"], "media", ids["photo"], "spam", "Selling things")
    assert first.status_code == 201 and first.json()["new"] is True and first.json()["state"] == "open"
    again = _report(client, rt, ids["bob"], "media", ids["photo"], "harassment")
    assert again.status_code == 200 and again.json()["new"] is False and again.json()["id"] == first.json()["id"]
    assert _report(client, rt, ids["cat"], "media", ids["photo"], "illegal").status_code == 201
    assert _report(client, rt, ids["cat"], "user", ids["bob"], "other").status_code == 201

    log_in(client, rt, ids["mod"])
    newest = client.get("/api/v1/admin/reports").json()["items"]
    assert [(c["target_type"], c["count"]) for c in newest] == [("user", 1), ("media", 2)]
    most = client.get("/api/v1/admin/reports", params={"sort": "most"}).json()["items"]
    assert [(c["target_type"], c["count"]) for c in most] == [("media", 2), ("user", 1)]
    assert {r["reporter"] for r in most[0]["reports"]} == {"bob", "cat"} and most[0]["owner"] == "ann"
    page = client.get("/admin/moderation?sort=most")
    assert page.status_code == 200 and "Beach" in page.text and "2 reports" in text(page.text)
    with rt.sessions() as session:
        assert session.query(Report).count() == 3  # the repeated report made no row
    listed = json.loads(kiln("moderation", "reports", "--sort", "most", "--json").output)
    assert [(c["target_type"], c["count"]) for c in listed] == [("media", 2), ("user", 1)]

    log_in(client, rt, ids["bob"])
    mine = client.get("/api/v1/reports/mine").json()["items"]
    assert [(r["target_type"], r["category"], r["state"]) for r in mine] == [("media", "spam", "open")]
    assert "Spam" in client.get("/reports/mine").text


def test_who_may_report_what(rt: Runtime, client: TestClient) -> None:
    ids = _world(rt)
    secret = upload(rt, ids["ann"], "Diary", visibility="private")
    anon = client.post("/api/v1/reports", json={"target_type": "media", "target_id": ids["photo"], "category": "spam"})
    assert anon.status_code == 401
    assert _report(client, rt, ids["bob"], "media", secret).status_code == 404  # cannot see it: no such thing
    assert _report(client, rt, ids["bob"], "media", 999_999).status_code == 404
    assert _report(client, rt, ids["bob"], "comment", 999_999).status_code == 404
    assert _report(client, rt, ids["ann"], "media", ids["photo"]).status_code == 422  # her own
    assert _report(client, rt, ids["bob"], "media", ids["photo"], "rude").status_code == 422
    long = _report(client, rt, ids["bob"], "media", ids["photo"], words="x" * 2001)
    assert long.status_code == 422
    with rt.sessions() as session:  # the reporter privilege taken away
        bob = session.get(User, ids["bob"])
        bob.privileges = [p for p in bob.privileges if p.name != "reporter"]  # type: ignore[union-attr]
        session.commit()
    refused = _report(client, rt, ids["bob"], "media", ids["photo"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_reporter"
    with rt.sessions() as session:
        session.execute(update(User).where(User.id == ids["cat"]).values(banned=True, ban_reason="spam"))
        session.commit()
    assert _report(client, rt, ids["cat"], "media", ids["photo"]).status_code in (401, 403)

    # The page form, without JavaScript.
    log_in(client, rt, ids["mod"])
    form = client.get(f"/report?type=media&id={ids['photo']}")
    assert form.status_code == 200 and 'name="category"' in form.text and "Beach" in form.text
    assert client.get("/report?type=media&id=abc").status_code == 404
    assert client.get("/report?type=planet&id=1").status_code == 422
    sent = post(client, "/report", {"type": "media", "id": str(ids["photo"]), "category": "copyright", "text": "Mine"})
    assert sent.status_code == 303 and sent.headers["location"] == "/reports/mine"
    bad = post(client, "/report", {"type": "media", "id": str(ids["photo"]), "category": "nope"})
    assert bad.status_code == 422 and "Choose why you report it" in bad.text


def test_the_queue_is_for_moderators_and_admins(rt: Runtime, client: TestClient) -> None:
    ids = _world(rt)
    client.cookies.clear()
    assert client.get("/admin/moderation", follow_redirects=False).status_code == 303
    assert client.get("/api/v1/admin/reports").status_code == 401
    log_in(client, rt, ids["bob"])
    assert client.get("/admin/moderation").status_code == 403
    assert client.get("/api/v1/admin/reports").status_code == 403
    report = _report(client, rt, ids["bob"], "media", ids["photo"]).json()
    assert api(client, "POST", f"/api/v1/admin/reports/{report['id']}/actions",
               json={"action": "dismiss", "reason": "no"}).status_code == 403
    for who in ("mod", "root"):
        log_in(client, rt, ids[who])
        assert client.get("/admin/moderation").status_code == 200
        assert client.get(f"/admin/moderation/{report['id']}").status_code == 200
        assert 'href="/admin/moderation"' in client.get("/").text  # the nav link


def test_removal_hides_the_item_everywhere_but_from_admins_and_a_ban_resolves_the_case(
        rt: Runtime, client: TestClient) -> None:
    ids = _world(rt)
    other = upload(rt, ids["ann"], "Harbour")
    with rt.sessions() as session:
        favourites.favourite(session, session.get(User, ids["bob"]), _media(session, ids["photo"]))
        session.commit()
    page = f"/u/ann/m/{ids['photo']}"
    client.cookies.clear()  # seen (and kept by the page cache) before the removal
    assert client.get(page).status_code == 200 and f"/m/{ids['photo']}" in client.get("/feeds/atom").text
    log_in(client, rt, ids["ann"])
    item = client.get(f"/api/v1/media/{ids['photo']}").json()
    old_files = [_path(r["url"]) for r in item["renditions"].values()]
    assert old_files and all(client.get(url).status_code == 200 for url in old_files)
    by_bob = _report(client, rt, ids["bob"], "media", ids["photo"], "illegal").json()
    by_cat = _report(client, rt, ids["cat"], "media", ids["photo"], "spam").json()
    about_other = _report(client, rt, ids["cat"], "media", other, "spam").json()

    log_in(client, rt, ids["mod"])
    case = client.get(f"/admin/moderation/{by_bob['id']}")
    assert case.status_code == 200 and f"/m/{ids['photo']}/r/thumbnail" in case.text  # in context
    done = post(client, f"/admin/moderation/{by_bob['id']}",
                {"action": ["remove", "ban"], "reason": "Not allowed here", "days": "1"})
    assert done.status_code == 303, done.text

    client.cookies.clear()
    assert client.get(page).status_code == 404
    assert client.get(f"/api/v1/media/{ids['photo']}").status_code == 404
    assert ids["photo"] not in [m["id"] for m in client.get("/api/v1/media").json()["items"]]
    assert f"/m/{ids['photo']}" not in client.get("/feeds/atom").text and "Beach" not in client.get("/").text
    for url in old_files:  # the old public URLs are gone for everyone
        assert client.get(url).status_code == 404, url
    assert client.get(f"/m/{ids['photo']}/r/thumbnail").status_code == 404
    log_in(client, rt, ids["cat"])
    assert client.get(page).status_code == 404
    assert client.get(f"/api/v1/media/{ids['photo']}").status_code == 404
    log_in(client, rt, ids["bob"])
    assert "Beach" not in client.get("/favourites").text
    log_in(client, rt, ids["root"])
    shown = client.get(page)
    assert shown.status_code == 200 and "Not allowed here" in shown.text
    assert client.get(f"/m/{ids['photo']}/r/thumbnail").status_code == 200
    assert client.get(f"/api/v1/media/{ids['photo']}").status_code == 200
    # The owner is banned for a day: her cookie no longer counts, so she sees what a visitor sees.
    with rt.sessions() as session:
        ann = session.get(User, ids["ann"])
        assert ann is not None and ann.banned_now and ann.ban_reason == "Not allowed here"
        reports = {r.id: r for r in session.scalars(select(Report))}
        assert {reports[by_bob["id"]].outcome, reports[by_cat["id"]].outcome} == {"removed"}
        assert reports[about_other["id"]].state == "resolved"  # the ban: her other things too
        told = session.scalars(select(Notification).where(Notification.type == "report_outcome")).all()
        assert {n.user_id for n in told} == {ids["bob"], ids["cat"]}
    assert any(m["to"] == "bob@example.com" and "the content was removed" in m["body"] for m in mails(rt.settings))
    assert _audit_actions(rt)[-2:] == ["media.remove", "ban"]
    log_in(client, rt, ids["bob"])
    assert [r["outcome"] for r in client.get("/api/v1/reports/mine").json()["items"]] == ["removed"]


def _media(session: Any, media_id: int) -> Any:
    return session.get(MediaEntry, media_id)


def test_the_owner_sees_the_reason_and_an_admin_restores(rt: Runtime, client: TestClient) -> None:
    ids = _world(rt)
    report = _report(client, rt, ids["bob"], "media", ids["photo"]).json()
    log_in(client, rt, ids["mod"])
    acted = api(client, "POST", f"/api/v1/admin/reports/{report['id']}/actions",
                json={"action": "remove", "reason": "Copyright claim"})
    assert acted.status_code == 200 and acted.json()["report"]["outcome"] == "removed"
    again = api(client, "POST", f"/api/v1/admin/reports/{report['id']}/actions",
                json={"action": "dismiss", "reason": "x"})
    assert again.status_code == 409
    log_in(client, rt, ids["ann"])
    own = client.get(f"/u/ann/m/{ids['photo']}")
    assert own.status_code == 410 and "Copyright claim" in own.text and "/r/" not in own.text
    told = client.get("/api/v1/notifications").json()["items"][0]
    assert told["message"] == "The moderators removed Beach: Copyright claim" and told["url"].endswith(
        f"/u/ann/m/{ids['photo']}")
    assert any(m["to"] == "ann@example.com" and "Copyright claim" in m["body"] for m in mails(rt.settings))
    assert client.get(f"/m/{ids['photo']}/r/thumbnail").status_code == 404
    assert client.get(f"/api/v1/media/{ids['photo']}").status_code == 404
    assert "Beach" not in client.get("/u/ann").text
    panel = client.get("/panel").text  # the owner's processing panel: marked, and no picture that would 404
    assert "Removed by the moderators" in panel and "<img" not in panel
    assert api(client, "PATCH", f"/api/v1/media/{ids['photo']}", json={"title": "Mine"}).status_code == 404

    log_in(client, rt, ids["mod"])  # moderators remove; only admins restore
    assert post(client, f"/admin/moderation/removed/media/{ids['photo']}/restore").status_code == 403
    log_in(client, rt, ids["root"])
    assert "Beach" in client.get("/admin/moderation/removed").text
    assert post(client, f"/admin/moderation/removed/media/{ids['photo']}/restore",
                {"reason": "Licence shown"}).status_code == 303
    client.cookies.clear()
    item = client.get(f"/api/v1/media/{ids['photo']}")
    assert item.status_code == 200
    assert all(client.get(_path(r["url"])).status_code == 200 for r in item.json()["renditions"].values())
    assert "media.restore" in _audit_actions(rt)


def test_dismiss_warn_and_revoke(rt: Runtime, client: TestClient) -> None:
    ids = _world(rt)
    report = _report(client, rt, ids["bob"], "media", ids["photo"]).json()
    log_in(client, rt, ids["mod"])
    assert api(client, "POST", f"/api/v1/admin/reports/{report['id']}/actions",
               json={"action": ["dismiss", "ban"], "reason": "x"}).status_code == 422
    assert api(client, "POST", f"/api/v1/admin/reports/{report['id']}/actions",
               json={"action": "revoke", "reason": "x"}).status_code == 422  # which privilege?
    dismissed = api(client, "POST", f"/api/v1/admin/reports/{report['id']}/actions",
                    json={"action": "dismiss", "reason": "A normal beach photo"})
    assert dismissed.status_code == 200 and dismissed.json()["report"]["outcome"] == "dismissed"
    with rt.sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "report.dismiss")).one()
        assert entry.reason == "A normal beach photo" and entry.details["reports"] == [report["id"]]
    log_in(client, rt, ids["bob"])
    notes = client.get("/api/v1/notifications").json()["items"]
    assert notes[0]["type"] == "report_outcome" and "nothing was done" in notes[0]["message"]

    second = _report(client, rt, ids["cat"], "user", ids["ann"], "harassment").json()
    log_in(client, rt, ids["mod"])
    both = api(client, "POST", f"/api/v1/admin/reports/{second['id']}/actions",
               json={"action": ["warn", "revoke"], "reason": "Be kind", "privilege": "commenter", "days": 7})
    assert both.status_code == 200 and both.json()["report"]["outcome"] == "revoked"
    with rt.sessions() as session:
        ann = session.get(User, ids["ann"])
        assert ann is not None and not ann.has("commenter")
        assert session.scalars(select(Notification.type).where(Notification.user_id == ids["ann"])).all() == ["warning"]
    assert _audit_actions(rt)[-2:] == ["warn", "privilege.revoke"]
    assert api(client, "POST", f"/api/v1/admin/reports/{second['id']}/actions",
               json={"action": "remove", "reason": "x"}).status_code == 422  # a person is not removed


def test_removed_comment_and_collection(rt: Runtime, client: TestClient) -> None:
    ids = _world(rt)
    with rt.sessions() as session:
        media = session.get(MediaEntry, ids["photo"])
        comment = comments.post(rt, session, session.get(User, ids["cat"]), media, "Buy cheap pills")  # type: ignore[arg-type]
        album = collection_service.create(session, session.get(User, ids["cat"]), "Pills")  # type: ignore[arg-type]
        session.commit()
        comment_id, album_id = comment.id, album.id
    on_comment = _report(client, rt, ids["bob"], "comment", comment_id).json()
    on_album = _report(client, rt, ids["bob"], "collection", album_id).json()
    log_in(client, rt, ids["mod"])
    assert "Buy cheap pills" in client.get(f"/admin/moderation/{on_comment['id']}").text
    for report in (on_comment, on_album):
        assert post(client, f"/admin/moderation/{report['id']}",
                    {"action": "remove", "reason": "Spam"}).status_code == 303
    client.cookies.clear()
    page = text(client.get(f"/u/ann/m/{ids['photo']}").text)
    assert "Removed by the moderators" in page and "Buy cheap pills" not in page
    assert client.get(f"/c/{album_id}").status_code == 404
    assert client.get(f"/api/v1/collections/{album_id}").status_code == 404
    log_in(client, rt, ids["cat"])  # the owner is told, and sees nothing else
    own = client.get(f"/c/{album_id}")
    assert own.status_code == 410 and "Spam" in own.text and "Pills" in own.text
    told = [n["message"] for n in client.get("/api/v1/notifications").json()["items"]]
    assert "The moderators removed your collection Pills: Spam" in told
    assert "The moderators removed your comment on Beach: Spam" in told
    with rt.sessions() as session:
        assert session.get(Comment, comment_id).removed is not None  # type: ignore[union-attr]
        assert session.get(Collection, album_id).removed is not None  # type: ignore[union-attr]
        assert _media(session, ids["photo"]).comment_count == 1  # the placeholder keeps the thread shown


def test_purge_after_the_grace_period_deletes_files_and_row(rt: Runtime, client: TestClient, kiln: Any) -> None:
    ids = _world(rt)
    report = _report(client, rt, ids["bob"], "media", ids["photo"]).json()
    log_in(client, rt, ids["mod"])
    api(client, "POST", f"/api/v1/admin/reports/{report['id']}/actions", json={"action": "remove", "reason": "x"})
    with rt.sessions() as session:
        media = _media(session, ids["photo"])
        keys = [list(r.key) for r in media.renditions] + [list(media.original_key)]
        store_of = [rt.stores.public] * len(media.renditions) + [rt.stores.by_name(media.original_store)]
    assert all(store.exists(key) for store, key in zip(store_of, keys, strict=True))
    assert purge_due(rt) == 0  # still within the grace period
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=rt.settings.moderation.removal_grace_days + 1)
    assert purge_due(rt, now=later) == 1
    with rt.sessions() as session:
        assert _media(session, ids["photo"]) is None
    assert not any(store.exists(key) for store, key in zip(store_of, keys, strict=True))
    assert "media.purge" in _audit_actions(rt)
    assert "0 removed item(s)" in kiln("moderation", "purge", "--dry-run").output

    # The sweeper purges on its own once the grace period is over.
    second = upload(rt, ids["ann"], "Second")
    with rt.sessions() as session:
        media = _media(session, second)
        for key in remove_media(rt, session, None, media, reason="Spam", via="system"):
            rt.stores.public.delete(key)
        session.commit()
        session.execute(update(MediaEntry).where(MediaEntry.id == second).values(
            removed=dt.datetime.now(dt.UTC) - dt.timedelta(days=rt.settings.moderation.removal_grace_days + 1)))
        session.commit()
    assert "1 removed item(s)" in kiln("moderation", "purge", "--dry-run").output
    sweep(rt)
    with rt.sessions() as session:
        assert _media(session, second) is None


def test_moderators_see_a_reported_item_made_private_since(rt: Runtime, client: TestClient) -> None:
    ids = _world(rt)
    unreported = upload(rt, ids["ann"], "Unreported", visibility="private")
    report = _report(client, rt, ids["bob"], "media", ids["photo"]).json()
    log_in(client, rt, ids["ann"])
    assert api(client, "PATCH", f"/api/v1/media/{ids['photo']}", json={"visibility": "private"}).status_code == 200
    log_in(client, rt, ids["mod"])
    case = client.get(f"/admin/moderation/{report['id']}")
    assert case.status_code == 200 and "Beach" in case.text and "private" in case.text
    assert client.get(f"/m/{ids['photo']}/r/thumbnail").status_code == 200
    assert client.get(f"/m/{unreported}/r/thumbnail").status_code == 404  # only what was reported
    assert client.get(f"/u/ann/m/{ids['photo']}").status_code == 404  # the page stays the owner's
    log_in(client, rt, ids["cat"])
    assert client.get(f"/m/{ids['photo']}/r/thumbnail").status_code == 404


def test_reports_about_something_deleted_since_can_be_dismissed(rt: Runtime, client: TestClient) -> None:
    ids = _world(rt)
    report = _report(client, rt, ids["bob"], "media", ids["photo"]).json()
    log_in(client, rt, ids["ann"])
    assert post(client, f"/m/{ids['photo']}/delete").status_code == 303
    log_in(client, rt, ids["mod"])
    case = client.get(f"/admin/moderation/{report['id']}")
    assert case.status_code == 200 and "it was deleted" in case.text and "Beach" in case.text
    url = f"/api/v1/admin/reports/{report['id']}/actions"
    assert api(client, "POST", url, json={"action": "ban", "reason": "x"}).status_code == 409
    done = api(client, "POST", url, json={"action": "dismiss", "reason": "Gone"})
    assert done.status_code == 200 and done.json()["report"]["outcome"] == "dismissed"
    assert client.get("/api/v1/admin/reports").json()["items"] == []


def test_the_database_keeps_one_open_report_per_person_and_target(rt: Runtime) -> None:
    ids = _world(rt)
    with rt.sessions() as session:
        first = Report(reporter_id=ids["bob"], target_type="media", target_id=ids["photo"], category="spam",
                       text="", snapshot={}, state="open", resolution="")
        session.add(first)
        session.commit()
        twin = Report(reporter_id=ids["bob"], target_type="media", target_id=ids["photo"], category="other",
                      text="", snapshot={}, state="open", resolution="")
        session.add(twin)
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        first.state = "resolved"  # once resolved, a new report about it is a new case
        session.add(Report(reporter_id=ids["bob"], target_type="media", target_id=ids["photo"], category="other",
                           text="", snapshot={}, state="open", resolution=""))
        session.commit()


def test_only_admins_remove_what_moderators_and_admins_posted(rt: Runtime, client: TestClient) -> None:
    """The people pages' rule holds for removal too: a moderator is refused, with a sentence and nothing
    changed, removing an admin's item or a fellow moderator's comment; an admin may do both."""
    ids = _world(rt)
    ids["mod2"] = person(rt, "mod2")
    _grant(rt, ids["mod2"], "moderator")
    ids["root_photo"] = upload(rt, ids["root"], "Root's boat")
    with rt.sessions() as session:
        remark = comments.post(rt, session, session.get(User, ids["mod2"]), _media(session, ids["photo"]),  # type: ignore[arg-type]
                               "A moderator's remark")
        session.commit()
        remark_id = remark.id
    on_item = _report(client, rt, ids["bob"], "media", ids["root_photo"]).json()
    on_remark = _report(client, rt, ids["bob"], "comment", remark_id).json()
    log_in(client, rt, ids["mod"])
    for report in (on_item, on_remark):
        refused = post(client, f"/admin/moderation/{report['id']}", {"action": "remove", "reason": "Spam"})
        assert refused.status_code == 403, refused.text
        assert "Only administrators can act on moderators and administrators." in text(refused.text)
    with rt.sessions() as session:
        assert _media(session, ids["root_photo"]).removed is None
        assert session.get(Comment, remark_id).removed is None  # type: ignore[union-attr]
        assert session.get(Report, on_item["id"]).state == "open"  # type: ignore[union-attr]
    log_in(client, rt, ids["root"])
    for report in (on_item, on_remark):
        assert post(client, f"/admin/moderation/{report['id']}",
                    {"action": "remove", "reason": "Spam"}).status_code == 303
    with rt.sessions() as session:
        assert _media(session, ids["root_photo"]).removed is not None
        assert session.get(Comment, remark_id).removed is not None  # type: ignore[union-attr]
