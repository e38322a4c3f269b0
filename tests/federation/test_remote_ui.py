"""The pages people see of federation: a profile shows its fediverse handle (to follow it from
Mastodon and other servers), and a remote reply has a button that blocks its author in one step,
returning to the reply with a message (a form: no JavaScript needed)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from kiln.accounts.models import User
from kiln.federation.models import RemoteBlock
from tests.federation.test_follow import follow_activity, post
from tests.federation.test_moderation import like
from tests.federation.test_publish import upload
from tests.federation.test_receive import deliver, page, reply

pytestmark = pytest.mark.db
HANDLE = "@alice@testserver"


def test_the_profile_shows_the_handle_to_follow_from_elsewhere(fed, fed_rt):
    html = fed.get("/u/alice").text
    shown = re.search(r'<p class="fediverse-handle">(.*?)</p>', html, re.S)
    assert shown is not None, html
    assert "Follow from Mastodon and other servers" in shown.group(1)
    assert f"<bdi>{HANDLE}</bdi>" in shown.group(1)  # a <code> that selects all at once (kiln.css)
    # The handle is what WebFinger answers for.
    found = fed.get("/.well-known/webfinger", params={"resource": "acct:" + HANDLE.lstrip("@")})
    assert found.status_code == 200 and found.json()["subject"] == "acct:" + HANDLE.lstrip("@")


def test_no_handle_when_federation_is_off(fed_rt, tmp_path, db_url):
    from fastapi.testclient import TestClient

    from kiln.app import create_app
    from tests.conftest import BASE_URL, inline_runtime, make_settings, register

    settings = make_settings(tmp_path / "off", db_url, federation={"enabled": False})
    for rt in inline_runtime(settings):
        with TestClient(create_app(rt.settings, rt), base_url=BASE_URL) as client:
            register(client, rt.settings, "bea")
            assert "fediverse-handle" not in client.get("/u/bea").text


def test_a_remote_reply_has_a_block_button_that_returns_to_it(fed, fed_rt, peer, tmp_path):
    from tests.social_kit import log_in

    media_id = upload(fed_rt, tmp_path, "Sunset")
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    # A reply carrying the button's marks in its text cannot make or unmake a button.
    text = "<p>Lovely!<!--/kiln-remote-block--> <!--kiln-remote-block--></p>"
    assert deliver(fed, fed_rt, peer, reply(peer, 1, page(media_id), text)) == "commented"
    anonymous = fed.get(f"/u/alice/m/{media_id}").text
    assert "@rita@127.0.0.1" in anonymous and "remote-block" not in anonymous and "Lovely!" in anonymous

    with fed_rt.sessions() as session:
        alice_id = session.scalars(select(User.id).where(User.username == "alice")).one()
    token = log_in(fed, fed_rt, alice_id)
    html = fed.get(f"/u/alice/m/{media_id}").text
    form = re.search(r'<form method="post" action="/account/blocks/remote" class="inline remote-block">(.*?)</form>',
                     html, re.S)
    assert form is not None, html
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(1)))
    assert fields["csrf_token"] == token and fields["account"] == peer.actor_id
    assert "Block <bdi class=\"handle\">@rita@127.0.0.1</bdi>" in form.group(1)
    assert html.count("kiln-remote-block") == 0  # the marks are gone from what is sent

    done = fed.post("/account/blocks/remote", data=fields, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/m/{media_id}/comments/{fields['comment']}"
    back = fed.get(done.headers["location"])
    assert back.status_code == 200 and f"/u/alice/m/{media_id}" in str(back.url)
    assert "You blocked @rita@127.0.0.1." in back.text
    with fed_rt.sessions() as session:
        assert session.scalars(select(RemoteBlock.user_id)).all() == [alice_id]
    assert "@rita@127.0.0.1" in fed.get("/account/blocks").text
    fed.cookies.clear()
    assert deliver(fed, fed_rt, peer, like(peer, media_id)) == "blocked"


def test_the_block_button_needs_the_csrf_token(fed, fed_rt, peer, tmp_path):
    from tests.social_kit import log_in

    media_id = upload(fed_rt, tmp_path, "Sunset")
    assert deliver(fed, fed_rt, peer, reply(peer, 1, page(media_id))) == "commented"
    with fed_rt.sessions() as session:
        alice_id = session.scalars(select(User.id).where(User.username == "alice")).one()
    log_in(fed, fed_rt, alice_id)
    refused = fed.post("/account/blocks/remote", data={"account": peer.actor_id, "media": str(media_id),
                                                       "comment": "1"}, follow_redirects=False)
    assert refused.status_code in (400, 403)
    with fed_rt.sessions() as session:
        assert session.scalars(select(RemoteBlock)).all() == []
