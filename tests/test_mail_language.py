"""Mail is written in the recipient's language: the account's choice, else the language of the request
that caused it. The language travels in the outbox effect's payload and the worker applies it when it
writes the mail (sign-up confirmation, change of address, password reset).

A tiny German catalogue is built here, so the test does not depend on the shipped translations."""

from __future__ import annotations

import io
from collections.abc import Iterator
from email.header import decode_header, make_header

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.support import NullTranslations, Translations
from fastapi.testclient import TestClient
from sqlalchemy import select

from kiln import i18n
from kiln.accounts import services as accounts
from kiln.accounts.models import User
from kiln.processing.models import OutboxEffect
from kiln.runtime import Runtime
from tests.conftest import csrf, form_post
from tests.conftest import mails as raw_mails

GERMAN = {
    "Confirm your email address for %(site)s": "Bestätige deine E-Mail-Adresse für %(site)s",
    "Hello %(username)s,\n\nconfirm your email address by opening this link:\n\n%(link)s\n\n":
        "Hallo %(username)s,\n\nbestätige deine E-Mail-Adresse mit diesem Link:\n\n%(link)s\n\n",
    ("The link works once and for %(n)s hour. If you did not ask for this, ignore it.\n",
     "The link works once and for %(n)s hours. If you did not ask for this, ignore it.\n"):
        ("Der Link gilt einmal und %(n)s Stunde lang.\n", "Der Link gilt einmal und %(n)s Stunden lang.\n"),
    "Reset your %(site)s password": "Setze dein Passwort für %(site)s zurück",
    "Hello %(username)s,\n\nsomeone asked to reset your password. Choose a new one here:\n\n%(link)s\n\n":
        "Hallo %(username)s,\n\njemand möchte dein Passwort zurücksetzen. Wähle hier ein neues:\n\n%(link)s\n\n",
    ("The link works once and for %(n)s hour. If it was not you, ignore this mail.\n\n",
     "The link works once and for %(n)s hours. If it was not you, ignore this mail.\n\n"):
        ("Der Link gilt einmal und %(n)s Stunde lang.\n\n", "Der Link gilt einmal und %(n)s Stunden lang.\n\n"),
}


def german() -> Translations:
    catalog = Catalog(locale="de", domain=i18n.DOMAIN)
    for msgid, msgstr in GERMAN.items():
        catalog.add(msgid, msgstr)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer, domain=i18n.DOMAIN)


@pytest.fixture(autouse=True)
def _speaks_german(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    de = german()
    monkeypatch.setattr(i18n, "_available", lambda: frozenset({"en", "de"}))
    monkeypatch.setattr(i18n, "translations", lambda code: de if code == "de" else NullTranslations())
    yield


def mails(settings) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The sent mails with their subjects decoded (a German subject is RFC 2047 encoded)."""
    return [{**m, "subject": str(make_header(decode_header(m["subject"])))} for m in raw_mails(settings)]


def _post(client: TestClient, path: str, data: dict[str, str], language: str) -> int:
    token = csrf(client, path)
    return client.post(path, data={**data, "csrf_token": token}, headers={"Accept-Language": language}).status_code


def _set_locale(rt: Runtime, username: str, locale: str | None) -> None:
    with rt.sessions() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        user.locale = locale
        session.commit()


def _payload_locales(rt: Runtime, kind: str) -> list[str | None]:
    with rt.sessions() as session:
        return [e.payload.get("locale") for e in session.scalars(select(OutboxEffect).where(OutboxEffect.kind == kind))]


def test_sign_up_mail_follows_the_request_when_the_account_has_no_language(client: TestClient, rt: Runtime) -> None:
    assert _post(client, "/auth/register", {"username": "jonas", "email": "jonas@example.com",
                                            "password": "correct horse"}, "de-AT,de;q=0.9") == 200
    [sent] = mails(rt.settings)
    assert sent["subject"] == f"Bestätige deine E-Mail-Adresse für {rt.settings.site_name}"
    assert sent["body"].startswith("Hallo jonas,") and "72 Stunden lang" in sent["body"]
    assert "/auth/verify?token=" in sent["body"]
    assert _payload_locales(rt, "verify_request") == ["de"]


def test_reset_and_change_of_address_follow_the_account_not_the_request(client: TestClient, rt: Runtime) -> None:
    with rt.sessions() as session:
        accounts.create_user(session, "greta", "greta@example.com", "correct horse", verified=True)
        session.commit()
    _set_locale(rt, "greta", "de")
    assert _post(client, "/auth/forgot", {"email": "greta@example.com"}, "en") == 200
    [reset] = mails(rt.settings)
    assert reset["subject"] == f"Setze dein Passwort für {rt.settings.site_name} zurück"
    assert "1 Stunde lang" in reset["body"] and "/auth/reset?token=" in reset["body"]
    assert _payload_locales(rt, "reset_request") == ["en"]  # the request's; the account's wins

    assert _post(client, "/auth/login", {"username": "greta", "password": "correct horse"}, "en") == 200
    token = csrf(client, "/account")
    client.post("/account/email", data={"current": "correct horse", "email": "greta2@example.com",
                                        "csrf_token": token}, headers={"Accept-Language": "en"})
    change = mails(rt.settings)[-1]
    assert change["to"] == "greta2@example.com" and change["body"].startswith("Hallo greta,")


def test_without_any_language_the_mail_stays_english(client: TestClient, rt: Runtime) -> None:
    with rt.sessions() as session:
        accounts.create_user(session, "ed", "ed@example.com", "correct horse", verified=True)
        session.commit()
    form_post(client, "/auth/forgot", {"email": "ed@example.com"})
    [reset] = mails(rt.settings)
    assert reset["subject"] == f"Reset your {rt.settings.site_name} password"
    assert "works once and for 1 hour." in reset["body"]
