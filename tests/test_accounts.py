"""Registration, verification, login, password reset and account changes, through the web pages."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from kiln.accounts.models import EmailToken, LoginSession, User
from kiln.db.base import utcnow
from tests.conftest import BASE_URL, csrf, form_post, last_link, mails, register

pytestmark = pytest.mark.db

RESEND_FORM = re.compile(r'<form method="post" action="/auth/resend"[^>]*>\s*'
                         r'<input type="hidden" name="csrf_token" value="[^"]+">\s*'
                         r'<input type="hidden" name="next" value="([^"]+)">')


def test_register_verify_login_logout(client, settings):
    register(client, settings, "alice", verify=False)
    sent = mails(settings)
    assert len(sent) == 1 and sent[0]["to"] == "alice@example.com"
    # Not yet verified: the banner asks for confirmation and uploads are refused.
    assert "Confirm your email address" in client.get("/").text
    page = client.post("/upload", data={"csrf_token": csrf(client, "/upload")},
                       files={"file": ("a.png", b"\x89PNG", "image/png")})
    assert page.status_code == 403
    assert "Confirm your email address first" in page.text
    assert client.get(last_link(settings, "/auth/verify")).status_code == 200
    assert "Confirm your email address" not in client.get("/").text
    # The token is single-use: opened again, it says what is true.
    reuse = client.get(last_link(settings, "/auth/verify"))
    assert reuse.status_code == 200 and "Your email address is already confirmed" in reuse.text
    form_post(client, "/auth/logout", {}, page="/")
    assert client.get("/upload", follow_redirects=False).status_code == 303
    resp = form_post(client, "/auth/login", {"username": "alice", "password": "correct horse"})
    assert resp.status_code == 200 and "Log out" in resp.text


def test_login_errors_are_the_same_for_unknown_users_and_wrong_passwords(client, settings):
    register(client, settings)
    form_post(client, "/auth/logout", {}, page="/")
    wrong = form_post(client, "/auth/login", {"username": "alice", "password": "nope nope"})
    unknown = form_post(client, "/auth/login", {"username": "nobody", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "The username or password is wrong." in wrong.text and "The username or password is wrong." in unknown.text


def test_registration_refuses_bad_and_duplicate_input(client, settings):
    token = csrf(client, "/auth/register")
    bad = client.post("/auth/register", data={"username": "../x", "email": "a@example.com",
                                              "password": "correct horse", "csrf_token": token})
    assert bad.status_code == 422 and "A username has 2 to 30 characters" in bad.text
    short = client.post("/auth/register", data={"username": "bob", "email": "b@example.com",
                                                "password": "short", "csrf_token": token})
    assert short.status_code == 422 and "at least 8 characters" in short.text
    register(client, settings, "carol")
    form_post(client, "/auth/logout", {}, page="/")
    dup = form_post(client, "/auth/register", {"username": "Carol", "email": "c2@example.com",
                                               "password": "correct horse"})
    assert dup.status_code == 409 and "is taken" in dup.text


def test_csrf_is_required_on_forms(client, settings):
    register(client, settings)
    no_token = client.post("/auth/logout")
    assert no_token.status_code == 403 and "Reload the page" in no_token.text
    foreign = client.post("/auth/logout", data={"csrf_token": csrf(client, "/")},
                          headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403


def test_password_reset_by_mail(client, settings, rt):
    register(client, settings)
    form_post(client, "/auth/logout", {}, page="/")
    resp = form_post(client, "/auth/forgot", {"email": "alice@example.com"})
    assert "If an account uses that address" in resp.text
    unknown = form_post(client, "/auth/forgot", {"email": "ghost@example.com"})
    assert unknown.text.count("If an account uses that address") == 1  # same answer, no mail
    link = last_link(settings, "/auth/reset")
    token = link.split("token=")[1]
    page = client.get(link)
    assert page.status_code == 200
    done = form_post(client, "/auth/reset", {"token": token, "password": "new password 1"}, page=link)
    assert done.status_code == 200 and "Your password is changed" in done.text
    again = form_post(client, "/auth/reset", {"token": token, "password": "another one 2"}, page=link)
    assert again.status_code == 400
    ok = form_post(client, "/auth/login", {"username": "alice@example.com", "password": "new password 1"})
    assert "Log out" in ok.text
    with rt.sessions() as session:
        stored = session.query(EmailToken).all()
        assert all(token not in (t.token_hash,) for t in stored)  # only hashes are stored


def test_change_password_ends_other_sessions(client, settings, rt):
    register(client, settings)
    with rt.sessions() as session:
        assert session.query(LoginSession).count() == 1
    resp = form_post(client, "/account/password", {"current": "correct horse", "password": "brand new pass"},
                     page="/account")
    assert resp.status_code == 200 and "Your password is changed" in resp.text
    with rt.sessions() as session:
        assert session.query(LoginSession).count() == 1  # the old one ended, this browser got a new one
    assert "Log out" in client.get("/account").text
    wrong = form_post(client, "/account/password", {"current": "nope nope", "password": "whatever 12"},
                      page="/account")
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text


def test_change_email_takes_effect_when_confirmed(client, settings, rt):
    register(client, settings)
    form_post(client, "/account/email", {"current": "correct horse", "email": "new@example.com"}, page="/account")
    with rt.sessions() as session:
        assert session.query(User).one().email == "alice@example.com"
    assert mails(settings)[-1]["to"] == "new@example.com"
    client.get(last_link(settings, "/auth/verify"))
    with rt.sessions() as session:
        assert session.query(User).one().email == "new@example.com"


def test_session_cookie_flags(client, settings):
    token = csrf(client, "/auth/register")
    resp = client.post("/auth/register", data={"username": "dave", "email": "d@example.com",
                                               "password": "correct horse", "csrf_token": token},
                       follow_redirects=False)
    cookie = resp.headers["set-cookie"].lower()
    assert "kiln_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert resp.headers["location"] == "/"


def test_login_next_only_goes_to_local_paths(client, settings):
    register(client, settings)
    form_post(client, "/auth/logout", {}, page="/")
    resp = client.post("/auth/login", data={"username": "alice", "password": "correct horse",
                                            "next": "//evil.example/x", "csrf_token": csrf(client)},
                       follow_redirects=False)
    assert resp.headers["location"] == "/"


def test_reset_links_expire_within_an_hour(client, settings, rt):
    import datetime as dt

    from kiln.db.base import utcnow
    register(client, settings)
    form_post(client, "/auth/logout", {}, page="/")
    form_post(client, "/auth/forgot", {"email": "alice@example.com"})
    link = last_link(settings, "/auth/reset")
    with rt.sessions() as session:
        row = session.query(EmailToken).filter_by(purpose="reset").one()
        assert row.expires - row.created <= dt.timedelta(hours=1)
        assert row.token_hash != link.split("token=")[1]
        row.expires = utcnow() - dt.timedelta(seconds=1)
        session.commit()
    late = form_post(client, "/auth/reset", {"token": link.split("token=")[1], "password": "new password 1"},
                     page=link)
    assert late.status_code == 400 and "This link has expired." in late.text
    assert '<a class="button" href="/auth/forgot">Ask for a new link</a>' in late.text


def test_login_gives_a_new_session_id_and_the_old_one_dies(client, settings):
    from fastapi.testclient import TestClient

    from tests.conftest import BASE_URL
    register(client, settings)
    before = client.cookies.get("kiln_session")
    resp = form_post(client, "/auth/login", {"username": "alice", "password": "correct horse"})
    after = client.cookies.get("kiln_session")
    assert resp.status_code == 200 and before and after and before != after
    stale = TestClient(client.app, base_url=BASE_URL, cookies={"kiln_session": before})
    assert stale.get("/account", follow_redirects=False).status_code == 303  # sent to the login page
    fresh = TestClient(client.app, base_url=BASE_URL, cookies={"kiln_session": after})
    assert fresh.get("/account").status_code == 200


def test_password_change_and_reset_end_every_other_session_and_void_reset_links(client, settings):
    from fastapi.testclient import TestClient

    from tests.conftest import BASE_URL
    register(client, settings)
    other = TestClient(client.app, base_url=BASE_URL)  # the same person on another device
    form_post(other, "/auth/login", {"username": "alice", "password": "correct horse"})
    assert other.get("/account").status_code == 200
    form_post(TestClient(client.app, base_url=BASE_URL), "/auth/forgot", {"email": "alice@example.com"})
    pending = last_link(settings, "/auth/reset")
    before = client.cookies.get("kiln_session")
    form_post(client, "/account/password", {"current": "correct horse", "password": "brand new pass"},
              page="/account")
    assert client.cookies.get("kiln_session") != before
    assert client.get("/account").status_code == 200
    assert other.get("/account", follow_redirects=False).status_code == 303
    old_link = form_post(other, "/auth/reset", {"token": pending.split("token=")[1], "password": "sneaky pass 1"},
                         page=pending)
    assert old_link.status_code == 400  # a reset link mailed before the change no longer works
    # A reset by mail logs out everywhere too.
    form_post(other, "/auth/forgot", {"email": "alice@example.com"})
    link = last_link(settings, "/auth/reset")
    form_post(other, "/auth/reset", {"token": link.split("token=")[1], "password": "third pass 3"}, page=link)
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_sign_up_says_once_that_the_address_needs_confirming_and_upload_offers_a_new_link(client, settings):
    token = csrf(client, "/auth/register")
    landed = client.post("/auth/register", data={"username": "alice", "email": "alice@example.com",
                                                 "password": "correct horse", "csrf_token": token})
    assert landed.status_code == 200
    notices = re.findall(r'<div class="notice[^"]*"[^>]*>(.*?)</div>', landed.text, re.S)
    assert len(notices) == 1 and "alice@example.com" in notices[0], notices  # one banner, not two
    assert RESEND_FORM.search(landed.text).group(1) == "/"

    # The upload page tells the truth instead of showing a form that would refuse the upload.
    upload = client.get("/upload")
    assert upload.status_code == 200
    assert 'id="upload-form"' not in upload.text and 'type="file"' not in upload.text
    assert "The upload form appears here once your email address is confirmed." in upload.text
    assert [m.group(1) for m in RESEND_FORM.finditer(upload.text)] == ["/upload"]  # one button

    # "Send a new link" mails one and comes back to the page, which now says so (once).
    sent = form_post(client, "/auth/resend", {"next": "/upload"}, page="/upload")
    assert sent.status_code == 200 and str(sent.url).endswith("/upload")
    assert len(mails(settings)) == 2
    assert sent.text.count("We sent a new link to alice@example.com") == 1
    assert client.post("/auth/resend", data={"next": "//evil.example", "csrf_token": csrf(client, "/upload")},
                       follow_redirects=False).headers["location"] == "/"

    assert client.get(last_link(settings, "/auth/verify")).status_code == 200
    assert 'id="upload-form"' in client.get("/upload").text


def test_confirmation_links_say_what_is_true_and_offer_the_next_step(client, settings, rt):
    register(client, settings, "alice", verify=False)
    first = last_link(settings, "/auth/verify")

    # A broken link, for someone logged in and not confirmed: a working button for a new link.
    bogus = client.get("/auth/verify?token=bogus")
    assert bogus.status_code == 400 and "This link is not valid" in bogus.text
    assert [m.group(1) for m in RESEND_FORM.finditer(bogus.text)] == ["/upload"]
    assert "Send me a new link" in bogus.text and "Ask for a new one" not in bogus.text
    # An expired one says that it expired, with the same button.
    with rt.sessions() as session:
        session.query(EmailToken).one().expires = utcnow() - dt.timedelta(seconds=1)
        session.commit()
    late = client.get(first)
    assert late.status_code == 400 and "This link has expired." in late.text and RESEND_FORM.search(late.text)
    form_post(client, "/auth/resend", {"next": "/upload"}, page="/upload")
    fresh = last_link(settings, "/auth/verify")
    confirmed = client.get(fresh)
    assert str(confirmed.url).endswith("/upload") and "your email address is confirmed" in confirmed.text

    # Opened again, or an older link: already confirmed, and where to go next. Not "invalid".
    for link in (fresh, first):
        again = client.get(link)
        assert again.status_code == 200, link
        assert "Your email address is already confirmed" in again.text and 'href="/upload"' in again.text
        assert "not valid" not in again.text and not RESEND_FORM.search(again.text)
    # A confirmed person with some other broken link needs no new one.
    assert "is confirmed already, so you need no new link" in client.get("/auth/verify?token=x").text

    # Anonymous visitors: a used link says its address is confirmed and offers to log in; a broken
    # one offers to log in. Neither names the account or offers to mail anyone.
    anonymous = TestClient(client.app, base_url=BASE_URL)
    used = anonymous.get(fresh)
    assert used.status_code == 200 and "already confirmed" in used.text
    assert 'href="/auth/login?next=/upload"' in used.text
    broken = anonymous.get("/auth/verify?token=bogus")
    assert broken.status_code == 400 and 'href="/auth/login?next=/upload"' in broken.text
    for page in (used, broken):
        assert "alice" not in page.text and not RESEND_FORM.search(page.text)


def test_a_reset_revokes_every_api_token_and_a_change_offers_to(client, settings, rt):
    """A reset is how a person takes back an account someone else may hold: sessions and API tokens
    end, and the mail says so. A password change keeps tokens unless asked to revoke them."""
    from tests.test_api import token_for

    register(client, settings)
    form_post(client, "/auth/logout", {}, page="/")
    kept = token_for(client, "alice")
    assert client.get("/api/v1/media", headers=kept).status_code == 200
    form_post(client, "/auth/login", {"username": "alice", "password": "correct horse"})
    form_post(client, "/account/password", {"current": "correct horse", "password": "second password"},
              page="/account")
    assert client.get("/api/v1/media?user=alice&state=queued", headers=kept).status_code == 200  # kept
    form_post(client, "/auth/logout", {}, page="/")
    stolen = {"Authorization": kept["Authorization"]}
    form_post(client, "/auth/forgot", {"email": "alice@example.com"})
    assert "revokes all of its API tokens" in mails(settings)[-1]["body"]
    link = last_link(settings, "/auth/reset")
    done = form_post(client, "/auth/reset", {"token": link.split("token=")[1], "password": "third password"},
                     page=link)
    assert "API token" in done.text
    refused = client.get("/api/v1/media?user=alice&state=queued", headers=stolen)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "bad_token"
    # On the account page, revoking is offered with a change of password.
    from kiln.accounts import services as accounts

    with rt.sessions() as session:
        second = {"Authorization": "Bearer " + accounts.create_api_token(
            session, accounts.get_user(session, "alice"), "laptop", "read")}
        session.commit()
    form_post(client, "/auth/login", {"username": "alice", "password": "third password"})
    assert 'name="revoke_tokens"' in client.get("/account").text
    changed = form_post(client, "/account/password", {"current": "third password", "password": "fourth password",
                                                      "revoke_tokens": "true"}, page="/account")
    assert "API tokens were revoked" in changed.text
    assert client.get("/api/v1/media?user=alice&state=queued", headers=second).status_code == 401


def test_the_addresses_people_type_lead_to_the_login_and_signup_pages(client):
    found = client.get("/login?next=/upload", follow_redirects=False)
    assert found.status_code == 308 and found.headers["location"] == "/auth/login?next=/upload"
    assert client.get("/register", follow_redirects=False).headers["location"] == "/auth/register"
    page = client.get("/login?next=/upload")
    assert page.status_code == 200 and 'name="password"' in page.text and 'value="/upload"' in page.text
