"""Leaving, and taking your data: the export zip (originals whose sha256 matches, metadata as JSON,
streamed), deleting an account (password, files gone from every store, comments left as
placeholders, the username held), and the same from the CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tracemalloc
import zipfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from kiln.accounts import export, leaving
from kiln.accounts import services as accounts
from kiln.accounts.models import ApiToken, HeldUsername, LoginSession, User
from kiln.db.base import utcnow
from kiln.errors import Conflict, PermissionDenied
from kiln.media import services as media_service
from kiln.media.garbage import gc
from kiln.media.models import MediaEntry, MediaState
from kiln.moderation.models import AuditEntry
from kiln.runtime import Runtime
from kiln.social import collections, comments, favourites, follows, profiles
from kiln.social.models import Collection, Comment, Favourite, Follow, Notification
from kiln.storage import STORE_NAMES
from tests.social_kit import api, log_in, person, post

PASSWORD = "correct horse"


def picture(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (shade % 256, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def upload(rt: Runtime, owner_id: int, shade: int, **fields: object) -> int:
    with rt.sessions() as session:
        owner = session.get(User, owner_id)
        assert owner is not None
        entry = media_service.submit(rt, session, owner, io.BytesIO(picture(shade)), f"picture-{shade}.png",
                                     media_service.MediaFields(title=f"Picture {shade}", **fields))  # type: ignore[arg-type]
        return entry.id


def all_keys(rt: Runtime) -> dict[str, list[list[str]]]:
    return {name: list(rt.stores.by_name(name).iter_keys()) for name in STORE_NAMES}


def keys_of(rt: Runtime, media_ids: list[int]) -> list[str]:
    """Every stored key that belongs to these items (their originals and renditions)."""
    with rt.sessions() as session:
        mine = set()
        for media in session.scalars(select(MediaEntry).where(MediaEntry.id.in_(media_ids))):
            mine.add("/".join(media.original_key))
            mine.update("/".join(r.key) for r in media.renditions)
    return sorted(mine)


@pytest.fixture
def world(rt: Runtime):  # type: ignore[no-untyped-def]
    """alice (who leaves) with two items, one private, a collection, a comment and a favourite on
    bob's item, following bob; bob with an item, replying to alice and commenting on hers."""
    ids = {"alice": person(rt, "alice", bio="I take pictures."), "bob": person(rt, "bob")}
    ids["a1"] = upload(rt, ids["alice"], 10, description="The *first* one.", tags="sea, sky")
    ids["a2"] = upload(rt, ids["alice"], 20, visibility="private")
    ids["b1"] = upload(rt, ids["bob"], 30)
    with rt.sessions() as session:
        profiles.set_avatar(rt, session, session.get(User, ids["alice"]), picture(99))  # type: ignore[arg-type]
        alice, bob = session.get(User, ids["alice"]), session.get(User, ids["bob"])
        assert alice is not None and bob is not None
        b1, a1 = session.get(MediaEntry, ids["b1"]), session.get(MediaEntry, ids["a1"])
        assert b1 is not None and a1 is not None
        ids["c_alice"] = comments.post(rt, session, alice, b1, "Lovely light.").id
        ids["c_bob_reply"] = comments.post(rt, session, bob, b1, "Thank you!", parent_id=ids["c_alice"]).id
        ids["c_bob_on_a1"] = comments.post(rt, session, bob, a1, "Nice sea.").id
        favourites.favourite(session, alice, b1)
        session.commit()
        follows.follow(session, alice, bob)
        follows.follow(session, bob, alice)
        session.commit()
        album = collections.create(session, alice, "Summer")
        session.commit()
        for media_id, note in ((ids["a2"], "second first"), (ids["a1"], "")):
            item = session.get(MediaEntry, media_id)
            assert item is not None
            collections.add_item(session, alice, album, item, note=note)
            session.commit()
        ids["album"] = album.id
    return ids


def read_zip(data: bytes) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive


def test_export_zip_holds_the_originals_and_their_metadata(rt: Runtime, client: TestClient, world) -> None:  # type: ignore[no-untyped-def]
    log_in(client, rt, world["alice"])
    answer = client.get("/api/v1/account/export")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert "attachment" in answer.headers["content-disposition"]
    assert int(answer.headers["content-length"]) == len(answer.content)
    archive = read_zip(answer.content)
    media = json.loads(archive.read("media.json"))
    with rt.sessions() as session:
        rows = {m.id: m for m in session.scalars(select(MediaEntry).where(MediaEntry.owner_id == world["alice"]))}
    assert {m["id"] for m in media} == set(rows) == {world["a1"], world["a2"]}
    for item in media:
        data = archive.read(item["file"])
        assert hashlib.sha256(data).hexdigest() == item["sha256"] == rows[item["id"]].sha256
        assert len(data) == item["size_bytes"]
    first = next(m for m in media if m["id"] == world["a1"])
    assert first["title"] == "Picture 10" and first["tags"] == ["sea", "sky"] and first["visibility"] == "public"
    assert first["license"]["url"] == rows[world["a1"]].license and first["created"]
    assert archive.read(f"media/{world['a1']}/description.md").decode() == "The *first* one."
    assert next(m for m in media if m["id"] == world["a2"])["visibility"] == "private"
    profile = json.loads(archive.read("profile.json"))
    assert profile["username"] == "alice" and profile["email"] == "alice@example.com"
    assert profile["bio"] == "I take pictures."
    assert archive.read("profile/avatar.webp")[8:12] == b"WEBP"
    written = json.loads(archive.read("comments.json"))
    assert [(c["id"], c["body"], c["media_id"]) for c in written] == [(world["c_alice"], "Lovely light.", world["b1"])]
    (album,) = json.loads(archive.read("collections.json"))
    assert album["title"] == "Summer"
    assert [(i["media_id"], i["note"], i["position"]) for i in album["items"]] == [
        (world["a2"], "second first", 1), (world["a1"], "", 2)]
    assert [f["media_id"] for f in json.loads(archive.read("favourites.json"))] == [world["b1"]]
    assert [f["username"] for f in json.loads(archive.read("following.json"))] == ["bob"]
    # HEAD answers the GET's headers without reading a single original for a body it would drop.
    read: list[object] = []
    real_read = export._read

    def spy(rt_: Runtime, original: export.Original) -> Iterator[bytes]:
        for chunk in real_read(rt_, original):
            read.append(original)
            yield chunk

    export._read = spy  # type: ignore[assignment]
    try:
        head = client.head("/api/v1/account/export")
    finally:
        export._read = real_read  # type: ignore[assignment]
    assert head.status_code == 200 and head.content == b"" and read == []
    assert head.headers["content-length"] == answer.headers["content-length"]
    # Bob's export holds nothing of alice's private item, nor her comment.
    log_in(client, rt, world["bob"])
    theirs = read_zip(client.get("/api/v1/account/export").content)
    assert {m["id"] for m in json.loads(theirs.read("media.json"))} == {world["b1"]}
    assert "Lovely light." not in theirs.read("comments.json").decode()
    # A read-only token is enough; without a login there is nothing to export.
    with rt.sessions() as session:
        token = accounts.create_api_token(session, session.get(User, world["alice"]), "backup", "read")  # type: ignore[arg-type]
        session.commit()
    client.cookies.clear()
    answer = client.get("/api/v1/account/export", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    # six documents, two originals, a description, the avatar
    assert len(read_zip(answer.content).namelist()) == 6 + 2 + 1 + 1
    assert client.get("/api/v1/account/export").status_code == 401


def test_export_memory_does_not_grow_with_the_size_of_the_files(rt: Runtime) -> None:
    """A 48 MiB original goes through a few MiB of memory at most: the zip is streamed."""
    owner_id = person(rt, "big")
    key = ["uploads", "big", "original.bin"]
    size = 48 * 1024 * 1024
    block = bytes(range(256)) * 4096  # 1 MiB
    class Blocks(io.RawIOBase):
        def __init__(self) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            if self.left <= 0:
                return b""
            self.left -= len(block)
            return block

    rt.stores.originals.save(key, Blocks())  # type: ignore[arg-type]
    digest = hashlib.sha256()
    for _ in range(48):
        digest.update(block)
    with rt.sessions() as session:
        session.add(MediaEntry(owner_id=owner_id, kind="image", state=MediaState.FAILED, title="Big",
                               original_key=key, original_store="originals", original_name="big.bin",
                               mime_type="application/octet-stream", size_bytes=size, sha256=digest.hexdigest()))
        session.commit()
        plan = export.plan(rt, session, session.get(User, owner_id), "http://kiln.test")  # type: ignore[arg-type]
    stream = export.zip_stream(rt, plan)
    total = 0
    tracemalloc.start()
    try:
        for chunk in stream:
            total += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == len(stream) > size
    assert peak < 8 * 1024 * 1024, f"the export held {peak:,} bytes at once"


def test_a_wrong_password_is_refused_with_a_sentence(rt: Runtime, client: TestClient, world) -> None:  # type: ignore[no-untyped-def]
    log_in(client, rt, world["alice"])
    page = client.get("/account").text
    assert 'href="/api/v1/account/export"' in page and 'action="/account/delete"' in page
    assert "Nobody can take your username for 30 days." in page
    answer = api(client, "DELETE", "/api/v1/account", json={"password": "not my password"})
    assert answer.status_code == 403
    assert answer.json()["error"] == {"code": "wrong_password",
                                      "message": "The password is wrong, so your account was not deleted."}
    page = post(client, "/account/delete", {"password": "nope"})
    assert page.status_code == 403 and "The password is wrong, so your account was not deleted." in page.text
    assert api(client, "DELETE", "/api/v1/account", json={}).status_code == 422
    with rt.sessions() as session:
        assert session.get(User, world["alice"]) is not None
        assert session.scalar(select(MediaEntry.id).where(MediaEntry.id == world["a1"])) is not None


def test_deleting_an_account_leaves_nothing_of_theirs(rt: Runtime, client: TestClient, world) -> None:  # type: ignore[no-untyped-def]
    theirs = keys_of(rt, [world["a1"], world["a2"]])
    assert len(theirs) >= 4  # originals and renditions
    stored = {"/".join(k) for keys in all_keys(rt).values() for k in keys}
    assert set(theirs) <= stored and any(key.startswith(f"avatars/{world['alice']}/") for key in stored)
    log_in(client, rt, world["alice"])
    answer = post(client, "/account/delete", {"password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert 'kiln_session=""' in answer.headers.get("set-cookie", "")
    # Pages and API answer 404.
    client.cookies.clear()
    assert client.get("/u/alice").status_code == 404
    assert client.get(f"/u/alice/m/{world['a1']}").status_code == 404
    assert client.get(f"/api/v1/media/{world['a1']}").status_code == 404
    assert client.get(f"/c/{world['album']}").status_code == 404
    # Files gone from every store; gc finds nothing left over.
    stored = {"/".join(k) for keys in all_keys(rt).values() for k in keys}
    assert not set(theirs) & stored
    assert not any(key.startswith((f"entries/{world['a1']}/", f"entries/{world['a2']}/", f"avatars/{world['alice']}/"))
                   for key in stored)
    report = gc(rt.sessions, rt.stores, dry_run=True, grace=0)
    assert report.unreferenced == {name: [] for name in STORE_NAMES} and report.missing == []
    with rt.sessions() as session:
        # Her comment is a placeholder; bob's reply still reads under it; the counts follow.
        placeholder = session.get(Comment, world["c_alice"])
        assert placeholder is not None and placeholder.deleted is not None
        assert placeholder.body == "" and placeholder.author_id is None
        reply = session.get(Comment, world["c_bob_reply"])
        assert reply is not None and reply.body == "Thank you!"
        b1 = session.get(MediaEntry, world["b1"])
        assert b1 is not None and (b1.comment_count, b1.favourite_count) == (1, 0)
        for model, column in ((Favourite, Favourite.user_id), (Follow, Follow.follower_id),
                              (Follow, Follow.followee_id), (Notification, Notification.actor_id),
                              (Notification, Notification.user_id), (Collection, Collection.owner_id),
                              (LoginSession, LoginSession.user_id), (ApiToken, ApiToken.user_id),
                              (MediaEntry, MediaEntry.owner_id)):
            assert session.scalars(select(model).where(column == world["alice"])).first() is None, model
        assert session.get(Comment, world["c_bob_on_a1"]) is None  # went with her item
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.delete")).one()
        assert (entry.target_id, entry.target_label, entry.actor_name, entry.via) == (
            world["alice"], "alice", "alice", "web")
        assert entry.details["media"] == 2 and entry.details["self"] is True
    thread = client.get(f"/u/bob/m/{world['b1']}").text
    assert "Deleted comment" in thread and "Thank you!" in thread and "Lovely light." not in thread
    # The username is held back: registration refuses it with a sentence.
    with rt.sessions() as session, pytest.raises(Conflict) as refused:
        accounts.create_user(session, "alice", "new-alice@example.com", PASSWORD)
    assert refused.value.code == "username_held"
    assert "belonged to an account deleted lately and is held back until" in refused.value.message
    page = client.post("/auth/register", data={"username": "alice", "email": "x@example.com", "password": PASSWORD,
                                                "csrf_token": "test-csrf"},
                       cookies={"kiln_csrf": "test-csrf"}, follow_redirects=False)
    assert page.status_code == 409 and "held back until" in page.text


def test_a_hold_that_has_ended_lets_the_name_be_taken(rt: Runtime) -> None:
    with rt.sessions() as session:
        session.add(HeldUsername(username="gone", until=utcnow() - dt.timedelta(seconds=1)))
        session.commit()
        assert accounts.create_user(session, "gone", "gone@example.com", PASSWORD).username == "gone"


def test_api_deletion_needs_a_write_token_and_admins_delete_others(rt: Runtime, client: TestClient, world) -> None:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        bob = session.get(User, world["bob"])
        read = accounts.create_api_token(session, bob, "r", "read")  # type: ignore[arg-type]
        write = accounts.create_api_token(session, bob, "w", "write")  # type: ignore[arg-type]
        session.commit()
    client.cookies.clear()
    denied = client.request("DELETE", "/api/v1/account", json={"password": PASSWORD},
                            headers={"Authorization": f"Bearer {read}"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "read_only_token"
    done = client.request("DELETE", "/api/v1/account", json={"password": PASSWORD},
                          headers={"Authorization": f"Bearer {write}"})
    assert done.status_code == 200, done.text
    assert done.json()["username"] == "bob" and done.json()["media"] == 1 and done.json()["held_until"]
    assert client.get("/api/v1/account/export", headers={"Authorization": f"Bearer {write}"}).status_code == 401
    # An admin may delete someone else (no password); a moderator may not; nobody deletes an admin here.
    admin_id, mod_id = person(rt, "ada"), person(rt, "mo")
    with rt.sessions() as session:
        admin, mod = session.get(User, admin_id), session.get(User, mod_id)
        alice = session.get(User, world["alice"])
        assert admin is not None and mod is not None and alice is not None
        accounts.grant(admin, "admin")
        accounts.grant(mod, "moderator")
        session.commit()
        with pytest.raises(PermissionDenied):
            leaving.delete_account(rt, session, mod, alice, via="web")
        with pytest.raises(PermissionDenied):
            leaving.delete_account(rt, session, alice, admin, via="web")
        done_by_admin = leaving.delete_account(rt, session, admin, alice, reason="asked by mail", via="web")
        assert done_by_admin.media == 2
        entry = session.scalars(select(AuditEntry).where(AuditEntry.target_label == "alice")).one()
        assert (entry.actor_name, entry.reason, entry.details["self"]) == ("ada", "asked by mail", False)


def test_cli_exports_and_deletes(rt: Runtime, kiln, world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "alice.zip"
    result = kiln("users", "export", "alice", "--out", str(out))
    assert "2 files" in result.output
    with rt.sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.export")).one()
        assert (entry.target_label, entry.via, entry.details) == ("alice", "cli", {"files": 2})
    archive = read_zip(out.read_bytes())
    for item in json.loads(archive.read("media.json")):
        assert hashlib.sha256(archive.read(item["file"])).hexdigest() == item["sha256"]
    refused = kiln("users", "delete", "alice", ok=False, input="n\n")
    assert refused.exit_code != 0
    with rt.sessions() as session:
        assert session.get(User, world["alice"]) is not None
    result = kiln("users", "delete", "alice", "--yes", "--reason", "asked by mail", "--json")
    data = json.loads(result.output)
    assert (data["username"], data["media"], data["comments"], data["files_left"]) == ("alice", 2, 1, 0)
    with rt.sessions() as session:
        assert session.get(User, world["alice"]) is None
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.delete")).one()
        assert entry.via == "cli" and entry.actor_name.startswith("cli:") and entry.reason == "asked by mail"
    assert kiln("users", "delete", "alice", "--yes", ok=False).exit_code != 0


def test_twenty_items_on_swift_exported_then_deleted_leave_no_object(tmp_path, db_url) -> None:  # type: ignore[no-untyped-def]
    """The issue's case on a real Swift: every store on Swift; the zip's originals match their
    checksums; after deletion no object of theirs remains in any container (listed directly)."""
    from swiftclient.client import Connection

    from tests.conftest import inline_runtime, make_settings
    from tests.storage.conftest import backend_config

    config = backend_config("swift", tmp_path)
    settings = make_settings(tmp_path / "data", db_url, storage={
        "backends": {"remote": config}, "queue": "remote", "originals": "remote", "public": "remote"})
    swift = Connection(authurl=config["auth_url"], user=config["user"], key=config["key"], timeout=30, retries=1)

    def objects() -> set[str]:
        found = set()
        for store in STORE_NAMES:
            try:
                _headers, listing = swift.get_container(f"{config['prefix']}-{store}", full_listing=True)
            except Exception as exc:  # a container never written to does not exist
                if getattr(exc, "http_status", None) == 404:
                    continue
                raise
            found.update(f"{store}:{row['name']}" for row in listing)
        return found

    for rt in inline_runtime(settings):
        assert not rt.stores.originals.is_local
        owner, other = person(rt, "swifty"), person(rt, "stays")
        media_ids = [upload(rt, owner, shade) for shade in range(20)]
        kept = upload(rt, other, 200)
        with rt.sessions() as session:
            rows = {m.id: m for m in session.scalars(select(MediaEntry).where(MediaEntry.owner_id == owner))}
            assert {m.state for m in rows.values()} == {"processed"} and {m.original_store for m in rows.values()} == {
                "originals"}
            plan = export.plan(rt, session, session.get(User, owner), "http://kiln.test")  # type: ignore[arg-type]
        archive = read_zip(b"".join(export.zip_stream(rt, plan)))
        media = json.loads(archive.read("media.json"))
        assert sorted(m["id"] for m in media) == sorted(media_ids)
        for item in media:
            assert hashlib.sha256(archive.read(item["file"])).hexdigest() == rows[item["id"]].sha256
        before = objects()
        theirs = {f"{m.original_store}:{'/'.join(m.original_key)}" for m in rows.values()}
        theirs |= {f"public:{'/'.join(r.key)}" for m in rows.values() for r in m.renditions}
        assert len(theirs) >= 40 and theirs <= before  # an original and renditions for each of the twenty
        with rt.sessions() as session:
            done = leaving.delete_account(rt, session, None, session.get(User, owner), via="cli")  # type: ignore[arg-type]
        assert (done.media, done.files_left) == (20, 0)
        after = objects()
        assert not theirs & after
        assert after == before - theirs  # nothing else of theirs was there; everyone else's is still there
        assert keys_of(rt, [kept]) and all(any(o.endswith(key) for o in after) for key in keys_of(rt, [kept]))
        report = gc(rt.sessions, rt.stores, dry_run=True, grace=0)
        assert report.unreferenced == {name: [] for name in STORE_NAMES}


def test_files_a_store_could_not_delete_are_left_for_gc(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The account goes whatever the store does after the commit; what stayed is what gc finds."""
    from kiln.storage.base import StorageError

    owner = person(rt, "flaky")
    media_id = upload(rt, owner, 5)
    left = keys_of(rt, [media_id])
    public = rt.stores.public

    def refuse(*args: object) -> None:
        raise StorageError("The store is away.")

    monkeypatch.setattr(public, "delete", refuse)
    monkeypatch.setattr(public, "delete_dir", refuse)
    with rt.sessions() as session:
        done = leaving.delete_account(rt, session, None, session.get(User, owner), via="cli")  # type: ignore[arg-type]
    assert done.files_left > 0
    with rt.sessions() as session:
        assert session.get(User, owner) is None
    monkeypatch.undo()
    report = gc(rt.sessions, rt.stores, dry_run=True, grace=0)
    found = {"/".join(key) for key in report.unreferenced["public"]}
    assert found and found <= set(left)
    assert report.unreferenced["originals"] == []  # the original went
