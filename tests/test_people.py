"""Bans, privileges taken away and given back, warnings, roles and limits (kiln.moderation.people):
each change writes its audit entry; a ban or suspension for a time ends by itself when its time has
passed; a banned person's sessions and tokens stop at once and they are told why and until when."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.support import NullTranslations, Translations
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from kiln import i18n
from kiln.accounts import services as accounts
from kiln.accounts.models import User, UserPrivilege, not_banned
from kiln.db.base import utcnow
from kiln.errors import Conflict, InvalidInput, PermissionDenied
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.moderation import audit, people
from kiln.moderation.models import AuditEntry
from kiln.runtime import Runtime
from kiln.social import comments, favourites, follows
from kiln.social.models import Notification
from tests.social_kit import log_in, person, upload

pytestmark = pytest.mark.db

BANNED_DE = "Dieses Konto ist gesperrt bis %(until)s. Angegebener Grund: %(reason)s"


@pytest.fixture
def german(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    catalog = Catalog(locale="de", domain=i18n.DOMAIN)
    catalog.add("This account is banned until %(until)s. The reason given: %(reason)s", BANNED_DE)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    de = Translations(fp=buffer, domain=i18n.DOMAIN)
    monkeypatch.setattr(i18n, "_available", lambda: frozenset({"en", "de"}))
    monkeypatch.setattr(i18n, "translations", lambda code: de if code == "de" else NullTranslations())
    yield


def _user(session, user_id: int) -> User:  # type: ignore[no-untyped-def]
    user = session.get(User, user_id)
    assert user is not None
    return user


def _moderator(rt: Runtime, name: str = "mona") -> int:
    with rt.sessions() as session:
        user = accounts.create_user(session, name, f"{name}@example.com", "correct horse", verified=True)
        user.privileges.append(UserPrivilege(name="moderator"))
        session.commit()
        return user.id


def _actions(rt: Runtime) -> list[tuple[str, str, str]]:
    with rt.sessions() as session:
        return [(e.action, e.actor_name, e.reason) for e in
                reversed(audit.page(session, audit.AuditFilter(target_type="user")))]


def test_a_ban_for_a_day_stops_sessions_and_login_then_ends_by_itself(rt: Runtime, german: None) -> None:
    mod_id, bert_id = _moderator(rt), person(rt, "bert", locale="de")
    with rt.sessions() as session:
        cookie = accounts.start_session(session, _user(session, bert_id))
        session.commit()
    with rt.sessions() as session:
        until = people.ban(session, _user(session, mod_id), _user(session, bert_id), days=1, reason="spam links",
                           via="web")
        session.commit()
    assert until is not None and dt.timedelta(hours=23) < until - utcnow() <= dt.timedelta(days=1)
    with rt.sessions() as session:
        bert = _user(session, bert_id)
        assert bert.banned_now and not bert.is_active
        assert accounts.session_user(session, cookie) is None  # at once
        with pytest.raises(accounts.Banned) as refused:
            accounts.authenticate(session, "bert", "correct horse")
        assert refused.value.status == 403
        # In bert's language, whatever the request's: the sentence and the date ("Dezember"...).
        with i18n.use_locale("en"):
            said = refused.value.message
        assert said.startswith("Dieses Konto ist gesperrt bis ") and "spam links" in said
        assert i18n.format_datetime(until) not in said  # the English date...
        with i18n.use_locale("de"):
            assert i18n.format_datetime(until) in said  # ...is said the German way
        with pytest.raises(accounts.BadCredentials):  # a wrong password says nothing about the ban
            accounts.authenticate(session, "bert", "wrong horse")
        # Banned people cannot post, even through a service called directly.
        media = session.get(MediaEntry, upload(rt, mod_id, "mona's"))
        assert media is not None
        with pytest.raises(PermissionDenied):
            media_service.check_can_upload(bert)
        assert comments.refusal(media, bert) is not None
        with pytest.raises(PermissionDenied):
            favourites.favourite(session, bert, media)
        with pytest.raises(PermissionDenied):
            follows.follow(session, bert, _user(session, mod_id))
    # A day later (the clock moved by editing the row): the ban no longer counts, nobody acted.
    with rt.sessions() as session:
        session.execute(update(User).where(User.id == bert_id).values(banned_until=utcnow() - dt.timedelta(seconds=1)))
        session.commit()
    with rt.sessions() as session:
        bert = _user(session, bert_id)
        assert bert.banned and not bert.banned_now and bert.is_active
        assert accounts.session_user(session, cookie) is not None
        assert accounts.authenticate(session, "bert", "correct horse").id == bert_id
        media_service.check_can_upload(bert)
        assert session.scalar(select(User.id).where(User.id == bert_id, not_banned())) == bert_id
    assert _actions(rt) == [("ban", "mona", "spam links")]
    with rt.sessions() as session:
        [entry] = session.scalars(select(AuditEntry)).all()
        assert entry.target_id == bert_id and entry.details["days"] == 1 and entry.via == "web"


def test_a_token_stops_working_at_once_and_says_why(rt: Runtime, client: TestClient) -> None:
    bert_id = person(rt, "bert")
    with rt.sessions() as session:
        token = accounts.create_api_token(session, _user(session, bert_id))
        session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/notifications", headers=auth).status_code == 200
    with rt.sessions() as session:
        people.ban(session, None, _user(session, bert_id), days=None, reason="a spam bot", via="cli")
        session.commit()
    refused = client.get("/api/v1/notifications", headers=auth)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "banned" and "for good" in error["message"] and "a spam bot" in error["message"]
    with rt.sessions() as session:
        people.unban(session, None, _user(session, bert_id), via="cli")
        session.commit()
    assert client.get("/api/v1/notifications", headers=auth).status_code == 200
    assert [a for a, _, _ in _actions(rt)] == ["ban", "unban"]
    assert _actions(rt)[0][1].startswith("cli:")


def test_the_login_page_tells_a_banned_person_why(rt: Runtime, client: TestClient) -> None:
    bert_id = person(rt, "bert")
    with rt.sessions() as session:
        people.ban(session, None, _user(session, bert_id), days=3, reason="rude to everyone", via="cli")
        session.commit()
    client.get("/auth/login")
    page = client.post("/auth/login", data={"username": "bert", "password": "correct horse",
                                            "csrf_token": client.cookies.get("kiln_csrf")})
    assert page.status_code == 403
    assert "banned until" in page.text and "rude to everyone" in page.text
    assert "kiln_session" not in page.headers.get("set-cookie", "")


def test_a_ban_never_shortens_one_in_force(rt: Runtime) -> None:
    bert_id = person(rt, "bert")
    with rt.sessions() as session:
        bert = _user(session, bert_id)
        assert people.ban(session, None, bert, days=None, reason="for good", via="cli") is None
        assert people.ban(session, None, bert, days=2, reason="again", via="cli") is None  # still for good
        people.unban(session, None, bert, via="cli")
        week = people.ban(session, None, bert, days=7, reason="a week", via="cli")
        assert people.ban(session, None, bert, days=1, reason="a day", via="cli") == week
        people.unban(session, None, bert, via="cli")
        with pytest.raises(Conflict):
            people.unban(session, None, bert, via="cli")
        for days in (0, -1, 3651, True):
            with pytest.raises(InvalidInput):
                people.ban(session, None, bert, days=days, reason="x", via="cli")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            people.ban(session, None, bert, days=1, reason="  ", via="cli")


def test_a_privilege_taken_for_a_time_comes_back_by_itself(rt: Runtime) -> None:
    mod_id, bert_id = _moderator(rt), person(rt, "bert")
    media_id = upload(rt, mod_id, "mona's")
    with rt.sessions() as session:
        mod, bert = _user(session, mod_id), _user(session, bert_id)
        media = session.get(MediaEntry, media_id)
        assert media is not None
        people.revoke(session, mod, bert, "commenter", days=1, reason="flame war", via="web")
        session.commit()
        assert not bert.has("commenter") and "commenter" not in bert.privilege_names
        assert [name for name, _ in bert.suspensions] == ["commenter"]
        assert comments.refusal(media, bert) is not None
        session.execute(update(UserPrivilege).where(UserPrivilege.user_id == bert_id)
                        .values(suspended_until=utcnow() - dt.timedelta(seconds=1)))
        session.commit()
        assert bert.has("commenter") and comments.refusal(media, bert) is None
        # For good: gone until someone gives it back.
        people.revoke(session, mod, bert, "uploader", days=None, reason="stolen pictures", via="web")
        session.commit()
        with pytest.raises(PermissionDenied):
            media_service.check_can_upload(bert)
        with pytest.raises(Conflict):  # nothing left to take for a time
            people.revoke(session, mod, bert, "uploader", days=3, reason="again", via="web")
        people.restore_privilege(session, mod, bert, "uploader", via="web")
        session.commit()
        media_service.check_can_upload(bert)
        with pytest.raises(Conflict):
            people.restore_privilege(session, mod, bert, "uploader", via="web")
        with pytest.raises(InvalidInput):
            people.revoke(session, mod, bert, "active", days=1, reason="x", via="web")
        # Granting a privilege suspended for a time gives it back (no second row).
        people.revoke(session, mod, bert, "reporter", days=5, reason="false reports", via="web")
        accounts.grant(bert, "reporter")
        session.commit()
        assert bert.has("reporter")
    assert [a for a, _, _ in _actions(rt)] == ["privilege.revoke", "privilege.revoke", "privilege.restore",
                                               "privilege.revoke"]


def test_a_warning_is_a_notification_mailed_at_once(rt: Runtime) -> None:
    mod_id, bert_id = _moderator(rt), person(rt, "bert")
    with rt.sessions() as session:
        people.warn(session, _user(session, mod_id), _user(session, bert_id), reason="Please tag your photos.",
                    via="web")
        session.commit()
    with rt.sessions() as session:
        note = session.scalar(select(Notification).where(Notification.user_id == bert_id))
        assert note is not None and note.type == "warning" and note.actor_id is None and note.mail == "sent"
    [mail] = [p.read_text() for p in rt.settings.mail_dir.glob("*.eml")]
    assert "Please tag your photos." in mail and "bert@example.com" in mail and "mona" not in mail
    assert _actions(rt) == [("warn", "mona", "Please tag your photos.")]


def test_who_may_do_what(rt: Runtime) -> None:
    mod_id, other_mod, bert_id, carl_id = _moderator(rt), _moderator(rt, "mo2"), person(rt, "bert"), person(rt, "carl")
    with rt.sessions() as session:
        admin = accounts.create_user(session, "ada", "ada@example.com", "correct horse", verified=True, admin=True)
        session.commit()
        mod, bert, carl = _user(session, mod_id), _user(session, bert_id), _user(session, carl_id)
        for refused in (lambda: people.ban(session, bert, carl, days=1, reason="x", via="web"),  # not a moderator
                        lambda: people.ban(session, mod, mod, days=1, reason="x", via="web"),  # themselves
                        lambda: people.ban(session, mod, admin, days=1, reason="x", via="web"),  # an admin
                        lambda: people.warn(session, mod, _user(session, other_mod), reason="x", via="web"),
                        lambda: people.set_role(session, mod, carl, "moderator", True, via="web"),
                        lambda: people.set_upload_limit(session, mod, carl, 10, via="web"),
                        lambda: people.set_role(session, admin, admin, "admin", False, via="web")):
            with pytest.raises(PermissionDenied):
                refused()
        people.set_role(session, admin, carl, "admin", True, via="web")
        assert carl.is_admin and carl.has("moderator")
        with pytest.raises(Conflict):  # an admin is a moderator
            people.set_role(session, admin, carl, "moderator", False, via="web")
        people.set_role(session, admin, carl, "admin", False, via="web")
        people.set_role(session, admin, carl, "moderator", False, via="web")
        assert not carl.has("moderator")
        people.ban(session, admin, _user(session, other_mod), days=1, reason="abuse of power", via="web")
        people.set_upload_limit(session, admin, carl, 1024, via="web")
        session.commit()
        assert carl.upload_limit_bytes == 1024
    assert [a for a, _, _ in _actions(rt)] == ["privilege.grant", "privilege.revoke", "privilege.revoke", "ban",
                                               "user.upload_limit"]


def test_last_seen_is_written_at_most_every_ten_minutes(rt: Runtime, client: TestClient) -> None:
    bert_id = person(rt, "bert")
    log_in(client, rt, bert_id)
    assert client.get("/account").status_code == 200
    with rt.sessions() as session:
        first = _user(session, bert_id).last_seen
    assert first is not None and utcnow() - first < dt.timedelta(minutes=1)
    assert client.get("/account").status_code == 200
    with rt.sessions() as session:
        assert _user(session, bert_id).last_seen == first  # not written again
        session.execute(update(User).where(User.id == bert_id).values(last_seen=first - dt.timedelta(minutes=11)))
        session.commit()
    assert client.get("/account").status_code == 200
    with rt.sessions() as session:
        assert _user(session, bert_id).last_seen > first  # type: ignore[operator]


def test_the_users_commands(kiln, db_url: str) -> None:  # type: ignore[no-untyped-def]
    kiln("adduser", "bert", "--email", "bert@example.com", "--password", "correct horse")
    assert "bert is banned until 20" in kiln("users", "ban", "bert", "--days", "2", "--reason", "spam").output
    shown = json.loads(kiln("users", "show", "bert", "--json").output)
    assert shown["banned"] and shown["ban_reason"] == "spam" and shown["banned_until"]
    refused = kiln("users", "ban", "bert", "--days", "0", "--reason", "x", ok=False)
    assert refused.exit_code == 2 and "0" in refused.output
    assert "no longer banned" in kiln("users", "unban", "bert").output
    assert "Error: bert is not banned." in kiln("users", "unban", "bert", ok=False).output
    assert "for good" in kiln("users", "revoke", "bert", "uploader", "--reason", "stolen work").output
    kiln("users", "revoke", "bert", "commenter", "--days", "3", "--reason", "rude")
    shown = json.loads(kiln("users", "show", "bert", "--json").output)
    assert "uploader" not in shown["privileges"] and list(shown["suspended"]) == ["commenter"]
    kiln("users", "restore", "bert", "uploader")
    kiln("users", "warn", "bert", "--reason", "Mind your language.")
    kiln("users", "set-upload-limit", "bert", "10MiB")
    kiln("makeadmin", "bert")
    engine = create_engine(db_url)
    with Session(engine) as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [e.action for e in entries] == ["ban", "unban", "privilege.revoke", "privilege.revoke",
                                               "privilege.restore", "warn", "user.upload_limit", "privilege.grant"]
        assert {e.via for e in entries} == {"cli"} and all(e.actor_name.startswith("cli:") for e in entries)
        assert session.scalar(select(Notification.type)) == "warning"
    engine.dispose()
