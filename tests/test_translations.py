"""Languages: the catalogues are complete and compile, templates hold no untranslated words, the language
of a request is chosen as promised (account, ?lang=, cookie, Accept-Language, site default), pages,
errors, API messages, mail and the browser's strings come out in it, and the page cache keeps languages
apart."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kiln import i18n
from kiln.errors import InvalidInput
from kiln.runtime import Runtime
from tests.conftest import csrf, form_post, mails, register

ROOT = Path(__file__).resolve().parent.parent


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("kiln_translations_tool", ROOT / "scripts" / "translations.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_catalogues_compile_are_complete_and_match_the_code() -> None:
    """What CI refuses: a catalogue that does not compile or loses a placeholder, a complete locale
    missing a string, a template with literal words, an f-string that cannot be translated, and a
    messages.pot out of step with the code."""
    tool = _tool()
    assert set(tool.COMPLETE) <= set(tool.locales())
    assert tool.problems() == []


def test_the_template_check_finds_literal_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = _tool()
    page = tmp_path / "page.html"
    page.write_text('<p>{{ _("Fine") }}</p><img alt="A cat" src="{{ x }}"><p>Hello {{ name }}</p>'
                    '<p>{% trans %}Also fine{% endtrans %}</p><p>{{ n }} · {{ m }}</p>', encoding="utf-8")
    monkeypatch.setattr(tool, "template_files", lambda: [page])
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    found = tool.untranslated_template_text()
    assert len(found) == 2 and "A cat" in found[0] and "Hello" in found[1]


@pytest.mark.parametrize(("header", "expected"), [
    ("de-AT,de;q=0.9,en;q=0.5", "de"), ("pt-BR, fr;q=0.4", "fr"), ("xx, *", "en"), ("", "en"),
    ("en;q=0.1, ar;q=0.8", "ar"), ("de;q=0", "en"), ("es-419", "es"), ("a" * 5000, "en"),
])
def test_accept_language_is_read_by_quality(header: str, expected: str) -> None:
    assert i18n.choose(accept_language=header) == expected


def test_the_order_of_choices() -> None:
    assert i18n.choose(account="fr", asked="de", cookie="es", accept_language="ar") == "fr"
    assert i18n.choose(asked="de", cookie="es", accept_language="ar") == "de"
    assert i18n.choose(asked="klingon", cookie="es", accept_language="ar") == "es"
    assert i18n.choose(accept_language="ar") == "ar"
    assert i18n.choose(accept_language="xx", default="de") == "de"
    assert i18n.choose(default="not-a-language") == "en"


def test_errors_are_said_in_the_readers_language_with_its_numbers() -> None:
    error = InvalidInput("Titles can be at most %(max)s characters.", code="too_long", max=1200)
    assert str(error) == "Titles can be at most 1,200 characters."
    with i18n.use_locale("de"):
        assert error.message.endswith("1.200 Zeichen lang sein.") or "1.200" in error.message
    assert error.stored() == {"msgid": "Titles can be at most %(max)s characters.", "params": {"max": 1200}}


def test_stored_sentences_are_said_later_in_the_readers_language() -> None:
    stored = {"msgid": "This file is %(size)s.", "params": {"size": {"size": 1536}}}
    assert i18n.say_stored(stored, "fallback") == "This file is 1.5 KiB."
    assert i18n.say_stored(None, "Old English text.") == "Old English text."
    assert i18n.say_stored({"msgid": "Broken %(x)s"}, None) == "Broken %(x)s"


def test_browser_strings_carry_each_plural_category() -> None:
    arabic = i18n.js_messages("ar")
    plural = [value for value in arabic.values() if isinstance(value, dict)]
    assert plural, "the JavaScript has no plural message"
    assert set(plural[0]) == {"zero", "one", "two", "few", "many", "other"}
    assert all(isinstance(v, str) and v for v in i18n.js_messages("de").values() if not isinstance(v, dict))


def _lang(html: str) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]+)" dir="([^"]+)"', html)
    assert found, html[:200]
    return found.group(1), found.group(2)


def test_accept_language_arabic_gives_a_right_to_left_page(client: TestClient) -> None:
    page = client.get("/", headers={"Accept-Language": "ar"})
    assert _lang(page.text) == ("ar", "rtl")
    assert page.headers["content-language"] == "ar"
    assert "accept-language" in page.headers["vary"].lower()
    assert "تسجيل الدخول" in page.text or "الدخول" in page.text  # "Log in"


def test_lang_parameter_is_remembered_and_the_cache_keeps_languages_apart(client: TestClient) -> None:
    english = client.get("/tags")
    assert _lang(english.text) == ("en", "ltr") and "Log in" in english.text
    german = client.get("/tags?lang=de")
    assert _lang(german.text) == ("de", "ltr") and "Anmelden" in german.text
    assert i18n.LANG_COOKIE in german.headers["set-cookie"]
    again = client.get("/tags")  # the cookie now says German: the cached English page is not reused
    assert _lang(again.text) == ("de", "ltr")
    client.cookies.clear()
    assert _lang(client.get("/tags").text) == ("en", "ltr")
    assert _lang(client.get("/tags", headers={"Accept-Language": "fr"}).text) == ("fr", "ltr")


def test_api_messages_follow_the_language_and_codes_stay(client: TestClient) -> None:
    english = client.get("/api/v1/media/999999").json()
    german = client.get("/api/v1/media/999999?lang=de").json()
    assert english["error"]["code"] == german["error"]["code"]
    assert english["error"]["message"] != german["error"]["message"]


def test_the_accounts_language_wins_and_mail_is_written_in_it(client: TestClient, rt: Runtime) -> None:
    register(client, rt.settings, "maria")
    token = csrf(client, "/account")
    answer = client.post("/account/language", data={"csrf_token": token, "locale": "es", "next": "/tags"},
                         follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/tags"
    client.cookies.delete(i18n.LANG_COOKIE)
    page = client.get("/tags", headers={"Accept-Language": "de"})
    assert _lang(page.text) == ("es", "ltr")
    refused = client.post("/account/language", data={"csrf_token": token, "locale": "xx"})
    assert refused.status_code == 422 and "idioma" in refused.text.lower()
    form_post(client, "/account/email", {"current": "correct horse", "email": "maria2@example.org"},
              page="/account")
    sent = mails(rt.settings)[-1]
    assert sent["to"] == "maria2@example.org"
    assert _looks_spanish(sent["subject"] + sent["body"])


def _looks_spanish(text: str) -> bool:
    return any(word in text.lower() for word in ("correo", "dirección", "enlace", "confirm"))
