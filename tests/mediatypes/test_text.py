"""The text kind, on files written by tests/fixtures_text.py, directly and through the real app."""

from __future__ import annotations

import html
import re
from functools import partial
from pathlib import Path

import pytest
from PIL import Image
from tests import fixtures_text as F
from tests import kindsteps
from tests.conftest import csrf, register

from kiln.config import load_settings
from kiln.media.models import MediaEntry
from kiln.mediatypes import identify as registry_identify
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.text import KIND

ENCODINGS = {"utf8": "utf-8", "scene": "cp437", "latin1": "iso-8859-1", "utf16": "utf-16", "ascii": "ascii",
             "ansi": "cp437", "file_id": "cp437"}


@pytest.fixture
def plain_settings(tmp_path: Path):
    return load_settings(data_dir=tmp_path / "data")


run_all = partial(kindsteps.run_all, KIND)


# Recognising ---------------------------------------------------------------------------------------
def test_samples_are_text_with_their_encoding(samples, plain_settings):
    assert set(samples("text")) == set(ENCODINGS)
    for key, path in samples("text").items():
        found = registry_identify(path, plain_settings, filename=path.name)
        assert (found.kind, found.mime_type) == ("text", "text/plain")
        assert found.extra["encoding"] == ENCODINGS[key], key


@pytest.mark.parametrize(("key", "code", "words"), [
    ("binary", "binary", "binary data (NUL bytes)"),
    ("html", "html", "a web page (HTML)"),
    ("svg", "svg", "an SVG drawing"),
    ("playlist", "playlist", "a media playlist"),
    ("script", "script", "a script"),
    ("long_line", "too_large", "a line 5,000 characters long; Kiln accepts lines of up to 400"),
    ("many_lines", "too_large", "6,000 lines; Kiln accepts up to 5,000"),
    ("controls", "binary", "byte 0x07 at character 13"),
    ("truncated_utf16", "binary", "not valid UTF-16"),
    ("truncated_utf8", "corrupt", "ends in the middle of a character"),
    ("whitespace", "empty", "no visible text"),
])
def test_hostile_files_are_refused_with_a_reason(hostile, plain_settings, key, code, words):
    path = hostile("text")[key]
    with pytest.raises(MediaRejected) as caught:
        registry_identify(path, plain_settings, filename=path.name)
    assert caught.value.code == code
    assert words in caught.value.message


def test_text_is_only_considered_under_a_text_name(samples, plain_settings):
    path = samples("text")["utf8"]
    for name in ("notes.md", "clip.mp4", "page.pdf"):
        with pytest.raises(MediaRejected) as caught:
            registry_identify(path, plain_settings, filename=name)
        assert caught.value.code == "unsupported" and "is a text file" in caught.value.message


def test_size_limit(samples, tmp_path):
    tiny = load_settings(data_dir=tmp_path / "data", text={"max_bytes": 100})
    limit = r"This text file is \d+ B; Kiln accepts text files of up to 100 B\.$"  # never "0 KiB"
    with pytest.raises(MediaRejected, match=limit) as caught:
        KIND.identify(samples("text")["scene"], b"", tiny)
    assert caught.value.code == "too_large"


@pytest.mark.parametrize(("data", "encoding", "start"), [
    ("Привет, мир! Это текст на русском языке.".encode("cp1251"), "cp1251", "Привет"),
    ("Grüße aus Köln — “quoted”".encode("cp1252"), "windows-1252", "Grüße"),
    ("\ufeffwith a UTF-8 BOM".encode(), "utf-8", "with"),
    ("big-endian ╬".encode("utf-16-be"), None, None),  # no BOM: NUL bytes, refused as binary
])
def test_encodings(tmp_path, plain_settings, data, encoding, start):
    path = tmp_path / "x.txt"
    path.write_bytes(data)
    if encoding is None:
        with pytest.raises(MediaRejected):
            KIND.identify(path, data, plain_settings)
        return
    made, info = run_all(path, plain_settings, tmp_path / "work")
    assert info["encoding"] == encoding
    assert made["text"].path.read_text("utf-8").startswith(start)


# Processing ----------------------------------------------------------------------------------------
def test_cp437_art_becomes_utf8_box_drawing_and_pictures(samples, plain_settings, tmp_path):
    made, info = run_all(samples("text")["scene"], plain_settings, tmp_path / "work")
    assert sorted(made) == ["medium", "text", "thumbnail", "thumbnail_2x"]
    text = made["text"].path.read_text("utf-8")
    assert made["text"].mime_type == "text/plain; charset=utf-8"
    assert text.startswith("╔" + "═" * 76 + "╗\n") and "░▒▓█" in text and "\r" not in text
    assert samples("text")["scene"].read_bytes().endswith(F.SAUCE)
    assert "SAUCE" not in text  # everything after the DOS end-of-file mark is metadata
    assert info["text"] == text.rstrip("\n") and info["text_truncated"] is False
    assert (info["lines"], info["columns"], info["encoding"]) == (8, 78, "cp437")
    assert info["sauce"] == {"title": "Kiln scene art", "author": "Ada", "group": "Kiln Crew", "date": "2024-02-29",
                             "width": 78}
    medium, thumb = made["medium"], made["thumbnail"]
    assert medium.mime_type == "image/jpeg" and medium.width > 4 * medium.height > 0
    assert max(thumb.width, thumb.height) == 180 and thumb.height >= 0.6 * thumb.width - 1
    sharp = made["thumbnail_2x"]
    assert max(sharp.width, sharp.height) == 360 and abs(sharp.width - 2 * thumb.width) <= 2
    with Image.open(medium.path) as picture:
        grey = picture.convert("L")
        # The frame's double line is drawn in light ink on the dark paper, the inside stays dark.
        row = [grey.getpixel((x, grey.height // 2)) for x in range(grey.width)]
        assert max(row[:20]) > 150 and min(row) < 40


def test_ansi_colours_are_removed_and_cursor_moves_become_spaces(samples, plain_settings, tmp_path):
    made, info = run_all(samples("text")["ansi"], plain_settings, tmp_path / "work")
    wrapped = "▀" * 40 + "\n" + "▀" * 20 + "\n"  # a 60-column row in a 40-column terminal
    assert made["text"].path.read_text("utf-8") == "███" + " " * 10 + "KILN\n░▒▓ plain\n" + wrapped
    assert info["ansi"] is True
    assert info["sauce"] == {"title": "Kiln ANSI", "author": "Ada", "width": 40}  # 30 February is no date


def test_tabs_and_long_texts(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", text={"page_text_bytes": 1024, "picture_lines": 10})
    path = tmp_path / "long.txt"
    path.write_text("\tindented\n" + "é" * 399 + "\n" + "a line of text\n" * 300, "utf-8")
    made, info = run_all(path, settings, tmp_path / "work")
    assert info["columns"] == 399 and info["lines"] == 302
    assert info["text_truncated"] is True and len(info["text"].encode()) <= 1024
    assert info["text"].startswith("\tindented\n")  # the page keeps tabs; CSS sets tab-size
    assert made["text"].path.read_text("utf-8").count("\n") == 302
    with Image.open(made["medium"].path) as medium:
        assert medium.width > medium.height  # ten lines of 399 columns: a wide strip


def test_steps_and_fingerprints(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    assert [s.name for s in KIND.steps(settings)] == ["text", "medium", "thumbnail"]
    bigger = load_settings(data_dir=tmp_path / "data", text={"font_size": 20})
    assert KIND.steps(settings)[1].fingerprint() != KIND.steps(bigger)[1].fingerprint()
    assert KIND.steps(settings)[0].fingerprint() == KIND.steps(bigger)[0].fingerprint()


# Through the app -----------------------------------------------------------------------------------
def upload(client, path: Path, accept_json: bool = False):  # type: ignore[no-untyped-def]
    headers = {"Accept": "application/json"} if accept_json else {}
    return client.post("/upload", data={"csrf_token": csrf(client, "/upload")},
                       files=[("file", (path.name, path.read_bytes(), "text/plain"))], headers=headers)


def test_every_sample_is_published_and_shown_as_text(client, settings, rt, samples):
    register(client, settings)
    for path in samples("text").values():
        assert upload(client, path).status_code == 200
    with rt.sessions() as session:
        entries = session.query(MediaEntry).all()
        assert len(entries) == len(samples("text"))
        for entry in entries:
            assert entry.state == "processed", (entry.original_name, entry.error_message)
            assert entry.rendition("thumbnail") is not None and entry.info.get("blurhash")
            page = client.get(f"/u/alice/m/{entry.id}")
            assert page.status_code == 200
            section = re.search(r'<section class="display display-text".*?</section>', page.text, re.S).group(0)
            shown = re.search(r'<pre class="text-art"[^>]*>(.*?)</pre>', section, re.S).group(1)
            assert html.unescape(shown) == entry.info["text"]
            assert "style=" not in section and "<script" not in section and not re.search(r"\son\w+=", section)
            full = entry.rendition("text")
            served = client.get(rt.stores.public.url(full.key))
            assert served.status_code == 200 and served.content.decode("utf-8").rstrip("\n") == entry.info["text"]
        scene = next(e for e in entries if e.original_name == "scene.nfo")
    scene_page = client.get(f"/u/alice/m/{scene.id}").text
    assert "╔═══" in scene_page and "“Kiln scene art” by Ada / Kiln Crew, 2024-02-29" in scene_page


def test_markup_in_text_is_escaped_on_the_page(client, settings, rt, tmp_path):
    register(client, settings)
    path = tmp_path / "readme.txt"
    path.write_text("Use <b>bold</b> & <i>italics</i> in your posts.\n")
    assert upload(client, path).status_code == 200
    with rt.sessions() as session:
        entry = session.query(MediaEntry).one()
    page = client.get(f"/u/alice/m/{entry.id}").text
    assert "Use &lt;b&gt;bold&lt;/b&gt; &amp; &lt;i&gt;italics" in page and "<b>bold" not in page


def test_every_hostile_file_is_refused_with_a_message(client, settings, rt, hostile):
    register(client, settings)
    for name, path in hostile("text").items():
        resp = upload(client, path, accept_json=True)
        assert resp.status_code == 415, (name, resp.text)
        message = resp.json()["error"]["message"]
        assert message.startswith(f"{path.name}: This ") and len(message) > len(path.name) + 30
    with rt.sessions() as session:
        assert session.query(MediaEntry).count() == 0


def test_original_published_without_metadata_loses_its_sauce_record(client, settings, rt, samples):
    from tests.conftest import form_post

    register(client, settings)
    upload(client, samples("text")["scene"])
    with rt.sessions() as session:
        media_id = session.query(MediaEntry).one().id
    form_post(client, f"/m/{media_id}/edit", {"title": "Scene", "original": "stripped"})
    page = client.get(f"/u/alice/m/{media_id}").text
    href = page.split('<p class="download"><a href="')[1].split('"')[0]
    served = client.get(href).content
    original = samples("text")["scene"].read_bytes()
    assert original.endswith(F.SAUCE) and served == original[: -len(F.SAUCE)]
