"""Captions and subtitles: WebVTT and SRT files checked as hostile input and rewritten as Kiln's own
WebVTT; one track per language on video and audio, offered by the player, carried by visibility
changes, replaced, removed and deleted with the item, never taken for garbage."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from kiln.media import captions
from kiln.media.garbage import gc
from kiln.media.models import MediaEntry
from tests.conftest import form_post
from tests.test_api import make_user, token_for

SRT = ("1\r\n00:00:00,100 --> 00:00:00,900\r\n<i>Caf\xe9</i> <font color=red>au</font> lait & <b>co</b>\r\n\r\n"
       "2\r\n00:00:01,000 --> 00:00:01,400\r\nSecond <script>alert(1)</script>line\r\n").encode("cp1252")
VTT_DE = "WEBVTT\n\nNOTE a comment\n\n00:00.100 --> 00:00.900 align:start\n<v Anna>Guten <b>Tag</b>\n"


def test_srt_is_read_whatever_its_encoding_and_written_as_plain_webvtt() -> None:
    cues, source = captions.parse(SRT)
    assert source == "srt" and [c.text for c in cues] == ["Café au lait & co", "Second alert(1)line"]
    out = captions.to_webvtt(cues).decode()
    assert out.startswith("WEBVTT\n\n00:00:00.100 --> 00:00:00.900\nCafé au lait &amp; co\n")
    assert "<" not in out.split("\n", 1)[1]  # no tag of any kind survives
    cues, source = captions.parse(b"\xef\xbb\xbf" + VTT_DE.encode())
    assert source == "vtt" and [c.text for c in cues] == ["Guten Tag"]
    assert captions.parse("\ufeff".encode("utf-16-le") + SRT.decode("cp1252").encode("utf-16-le"))[0][0].text \
        == "Café au lait & co"
    # A cue that says "-->" cannot start a new cue in Kiln's file.
    assert "--&gt;" in captions.to_webvtt([captions.Cue(0, 500, "a --> b")]).decode()


@pytest.mark.parametrize(("data", "duration", "code"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None, "captions_not_text"),
    (b"A" * (captions.MAX_BYTES + 1), None, "captions_too_large"),
    (b"just some words, not captions", None, "no_cues"),
    (b"WEBVTT\n\n", None, "no_cues"),
    (b"1\n00:00:02,000 --> 00:00:01,000\nbackwards\n", None, "cue_backwards"),
    (b"1\n00:00:01,000 --> 00:00:02,000\n" + b"x" * 1001 + b"\n", None, "cue_too_long"),
    (b"1\n01:00:00,000 --> 01:00:02,000\nlate\n", 10.0, "cue_after_end"),
    ("".join(f"{n}\n00:00:{n // 1000 % 60:02},{n % 1000:03} --> 00:00:59,999\nc\n\n" for n in range(10_001)).encode(),
     None, "too_many_cues"),
])
def test_hostile_caption_files_are_refused_with_a_reason(data: bytes, duration: float | None, code: str) -> None:
    with pytest.raises(captions.CaptionsRefused) as refused:
        captions.parse(data, duration)
    assert refused.value.code == code and refused.value.message.endswith((".", "?"))


@pytest.mark.parametrize("code", ["", "xx-notalanguage", "../../etc", "de\x00", "e" * 30, "qq"])
def test_unknown_languages_are_refused(code: str) -> None:
    with pytest.raises(captions.CaptionsRefused):
        captions.language_of(code)


def test_languages_are_checked_and_named_in_their_own_language() -> None:
    assert captions.language_of("de") == ("de", "Deutsch")
    assert captions.language_of("pt_br") == ("pt-BR", "Português (Brasil)")
    assert ("fr", "French") in captions.language_choices("en")


def _path(url: str) -> str:
    return urlsplit(url).path


def test_tracks_on_audio_replace_remove_follow_visibility_and_go_with_the_item(client, rt, samples):  # type: ignore[no-untyped-def]
    make_user(rt)
    auth = token_for(client)
    with samples("audio")["mp3"].open("rb") as fh:
        item = client.post("/api/v1/media", headers=auth, files={"file": ("song.mp3", fh)}).json()
    media_id = item["id"]
    sent = {"en": ("song.srt", b"1\n00:00:00,100 --> 00:00:01,000\nHello there\n"),
            "de": ("lied.vtt", VTT_DE.encode())}
    for language, (name, data) in sent.items():
        resp = client.post(f"/api/v1/media/{media_id}/captions", headers=auth, files={"file": (name, data)},
                           data={"language": language})
        assert resp.status_code == 201, resp.text
    german = resp.json()
    listed = client.get(f"/api/v1/media/{media_id}", headers=auth).json()["captions"]
    assert [(c["language"], c["label"]) for c in listed] == [("de", "Deutsch"), ("en", "English")]
    assert german["label"] == "Deutsch" and german["cues"] == 1
    served = client.get(_path(german["url"]))
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/vtt")
    assert served.text == "WEBVTT\n\n00:00:00.100 --> 00:00:00.900\nGuten Tag\n"

    page = client.get(f"/u/alice/m/{media_id}").text
    tracks = re.findall(r'<track kind="subtitles" src="([^"]+)" srclang="(\w+)" label="([^"]+)">', page)
    assert {(lang, label) for _, lang, label in tracks} == {("en", "English"), ("de", "Deutsch")}
    assert "data-audio-captions" in page and "captions.js" in page

    # The same language again replaces its file; the old one is removed from the store.
    replaced = client.post(f"/api/v1/media/{media_id}/captions", headers=auth, data={"language": "de",
                           "label": "Deutsch (SDH)"}, files={"file": ("neu.vtt", VTT_DE.replace("Tag", "Abend"))})
    assert replaced.status_code == 201 and replaced.json()["label"] == "Deutsch (SDH)"
    assert client.get(_path(german["url"])).status_code == 404
    assert "Guten Abend" in client.get(_path(replaced.json()["url"])).text

    # Private: the files move to the new key token; the old URLs stop working; gc keeps them.
    made_private = client.patch(f"/api/v1/media/{media_id}", headers=auth, json={"visibility": "private"})
    assert made_private.status_code == 200
    assert client.get(_path(replaced.json()["url"])).status_code == 404
    with rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        rows = captions.captions_of(media)
        assert len(rows) == 2 and all(r.key[2] == media.key_token and rt.stores.public.exists(r.key) for r in rows)
        keys = [list(r.key) for r in rows]
    report = gc(rt.sessions, rt.stores, dry_run=True, grace=0)
    assert not any(tuple(k) in {tuple(u) for u in report.unreferenced.get("public", [])} for k in keys)
    assert client.get(f"/m/{media_id}/r/captions-de", headers=auth).text.startswith("WEBVTT")

    # Removing a language; a video-only word for a picture; then the item's deletion takes the rest.
    assert client.delete(f"/api/v1/media/{media_id}/captions/en", headers=auth).status_code == 204
    assert client.delete(f"/api/v1/media/{media_id}/captions/en", headers=auth).status_code == 404
    assert not rt.stores.public.exists(keys[[r.spec["language"] for r in rows].index("en")])
    assert client.delete(f"/api/v1/media/{media_id}", headers=auth).status_code == 204
    assert not any(rt.stores.public.exists(k) for k in keys)


def test_the_edit_page_adds_and_removes_captions_and_says_why_not(client, rt, samples):  # type: ignore[no-untyped-def]
    from tests.conftest import register

    register(client, rt.settings, "vera")
    with samples("audio")["mp3"].open("rb") as fh:
        resp = form_post(client, "/upload", {"title": "Talk"}, files={"file": ("talk.mp3", fh, "audio/mpeg")},
                         page="/upload")
    assert resp.status_code == 200
    media_id = client.get("/api/v1/media?user=vera").json()["items"][0]["id"]
    edit = client.get(f"/m/{media_id}/edit").text
    assert 'id="captions"' in edit and '<option value="fr">' in edit

    resp = form_post(client, f"/m/{media_id}/captions", {"language": "fr"}, page=f"/m/{media_id}/edit",
                     files={"file": ("fr.srt", b"1\n00:00:00,000 --> 00:00:01,000\nBonjour\n", "application/x-subrip")})
    assert resp.status_code == 200 and "Captions added: Français." in resp.text and "Bonjour" not in resp.text
    resp = form_post(client, f"/m/{media_id}/captions", {"language": "fr"}, page=f"/m/{media_id}/edit",
                     files={"file": ("x.srt", b"\x00\x01\x02", "application/x-subrip")})
    assert resp.status_code == 422 and "This is not a text file." in resp.text
    resp = form_post(client, f"/m/{media_id}/captions/fr/delete", {}, page=f"/m/{media_id}/edit")
    assert resp.status_code == 200 and "Captions removed." in resp.text
    assert client.get(f"/api/v1/media/{media_id}").json()["captions"] == []
