"""Notifications: the page, the bell, marking read, the API; mail by each person's choice (at once
after the commit in the recipient's language, a daily digest, or off) with one-click unsubscribe;
the background fan-out; and the owner hearing of an upload that failed for good."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.support import NullTranslations, Translations
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kiln import i18n
from kiln.accounts.models import User
from kiln.media import services as media_service
from kiln.processing.models import OutboxEffect
from kiln.runtime import Runtime
from kiln.social import notify, notify_mail
from kiln.social.models import Notification
from tests.fixtures_images import make_truncated_jpeg
from tests.social_kit import api, log_in, person, post, upload

pytestmark = pytest.mark.db

GERMAN = {
    "%(actor)s started following you": "%(actor)s folgt dir jetzt",
    "%(actor)s commented on %(title)s": "%(actor)s hat %(title)s kommentiert",
    "%(what)s on %(site)s": "%(what)s auf %(site)s",
    "Hello %(username)s,\n\n%(what)s.\n\n%(link)s\n": "Hallo %(username)s,\n\n%(what)s.\n\n%(link)s\n",
}


@pytest.fixture(autouse=True)
def _speaks_german(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    catalog = Catalog(locale="de", domain=i18n.DOMAIN)
    for msgid, msgstr in GERMAN.items():
        catalog.add(msgid, msgstr)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    de = Translations(fp=buffer, domain=i18n.DOMAIN)
    monkeypatch.setattr(i18n, "_available", lambda: frozenset({"en", "de"}))
    monkeypatch.setattr(i18n, "translations", lambda code: de if code == "de" else NullTranslations())
    yield


def sent(rt: Runtime) -> list[Message]:
    return [message_from_bytes(p.read_bytes()) for p in sorted(rt.settings.mail_dir.glob("*.eml"))]


def subject(msg: Message) -> str:
    return str(make_header(decode_header(msg["Subject"])))


def body(msg: Message) -> str:
    return msg.get_payload(decode=True).decode()  # type: ignore[union-attr]


def _unseen(rt: Runtime, user_id: int) -> int:
    with rt.sessions() as session:
        return notify.unseen_count(session, user_id)


def _tell(rt: Runtime, recipient: int, type_: str, **what: object) -> None:
    with rt.sessions() as session:
        notify.notify(session, session.get(User, recipient), type_, **what)  # type: ignore[arg-type]
        session.commit()


def test_immediate_mail_goes_after_the_commit_in_the_recipients_language(rt: Runtime, client: TestClient) -> None:
    reader = person(rt, "greta", locale="de", notify_mail={"follow": "immediate"})
    actor = person(rt, "otto", display_name="Otto")
    with rt.sessions() as session:
        notify.notify(session, session.get(User, reader), "follow", actor_id=actor)  # type: ignore[arg-type]
        session.flush()
        assert sent(rt) == []  # nothing leaves before the commit
        session.rollback()
    assert sent(rt) == [] and _unseen(rt, reader) == 0  # rolled back: neither row nor mail
    _tell(rt, reader, "follow", actor_id=actor)
    [mail] = sent(rt)
    assert mail["To"] == "greta@example.com"
    assert subject(mail) == f"Otto folgt dir jetzt auf {rt.settings.site_name}"
    assert body(mail).startswith("Hallo greta,") and "/u/otto" in body(mail)
    link = re.search(r"<(http://testserver/unsubscribe\?token=[^>]+)>", mail["List-Unsubscribe"])
    assert link and mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link.group(1) in body(mail)
    with rt.sessions() as session:
        assert session.scalar(select(Notification.mail)) == "sent"
    # One-click unsubscribe, as a mail provider does it: a POST with no login and no form token.
    client.cookies.clear()
    path = link.group(1).removeprefix("http://testserver")
    page = client.get(path)
    assert page.status_code == 200 and "<button" in page.text
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "no more mail" in done.text
    with rt.sessions() as session:
        assert notify.mail_mode(session.get(User, reader), "follow") == "off"  # type: ignore[arg-type]
    _tell(rt, reader, "follow", actor_id=person(rt, "third"))
    assert len(sent(rt)) == 1  # off: the row, no mail


def test_a_forged_unsubscribe_token_is_refused_with_a_sentence(rt: Runtime, client: TestClient) -> None:
    reader = person(rt, "greta")
    good = notify_mail.unsubscribe_token(rt.settings, reader, "comment")
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    for method in ("GET", "POST"):
        answer = client.request(method, f"/unsubscribe?token={forged}")
        assert answer.status_code == 422 and "not valid" in answer.text
    other = notify_mail.unsubscribe_token(rt.settings.model_copy(update={"secret_key": "another"}), reader, "comment")
    assert client.post(f"/unsubscribe?token={other}").status_code == 422
    with rt.sessions() as session:
        assert notify.mail_mode(session.get(User, reader), "comment") == "immediate"  # type: ignore[arg-type]


def test_digest_collects_the_days_notifications_into_one_mail(rt: Runtime) -> None:
    reader = person(rt, "dora")  # favourites and follows default to the digest
    fans = [person(rt, f"fan{i}") for i in range(3)]
    media_id = upload(rt, reader, "Sunset")
    for fan in fans:
        _tell(rt, reader, "follow", actor_id=fan)
    _tell(rt, reader, "favourite", actor_id=fans[0], media_id=media_id)
    assert sent(rt) == []
    assert notify_mail.digests_due(rt) == 1
    [mail] = sent(rt)
    assert subject(mail) == f"4 new notifications on {rt.settings.site_name}"
    assert body(mail).count("started following you") == 3 and "fan0 favourited Sunset" in body(mail)
    assert mail["List-Unsubscribe"].startswith("<http://testserver/unsubscribe?token=")
    assert body(mail).count("/unsubscribe?token=") == 2  # one link per type in the digest
    with rt.sessions() as session:
        assert set(session.scalars(select(Notification.mail))) == {"sent"}
    _tell(rt, reader, "follow", actor_id=person(rt, "late"))
    assert notify_mail.digests_due(rt) == 0  # once a day
    assert len(sent(rt)) == 1


def test_off_means_no_mail_at_all(rt: Runtime) -> None:
    reader = person(rt, "quiet", notify_mail={t: "off" for t in notify.MAIL_DEFAULTS})
    _tell(rt, reader, "comment", actor_id=person(rt, "otto"))
    _tell(rt, reader, "follow", actor_id=person(rt, "anna"))
    assert notify_mail.digests_due(rt) == 0 and sent(rt) == []
    with rt.sessions() as session:
        assert set(session.scalars(select(Notification.mail))) == {"none"}
        assert notify.unseen_count(session, reader) == 2


def test_notify_many_records_one_effect_that_fans_out(rt: Runtime) -> None:
    actor = person(rt, "star")
    fans = [person(rt, f"fan{i}", notify_mail={"follow": "off"}) for i in range(7)]
    with rt.sessions() as session:
        before = session.scalar(select(func.count()).select_from(OutboxEffect))
    with rt.sessions() as session:
        notify.notify_many(session, [*fans, actor], "follow", actor_id=actor)
        assert session.scalar(select(func.count()).select_from(Notification)) == 0  # not in the request
        session.commit()
    with rt.sessions() as session:
        effects = session.scalars(select(OutboxEffect).where(OutboxEffect.kind == "notification_fanout")).all()
        assert len(effects) == 1 and session.scalar(select(func.count()).select_from(OutboxEffect)) == before + 1
        rows = session.scalars(select(Notification.user_id)).all()
        assert sorted(rows) == sorted(fans)  # everyone but the actor, once
        notify._fan_out(rt, dict(effects[0].payload))  # run again (a worker died): nobody hears twice
        assert session.scalar(select(func.count()).select_from(Notification)) == len(fans)


def test_a_failed_upload_tells_its_owner(rt: Runtime, tmp_path) -> None:  # type: ignore[no-untyped-def]
    owner = person(rt, "uploader", notify_mail={"failed": "off"})
    with rt.sessions() as session, make_truncated_jpeg(tmp_path).open("rb") as fh:
        entry = media_service.submit(rt, session, session.get(User, owner), fh, "broken.jpg",  # type: ignore[arg-type]
                                     media_service.MediaFields(title="Broken"))
        media_id = entry.id
    with rt.sessions() as session:
        [row] = session.scalars(select(Notification).where(Notification.user_id == owner)).all()
        assert row.type == "failed" and row.media_id == media_id and row.extra and row.extra["code"]


def test_page_bell_mark_read_and_api(rt: Runtime, client: TestClient) -> None:
    reader, otto = person(rt, "reader"), person(rt, "otto")
    media_id = upload(rt, reader, "Sunset <b>")
    _tell(rt, reader, "comment", actor_id=otto, media_id=media_id)
    _tell(rt, reader, "follow", actor_id=otto)
    log_in(client, rt, reader)
    front = client.get("/")
    assert 'id="kiln-bell"' in front.text and 'data-unseen="2"' in front.text and "bell.js" in front.text
    page = client.get("/notifications")
    assert f'<a href="/u/otto">otto</a> commented on <a href="/u/reader/m/{media_id}">Sunset &lt;b&gt;</a>' in page.text
    assert api(client, "GET", "/api/v1/notifications/count").json() == {"unseen": 2}
    listing = api(client, "GET", "/api/v1/notifications").json()
    assert [n["type"] for n in listing["items"]] == ["follow", "comment"] and listing["unseen"] == 2
    comment = listing["items"][1]
    assert comment["message"] == "otto commented on Sunset <b>" and comment["media_id"] == media_id
    assert comment["read"] is False and comment["actor"] == "otto"
    opened = client.get(f"/notifications/{comment['id']}/open", follow_redirects=False)  # the page's "Open"
    assert opened.status_code == 303 and opened.headers["location"] == f"/u/reader/m/{media_id}"
    assert api(client, "GET", "/api/v1/notifications/count").json() == {"unseen": 1}
    assert post(client, f"/notifications/{comment['id']}/read").status_code == 303  # already read: no change
    assert api(client, "POST", "/api/v1/notifications/read", json={}).status_code == 422
    assert api(client, "POST", "/api/v1/notifications/read", json={"all": True}).json() == {"marked": 1, "unseen": 0}
    assert 'data-unseen="0"' in client.get("/").text
    first = api(client, "GET", "/api/v1/notifications", params={"limit": 1}).json()
    assert first["next"] and api(client, "GET", "/api/v1/notifications",
                                 params={"limit": 1, "cursor": first["next"]}).json()["items"][0]["type"] == "comment"
    assert post(client, "/notifications/read").status_code == 303
    # Someone else's notification ids are ignored.
    stranger = person(rt, "stranger")
    _tell(rt, stranger, "follow", actor_id=otto)
    with rt.sessions() as session:
        theirs = session.scalar(select(Notification.id).where(Notification.user_id == stranger))
    assert api(client, "POST", "/api/v1/notifications/read", json={"ids": [theirs]}).json()["marked"] == 0
    assert _unseen(rt, stranger) == 1


def test_mail_settings_on_the_account_page(rt: Runtime, client: TestClient) -> None:
    reader = person(rt, "reader")
    log_in(client, rt, reader)
    account = client.get("/account")
    assert 'name="mail_comment"' in account.text and 'name="mail_failed"' in account.text
    assert post(client, "/account/notifications", {"mail_comment": "digest", "mail_follow": "off"}).status_code == 303
    with rt.sessions() as session:
        user = session.get(User, reader)
        assert user is not None
        assert notify.mail_mode(user, "comment") == "digest" and notify.mail_mode(user, "follow") == "off"
        assert notify.mail_mode(user, "invite") == "immediate"
    assert post(client, "/account/notifications", {"mail_comment": "sometimes"}).status_code == 422


def test_every_type_says_a_sentence_with_links(rt: Runtime, client: TestClient) -> None:
    from kiln.social.models import Collection

    reader, otto = person(rt, "reader"), person(rt, "otto")
    media_id = upload(rt, reader, "Sunset")
    with rt.sessions() as session:
        album = Collection(owner_id=otto, title="Trips & more")
        session.add(album)
        session.commit()
        album_id = album.id
    _tell(rt, reader, "invite", actor_id=otto, collection_id=album_id)
    _tell(rt, reader, "favourite", actor_id=otto, media_id=media_id)
    _tell(rt, reader, "reply", actor_id=otto, media_id=media_id)
    _tell(rt, reader, "failed", media_id=media_id, extra={"code": "bad_file"})
    log_in(client, rt, reader)
    page = client.get("/notifications").text
    assert f'invited you to add your media to the collection <a href="/c/{album_id}">Trips &amp; more</a>' in page
    assert f'<a href="/u/otto">otto</a> favourited <a href="/u/reader/m/{media_id}">Sunset</a>' in page
    assert "replied to your comment on" in page and "could not be processed" in page
    urls = {n["type"]: n["url"] for n in api(client, "GET", "/api/v1/notifications").json()["items"]}
    assert urls == {"invite": f"http://testserver/c/{album_id}", "favourite": f"http://testserver/u/reader/m/{media_id}",
                    "reply": f"http://testserver/u/reader/m/{media_id}", "failed": "http://testserver/panel"}
