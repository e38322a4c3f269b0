"""Registration modes over HTTP (open, approval, invite, closed), invite links, blocked e-mail domains and
new accounts' comments held for a moderator, with the mails each sends."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kiln.accounts.models import Invite, RegistrationRequest, User, UserPrivilege
from kiln.app import create_app
from kiln.config import Settings
from kiln.db.base import utcnow
from kiln.moderation.models import AuditEntry
from kiln.runtime import Runtime
from kiln.social.models import Comment, Notification
from tests.conftest import BASE_URL, inline_runtime, mails, make_settings
from tests.social_kit import api, log_in, person, post, text, upload

pytestmark = pytest.mark.db
PASSWORD = "correct horse"


@pytest.fixture
def site(tmp_path, db_url) -> Iterator[Callable[..., tuple[Runtime, TestClient]]]:
    """``site(**settings)``: a runtime and a client on a site with those settings."""
    opened: list[Any] = []

    def make(**overrides: Any) -> tuple[Runtime, TestClient]:
        options = {"require_email_verification": False, **overrides}
        runs = inline_runtime(make_settings(tmp_path / "data", db_url, **options))
        rt = next(runs)
        client = TestClient(create_app(rt.settings, rt), base_url=BASE_URL)
        client.__enter__()
        opened.append((runs, client))
        return rt, client

    yield make
    for runs, client in opened:
        client.__exit__(None, None, None)
        next(runs, None)


def sign_up(client: TestClient, name: str, email: str | None = None, **more: str):  # type: ignore[no-untyped-def]
    client.cookies.clear()
    client.cookies.set("kiln_csrf", "test-csrf")
    return post(client, "/auth/register", {"username": name, "email": email or f"{name}@example.com",
                                           "password": PASSWORD, **more})


def log_in_form(client: TestClient, name: str):  # type: ignore[no-untyped-def]
    client.cookies.clear()
    client.cookies.set("kiln_csrf", "test-csrf")
    return post(client, "/auth/login", {"username": name, "password": PASSWORD})


def moderator(rt: Runtime, name: str = "mona", role: str = "moderator") -> int:
    user_id = person(rt, name)
    with rt.sessions() as session:
        session.add(UserPrivilege(user_id=user_id, name=role))
        session.commit()
    return user_id


def audit_actions(rt: Runtime) -> list[str]:
    with rt.sessions() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def user_named(rt: Runtime, name: str) -> User | None:
    with rt.sessions() as session:
        return session.scalar(select(User).where(User.username == name))


@contextmanager
def no_mail_sent(settings: Settings) -> Iterator[None]:
    before = len(mails(settings))
    yield
    assert len(mails(settings)) == before


def test_the_old_switch_still_works_and_the_page_says_the_mode(site):
    rt, client = site(registration_open=False)
    assert rt.settings.registration == "closed"
    page = client.get("/auth/register")
    assert 'data-mode="closed"' in page.text and 'action="/auth/register"' not in page.text
    refused = sign_up(client, "carl")
    assert refused.status_code == 403 and user_named(rt, "carl") is None
    rt.settings.registration = "open"
    assert 'data-mode="open"' in client.get("/auth/register").text
    assert sign_up(client, "olga").status_code == 303 and user_named(rt, "olga") is not None


def test_approval_mode_from_request_to_mail(site):
    rt, client = site(registration="approval", registration_question="Which camera do you use?",
                      require_email_verification=True)
    page = client.get("/auth/register")
    assert 'data-mode="approval"' in page.text and "Which camera do you use?" in page.text
    assert sign_up(client, "anna").status_code == 422  # the question is unanswered
    asked = sign_up(client, "anna", answer="A Leica, mostly")
    assert asked.status_code == 200 and "waiting for a moderator" in asked.text
    assert "kiln_session" not in asked.cookies
    refused = log_in_form(client, "anna")
    assert refused.status_code == 403 and "waiting for approval" in refused.text
    sign_up(client, "boris", answer="I sell watches")
    assert user_named(rt, "boris").pending_approval  # type: ignore[union-attr]

    mod = moderator(rt)
    log_in(client, rt, person(rt, "nobody"))
    assert client.get("/admin/registrations").status_code == 403
    log_in(client, rt, mod)
    queue = client.get("/admin/registrations")
    assert "A Leica, mostly" in queue.text and "I sell watches" in queue.text
    with rt.sessions() as session:
        ids = {r.user.username: r.id for r in session.scalars(select(RegistrationRequest))}
    approved = post(client, f"/admin/registrations/{ids['anna']}/approve")
    assert approved.status_code == 303
    rejected = post(client, f"/admin/registrations/{ids['boris']}/reject", {"reason": "Spam, by the look of it"})
    assert rejected.status_code == 303
    assert post(client, f"/admin/registrations/{ids['boris']}/reject").status_code == 404  # decided already

    confirm = [m for m in mails(rt.settings) if m["to"] == "anna@example.com" and "/auth/verify?token=" in m["body"]]
    assert len(confirm) == 1  # the address can be confirmed while the request waits
    sent = {m["to"]: m for m in mails(rt.settings)}  # the newest mail to each
    assert "is approved" in sent["anna@example.com"]["subject"]
    assert f"{BASE_URL}/auth/login" in sent["anna@example.com"]["body"]
    assert "Spam, by the look of it" in sent["boris@example.com"]["body"]
    assert log_in_form(client, "anna").status_code == 303
    assert user_named(rt, "boris") is None  # the name and address are free again
    assert audit_actions(rt)[-2:] == ["registration.approve", "registration.reject"]
    assert "I sell watches" not in client.get("/admin/registrations").text


def test_invite_mode_use_count_expiry_and_revoking(site):
    rt, client = site(registration="invite")
    page = client.get("/auth/register")
    assert 'data-mode="invite"' in page.text and 'action="/auth/register"' not in page.text
    assert sign_up(client, "ivan").status_code == 403

    admin = moderator(rt, "ada", "admin")
    log_in(client, rt, admin)
    assert post(client, "/invites", {"uses": "2", "days": "7"}).status_code == 303
    with rt.sessions() as session:
        code = session.scalars(select(Invite.code)).one()
    assert f"/auth/register?invite={code}" in client.get("/invites").text

    invited = client.get(f"/auth/register?invite={code}")
    assert "You were invited" in invited.text and "no-store" in invited.headers["cache-control"]
    assert sign_up(client, "ivan", invite=code).status_code == 303
    assert sign_up(client, "irma", invite=code).status_code == 303
    used_up = sign_up(client, "igor", invite=code)
    assert used_up.status_code == 403 and "used as many times as it may be" in used_up.text
    assert user_named(rt, "igor") is None
    assert "used as many times" in client.get(f"/auth/register?invite={code}").text

    log_in(client, rt, admin)
    post(client, "/invites", {"uses": "5", "days": "1"})
    with rt.sessions() as session:
        second = session.scalars(select(Invite).order_by(Invite.id.desc())).first()
        second.expires = utcnow() - dt.timedelta(minutes=1)  # type: ignore[union-attr]
        expired_code = second.code  # type: ignore[union-attr]
        session.commit()
    assert "has expired" in sign_up(client, "igor", invite=expired_code).text
    log_in(client, rt, admin)
    post(client, "/invites", {"uses": "5", "days": "never"})
    with rt.sessions() as session:
        third = session.scalars(select(Invite).order_by(Invite.id.desc())).first()
        assert third is not None and third.expires is None
    assert post(client, f"/invites/{third.id}/revoke").status_code == 303
    assert "withdrawn" in sign_up(client, "igor", invite=third.code).text
    bad = client.get("/auth/register?invite=made-up")
    assert bad.status_code == 403 and "not valid" in bad.text
    assert audit_actions(rt).count("invite.create") == 3 and "invite.revoke" in audit_actions(rt)


def test_invites_in_the_api_and_by_users_when_allowed(site):
    rt, client = site(registration="invite")
    user = person(rt, "ulla")
    log_in(client, rt, user)
    refused = api(client, "POST", "/api/v1/invites", json={"uses": 1, "days": 3})
    assert refused.status_code == 403 and "Only administrators" in refused.json()["error"]["message"]
    rt.settings.invites_by_users = True
    log_in(client, rt, user)
    made = api(client, "POST", "/api/v1/invites", json={"uses": 3, "days": None})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["state"] == "active" and body["expires"] is None and body["max_uses"] == 3
    assert body["url"] == f"{BASE_URL}/auth/register?invite={body['code']}"
    listed = api(client, "GET", "/api/v1/invites").json()["items"]
    assert [i["id"] for i in listed] == [body["id"]]
    log_in(client, rt, person(rt, "otto"))
    assert api(client, "GET", "/api/v1/invites").json()["items"] == []  # only one's own
    assert api(client, "DELETE", f"/api/v1/invites/{body['id']}").status_code == 404
    log_in(client, rt, user)
    assert api(client, "DELETE", f"/api/v1/invites/{body['id']}").status_code == 204
    assert api(client, "GET", "/api/v1/invites").json()["items"][0]["state"] == "revoked"
    assert api(client, "POST", "/api/v1/invites", json={"uses": 0}).status_code == 422


def test_an_invite_skips_the_wait_in_approval_mode(site):
    rt, client = site(registration="approval", registration_question="Why?")
    log_in(client, rt, moderator(rt, "ada", "admin"))
    post(client, "/invites", {"uses": "1", "days": "7"})
    with rt.sessions() as session:
        code = session.scalars(select(Invite.code)).one()
    assert "without waiting" in client.get(f"/auth/register?invite={code}").text
    assert sign_up(client, "vera", invite=code).status_code == 303  # no answer needed, logged in at once
    assert not user_named(rt, "vera").pending_approval  # type: ignore[union-attr]


def test_blocked_email_domains_and_their_subdomains(site):
    rt, client = site(blocked_email_domains=["Spam.example"])
    for address in ("a@spam.example", "b@mail.spam.example", "c@SPAM.EXAMPLE"):
        refused = sign_up(client, "spammer", address)
        assert refused.status_code == 422 and "cannot be used to sign up" in refused.text, address
    assert user_named(rt, "spammer") is None
    assert sign_up(client, "fine", "fine@notspam.example").status_code == 303


def test_new_accounts_first_comments_wait_for_a_moderator(site):
    rt, client = site(hold_first_comments=1)
    owner = person(rt, "olivia")
    media_id = upload(rt, owner, "Harbour")
    url = f"/u/olivia/m/{media_id}"
    mod = moderator(rt)
    log_in(client, rt, mod)  # a moderator's comments are never held: the thread is not empty
    post(client, f"/m/{media_id}/comments", {"body": "Welcome, everyone"})
    client.cookies.clear()
    assert "Welcome, everyone" in client.get(url).text  # the shared body is kept before the held comment
    newcomer = person(rt, "nina")
    log_in(client, rt, newcomer)
    posted = post(client, f"/m/{media_id}/comments", {"body": "First post, please approve"})
    assert posted.status_code == 303 and posted.headers["location"].endswith("#held-comments")
    mine = client.get(url).text
    assert "Waiting for approval" in mine and "First post, please approve" in mine

    log_in(client, rt, person(rt, "otto"))
    assert "First post, please approve" not in client.get(url).text
    client.cookies.clear()
    anonymous = text(client.get(url).text)
    assert "First post, please approve" not in anonymous and "1 comment" in anonymous
    listed = api(client, "GET", f"/api/v1/media/{media_id}/comments").json()["items"]
    assert [c["body"] for c in listed] == ["Welcome, everyone"]
    with rt.sessions() as session:
        held_id = session.scalars(select(Comment.id).where(Comment.held.is_(True))).one()
        # the owner is told of the moderator's comment, and of the held one only once it is approved
        assert session.scalar(select(func.count(Notification.id))) == 1
    assert client.get(f"/m/{media_id}/comments/{held_id}").status_code == 404

    log_in(client, rt, mod)
    assert "First post, please approve" in client.get("/admin/comments/held").text
    assert post(client, f"/admin/comments/held/{held_id}/approve").status_code == 303
    client.cookies.clear()
    shown = client.get(url).text
    assert "First post, please approve" in text(shown) and "2 comments" in text(shown)
    with rt.sessions() as session:
        assert session.scalar(select(func.count(Notification.id)).where(Notification.type == "comment")) == 2

    log_in(client, rt, newcomer)  # one approved comment is enough now
    post(client, f"/m/{media_id}/comments", {"body": "Second, shown at once"})
    client.cookies.clear()
    assert "Second, shown at once" in client.get(url).text

    log_in(client, rt, person(rt, "spammy"))
    by_api = api(client, "POST", f"/api/v1/media/{media_id}/comments", json={"body": "Buy watches"})
    assert by_api.status_code == 201 and by_api.json()["held"] is True
    with rt.sessions() as session:
        spam_id = session.scalars(select(Comment.id).where(Comment.held.is_(True))).one()
    log_in(client, rt, person(rt, "pete"))
    assert post(client, f"/admin/comments/held/{spam_id}/reject").status_code == 403
    log_in(client, rt, moderator(rt, "max"))
    assert post(client, f"/admin/comments/held/{spam_id}/reject", {"reason": "spam"}).status_code == 303
    with rt.sessions() as session:
        assert session.get(Comment, spam_id) is None
    assert audit_actions(rt)[-2:] == ["comment.approve", "comment.reject"]
    assert re.search(r"No comment is waiting", client.get("/admin/comments/held").text)
