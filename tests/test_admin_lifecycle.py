"""The account lifecycle on the admin person page: people waiting for their sign-up to be approved
(a state of their own on /admin/users, in the API and in ``kiln users list``), and administrators
downloading a person's data and deleting their account (audited; moderators refused)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kiln.accounts import services as accounts
from kiln.accounts import signup
from kiln.accounts.models import HeldUsername, RegistrationRequest, User, UserPrivilege
from kiln.media.models import MediaEntry
from kiln.moderation.models import AuditEntry
from kiln.runtime import Runtime
from tests.social_kit import log_in, person, post, text, upload

pytestmark = pytest.mark.db


@pytest.fixture
def cast(rt: Runtime) -> dict[str, int]:
    """alice (two items), mona (moderator), ada (admin), and paula, who signed up in approval mode."""
    ids = {"alice": person(rt, "alice"), "mona": person(rt, "mona"), "ada": _admin(rt, "ada")}
    with rt.sessions() as session:
        mona = session.get(User, ids["mona"])
        assert mona is not None
        mona.privileges.append(UserPrivilege(name="moderator"))
        approval = rt.settings.model_copy(update={"registration": "approval", "registration_question": "",
                                                   "require_email_verification": False})
        done = signup.register(session, approval, username="paula", email="paula@example.com",
                               password="correct horse battery", answer="I paint.")
        assert done.pending
        ids["paula"] = done.user.id
        session.commit()
    ids["a1"] = upload(rt, ids["alice"], "First")
    ids["a2"] = upload(rt, ids["alice"], "Second", visibility="private")
    return ids


def _admin(rt: Runtime, name: str) -> int:
    with rt.sessions() as session:
        user = accounts.create_user(session, name, f"{name}@example.com", "correct horse", verified=True, admin=True)
        session.commit()
        return user.id


def _names(client: TestClient, **params: str) -> list[str]:
    resp = client.get("/api/v1/admin/users", params=params)
    assert resp.status_code == 200, resp.text
    return [u["username"] for u in resp.json()["users"]]


def _entries(rt: Runtime, action: str) -> list[AuditEntry]:
    with rt.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_people_waiting_for_approval_have_their_own_state(client: TestClient, rt: Runtime, cast: dict[str, int],
                                                          kiln) -> None:  # type: ignore[no-untyped-def]
    log_in(client, rt, cast["mona"])
    assert _names(client, state="pending") == ["paula"]
    assert "paula" not in _names(client, state="active")  # confirmed address, but they cannot log in yet
    listed = {u["username"]: u for u in client.get("/api/v1/admin/users").json()["users"]}
    assert listed["paula"]["pending_approval"] is True and listed["alice"]["pending_approval"] is False
    page = client.get("/admin/users", params={"state": "pending"})
    assert 'data-user="paula"' in page.text and 'data-user="alice"' not in page.text
    assert "Waiting for approval" in text(page.text) and 'href="/admin/registrations"' in page.text
    page = client.get("/admin/users/paula")
    assert "data-pending" in page.text and "I paint." in page.text
    with rt.sessions() as session:
        request_id = session.scalar(select(RegistrationRequest.id).where(RegistrationRequest.user_id == cast["paula"]))
    assert f'action="/admin/registrations/{request_id}/approve"' in page.text
    assert "data-pending" not in client.get("/admin/users/alice").text
    listed_cli = json.loads(kiln("users", "list", "--state", "pending", "--json").output)
    assert [(p["username"], p["pending_approval"]) for p in listed_cli] == [("paula", True)]
    # Approving from the person page's form takes them out of the state.
    assert post(client, f"/admin/registrations/{request_id}/approve", {"reason": ""}).status_code == 303
    assert _names(client, state="pending") == []
    assert "paula" in _names(client, state="active")
    assert "data-pending" not in client.get("/admin/users/paula").text


def test_an_admin_downloads_a_persons_data_and_it_is_audited(client: TestClient, rt: Runtime,
                                                             cast: dict[str, int]) -> None:
    log_in(client, rt, cast["ada"])
    page = client.get("/admin/users/alice")
    assert 'action="/admin/users/alice/export"' in page.text and 'action="/admin/users/alice/delete"' in page.text
    resp = client.get("/admin/users/alice/export")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    assert 'filename="kiln-alice-export.zip"' in resp.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(resp.content))
    assert archive.testzip() is None
    media = json.loads(archive.read("media.json"))
    with rt.sessions() as session:
        sums = {m.id: m.sha256 for m in session.scalars(select(MediaEntry)
                                                        .where(MediaEntry.owner_id == cast["alice"])).unique()}
    assert {m["id"] for m in media} == {cast["a1"], cast["a2"]}  # the private one too
    for item in media:
        assert hashlib.sha256(archive.read(item["file"])).hexdigest() == sums[item["id"]]
    assert json.loads(archive.read("profile.json"))["username"] == "alice"
    [entry] = _entries(rt, "user.export")
    assert (entry.actor_id, entry.target_id, entry.via) == (cast["ada"], cast["alice"], "web")
    assert entry.details["files"] == 2
    assert client.get("/admin/users/nobody/export").status_code == 404


def test_moderators_and_others_may_neither_download_nor_delete(client: TestClient, rt: Runtime,
                                                               cast: dict[str, int]) -> None:
    log_in(client, rt, cast["mona"])
    page = client.get("/admin/users/alice")
    assert page.status_code == 200 and "/admin/users/alice/export" not in page.text
    assert "/admin/users/alice/delete" not in page.text
    resp = client.get("/admin/users/alice/export")
    assert resp.status_code == 403 and "Only administrators can download" in resp.text
    assert post(client, "/admin/users/alice/delete", {"reason": "x", "confirm": "alice"}).status_code == 403
    log_in(client, rt, cast["alice"])
    assert client.get("/admin/users/ada/export").status_code == 403
    client.cookies.clear()
    assert client.get("/admin/users/alice/export", follow_redirects=False).status_code == 303
    assert _entries(rt, "user.export") == [] and _entries(rt, "user.delete") == []
    with rt.sessions() as session:
        assert session.get(User, cast["alice"]) is not None


def test_deleting_needs_the_typed_username_and_a_reason(client: TestClient, rt: Runtime,
                                                        cast: dict[str, int]) -> None:
    log_in(client, rt, cast["ada"])
    resp = post(client, "/admin/users/alice/delete", {"reason": "asked by mail", "confirm": "alicia"})
    assert resp.status_code == 422
    assert "Type the username alice exactly to confirm; the account was not deleted." in text(resp.text)
    resp = post(client, "/admin/users/alice/delete", {"reason": "  ", "confirm": "alice"})
    assert resp.status_code == 422 and "Give a reason" in text(resp.text)
    resp = post(client, "/admin/users/ada/delete", {"reason": "x", "confirm": "ada"})
    assert resp.status_code == 403  # not on oneself (that needs the password, on the account page)
    _admin(rt, "otto")
    resp = post(client, "/admin/users/otto/delete", {"reason": "x", "confirm": "otto"})
    assert resp.status_code == 403 and "take away admin first" in text(resp.text)
    assert "take away admin first" in text(client.get("/admin/users/otto").text)
    assert _entries(rt, "user.delete") == []
    with rt.sessions() as session:
        assert session.get(User, cast["alice"]) is not None


def test_an_admin_deletes_an_account_with_its_files_and_it_is_audited(client: TestClient, rt: Runtime,
                                                                     cast: dict[str, int]) -> None:
    with rt.sessions() as session:
        keys = [(m.original_store, list(m.original_key)) for m in
                session.scalars(select(MediaEntry).where(MediaEntry.owner_id == cast["alice"]))]
    assert len(keys) == 2 and all(rt.stores.by_name(store).exists(key) for store, key in keys)
    log_in(client, rt, cast["ada"])
    resp = post(client, "/admin/users/alice/delete", {"reason": "asked by mail", "confirm": " Alice "})
    assert resp.status_code == 303 and resp.headers["location"] == "/admin/users"
    assert "The account alice is deleted" in text(client.get("/admin/users").text)
    with rt.sessions() as session:
        assert session.scalar(select(User).where(User.username == "alice")) is None
        assert session.scalar(select(MediaEntry).where(MediaEntry.owner_id == cast["alice"])) is None
        assert session.get(HeldUsername, "alice") is not None
    assert not any(rt.stores.by_name(store).exists(key) for store, key in keys)
    [entry] = _entries(rt, "user.delete")
    assert (entry.actor_id, entry.target_label, entry.reason, entry.via) == (cast["ada"], "alice", "asked by mail",
                                                                             "web")
    assert entry.details["media"] == 2
    assert client.get("/admin/users/alice").status_code == 404
