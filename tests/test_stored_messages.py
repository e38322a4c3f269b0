"""Failures recorded by a worker (in English, for the logs) are said later in the language of whoever
reads them: the panel, the API and the admin's statistics say the stored msgid and parameters; the
``code`` never changes; rows written before the sentences were kept (migration 0012) still show."""

from __future__ import annotations

import io

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.support import NullTranslations, Translations
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from kiln import i18n
from kiln.app import create_app
from kiln.config import RetryPolicy
from kiln.errors import KilnError
from kiln.i18n import Nn_, Size
from kiln.media.models import MediaEntry
from kiln.mediatypes import get_kind
from kiln.mediatypes.base import MediaRejected
from kiln.processing import ledger, stats
from kiln.processing.models import ProcessingStep
from kiln.runtime import Runtime
from tests.conftest import BASE_URL
from tests.test_panels import login, make_user, row, submit, token

TOO_BIG = "This file is %(size)s; the limit is %(limit)s."
GAVE_UP = ("Kiln tried %(n)s time and gave up.", "Kiln tried %(n)s times and gave up.")
GERMAN = {
    TOO_BIG: "Diese Datei ist %(size)s groß; erlaubt sind %(limit)s.",
    GAVE_UP: ("Kiln hat es %(n)s Mal versucht und aufgegeben.", "Kiln hat es %(n)s Mal versucht und aufgegeben!"),
    "The disk was full.": "Die Festplatte war voll.",
    "%(what)s was killed (probably out of memory).": "%(what)s wurde beendet (wohl zu wenig Speicher).",
    "The audio decoder": "Der Audio-Decoder",
}


@pytest.fixture
def german(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny German catalogue in place of the real one."""
    catalog = Catalog(locale="de")
    for msgid, msgstr in GERMAN.items():
        catalog.add(msgid, msgstr)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    tiny = Translations(fp=buffer)
    real = i18n.translations
    monkeypatch.setattr(i18n, "translations", lambda code: tiny if code == "de" else (
        NullTranslations() if code == i18n.SOURCE else real(code)))
    known = i18n._available()
    monkeypatch.setattr(i18n, "_available", lambda: known | {"de"})


def test_plural_errors_pick_their_form_by_n_and_keep_it_when_stored(german: None) -> None:
    one, three = KilnError(Nn_(*GAVE_UP), n=1), KilnError(Nn_(*GAVE_UP), n=3)
    assert (str(one), str(three)) == ("Kiln tried 1 time and gave up.", "Kiln tried 3 times and gave up.")
    assert three.stored() == {"msgid": GAVE_UP[0], "plural": GAVE_UP[1], "n": 3, "params": {"n": 3}}
    with i18n.use_locale("de"):
        assert one.message == "Kiln hat es 1 Mal versucht und aufgegeben."
        assert i18n.say_stored(three.stored(), "x") == "Kiln hat es 3 Mal versucht und aufgegeben!"
    assert i18n.say_stored(three.stored(), "x") == "Kiln tried 3 times and gave up."


def test_labels_in_a_sentence_are_stored_as_msgids_and_said_in_the_readers_language(german: None) -> None:
    from kiln.i18n import Label
    from kiln.mediatypes.base import TransientFailure

    error = TransientFailure("%(what)s was killed (probably out of memory).", code="out_of_memory",
                             what=Label("The audio decoder"))
    assert str(error) == "The audio decoder was killed (probably out of memory)."
    stored = error.stored()
    assert stored == {"msgid": "%(what)s was killed (probably out of memory).",
                      "params": {"what": {"label": "The audio decoder"}}}
    with i18n.use_locale("de"):
        assert i18n.say_stored(stored, None) == "Der Audio-Decoder wurde beendet (wohl zu wenig Speicher)."
        assert error.code == "out_of_memory"


def test_a_row_that_gave_up_says_both_sentences(german: None) -> None:
    step = ProcessingStep(name="thumbnail", attempts=3)
    policy = RetryPolicy(max_attempts=3)
    assert not ledger.retry_later(step, policy, "TransientFailure", "disk_full",
                                  KilnError("The disk was full."))
    assert step.state == "failed" and step.error_code == "disk_full"
    assert step.error_message == "The disk was full. Kiln tried 3 times and gave up."
    with i18n.use_locale("de"):
        assert step.error_said == "Die Festplatte war voll. Kiln hat es 3 Mal versucht und aufgegeben!"
    ledger.mark_done(step)
    assert step.error_stored is None and step.error_said is None


@pytest.mark.db
def test_a_failure_recorded_in_english_shows_in_german(rt: Runtime, tmp_path, monkeypatch, german: None) -> None:
    from PIL import Image

    picture = tmp_path / "small.png"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(picture)
    kind = get_kind("image")
    real = kind.run_step

    def too_big(step, ctx):  # type: ignore[no-untyped-def]
        if step == "thumbnail":
            raise MediaRejected(TOO_BIG, code="too_big", size=Size(3 * 1024 * 1024 // 2), limit=Size(1024 * 1024))
        return real(step, ctx)

    monkeypatch.setattr(kind, "run_step", too_big)
    make_user(rt, "alice")
    media_id = submit(rt, "alice", picture)
    english = "This file is 1.5 MiB; the limit is 1 MiB."
    with rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        assert media.state == "failed" and media.error_code == "too_big"
        assert media.error_message == english  # the worker wrote English, for logs and admins
        assert media.error_stored == {"msgid": TOO_BIG, "params": {"size": {"size": 1572864},
                                                                    "limit": {"size": 1048576}}}
    german_text = "Diese Datei ist 1,5 MiB groß; erlaubt sind 1 MiB."

    client = login(rt, "alice")
    assert english in row(client.get("/panel?state=failed").text, media_id)
    client.cookies.set(i18n.LANG_COOKIE, "de")
    assert german_text in row(client.get("/panel?state=failed").text, media_id)

    api = TestClient(create_app(rt.settings, rt), base_url=BASE_URL)
    alice = token(api, "alice")
    got = api.get(f"/api/v1/media/{media_id}", headers={**alice, "Accept-Language": "de"}).json()
    assert got["error"] == {"code": "too_big", "message": german_text}
    thumbnail = next(s for s in got["steps"] if s["name"] == "thumbnail")
    assert thumbnail["error"] == {"code": "too_big", "message": german_text}
    got = api.get(f"/api/v1/media/{media_id}", headers={**alice, "Accept-Language": "en"}).json()
    assert got["error"] == {"code": "too_big", "message": english}  # the code is the same in every language

    with rt.sessions() as session, i18n.use_locale("de"):
        [failure] = stats.failure_counts(session)
        assert (failure.code, failure.message) == ("too_big", german_text)
        [latest] = stats.latest_failures(session)
        assert (latest.code, latest.message) == ("too_big", german_text)


def test_the_migration_keeps_failures_stored_before_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alembic import command
    from sqlalchemy.orm import Session

    from kiln.db.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0010")
    engine = create_engine(url)
    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO users (id, username, email, password_hash, display_name, bio, "
                             f"default_license, created, banned) VALUES (1, 'ann', 'a@x', 'h', '', '', '', '{now}', 0)")
        conn.exec_driver_sql(
            "INSERT INTO media (id, owner_id, kind, state, title, description, license, show_exif, created, "
            "updated, original_key, original_store, original_name, mime_type, size_bytes, sha256, visibility, "
            f"key_token, error_code, error_message) VALUES (1, 1, 'image', 'failed', 't', '', '', 0, '{now}', "
            f"'{now}', '[]', 'local', 'a.jpg', 'image/jpeg', 1, 'x', 'public', 'k', 'corrupt', 'Old words.')")
        conn.exec_driver_sql(
            "INSERT INTO processing_steps (media_id, name, position, fingerprint, state, reason, progress, attempts, "
            f"created, error_code, error_message) VALUES (1, 'thumbnail', 0, '', 'failed', 'new', 0, 1, '{now}', "
            "'corrupt', 'Old words.')")
    command.upgrade(alembic_config(url), "head")
    with Session(engine) as session:
        media = session.get(MediaEntry, 1)
        assert media is not None and media.error_stored is None and media.error_said == "Old words."
        step = session.query(ProcessingStep).one()
        assert step.error_code == "corrupt" and step.error_said == "Old words."
        step.error_stored = KilnError(TOO_BIG, size=Size(10), limit=Size(5)).stored()
        session.commit()
        session.expire_all()
        assert session.query(ProcessingStep).one().error_said == "This file is 10 B; the limit is 5 B."
    command.downgrade(alembic_config(url), "0010")
    engine.dispose()
