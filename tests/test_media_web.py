"""Uploading, publishing, editing and deleting images through the web pages."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from kiln.media.models import MediaEntry
from kiln.units import format_size
from tests.conftest import csrf, form_post, register


def upload(client, *paths, **fields):  # type: ignore[no-untyped-def]
    files = [("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    return client.post("/upload", data={"csrf_token": csrf(client, "/upload"), **fields}, files=files)


def no_private_metadata(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    exif = image.getexif()
    assert not exif.get_ifd(0x8825), "GPS data leaked"
    assert 0x010F not in exif and 0x0110 not in exif, "camera make/model leaked"
    assert b"GPS" not in data and b"TestCam" not in data


@pytest.mark.db
def test_three_photos_at_once_are_published_upright_without_metadata(client, settings, rt, images):
    register(client, settings)
    resp = upload(client, images["camera"], images["plain"], images["flat_png"], tags="holiday, Sea")
    assert resp.status_code == 200, resp.text
    assert "Uploaded 3 files" in resp.text  # the panel, after the redirect
    gallery = client.get("/u/alice")
    links = re.findall(r'href="(/u/alice/m/\d+)"', gallery.text)
    assert len(links) == 3
    with rt.sessions() as session:
        camera = session.query(MediaEntry).filter_by(original_name=images["camera"].name).one()
        assert camera.state == "processed"
        assert abs(camera.gps_lat - 59.3366667) < 1e-5 and abs(camera.gps_lon - 18.0161667) < 1e-5
        medium, thumb = camera.rendition("medium"), camera.rendition("thumbnail")
        assert medium.height == 1280 and medium.width < medium.height  # orientation 6 applied: upright
        assert max(thumb.width, thumb.height) <= 180
        flat = session.query(MediaEntry).filter_by(original_name=images["flat_png"].name).one()
        assert (flat.rendition("medium").width, flat.rendition("medium").height) == (800, 800)  # never upscaled
    for rendition in (medium, thumb):
        served = client.get(rt.stores.public.url(rendition.key))
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert served.headers["x-content-type-options"] == "nosniff"
        no_private_metadata(served.content)
        with Image.open(io.BytesIO(served.content)) as im:
            assert im.size == (rendition.width, rendition.height)
    page = client.get(links[0])
    assert page.status_code == 200
    tag_page = client.get("/tag/sea")
    assert tag_page.status_code == 200 and len(re.findall(r'href="/u/alice/m/\d+"', tag_page.text)) == 3


def test_text_named_jpg_and_empty_file_are_refused_with_a_clear_message(client, settings, rt, images):
    register(client, settings)
    text = upload(client, images["text"])
    assert text.status_code == 415
    assert "is a text file, which Kiln cannot publish" in text.text
    empty = upload(client, images["empty"])
    assert empty.status_code == 415 and "The file is empty" in empty.text
    as_json = client.post("/upload", data={"csrf_token": csrf(client, "/upload")},
                          files={"file": ("photo.jpg", b"hello, I am text", "image/jpeg")},
                          headers={"Accept": "application/json"})
    assert as_json.status_code == 415
    assert as_json.json()["error"]["code"] == "unsupported"
    assert as_json.json()["error"]["message"].startswith("photo.jpg: This file is a text file")
    with rt.sessions() as session:
        assert session.query(MediaEntry).count() == 0
    assert not any(rt.stores.queue.iter_keys())
    none_chosen = client.post("/upload", data={"csrf_token": csrf(client, "/upload")},
                              files={"file": ("", b"", "application/octet-stream")})
    assert none_chosen.status_code == 422 and "Choose at least one file" in none_chosen.text


def test_a_pixel_bomb_is_refused_before_decoding(client, settings, images):
    register(client, settings)
    resp = upload(client, images["bomb"])
    assert resp.status_code == 415 and "60000×60000" in resp.text


def test_damaged_file_ends_failed_with_a_reason_the_owner_sees(client, settings, rt, images):
    register(client, settings)
    upload(client, images["truncated"])
    with rt.sessions() as session:
        entry = session.query(MediaEntry).one()
        assert entry.state == "failed" and entry.error_code == "corrupt"
    panel = client.get("/panel")
    assert "damaged" in panel.text
    # Failed media is not public.
    client.cookies.clear()
    assert client.get(f"/u/alice/m/{entry.id}").status_code == 404
    assert "damaged" not in client.get("/").text


@pytest.mark.db
def test_owner_edits_and_deletes(client, settings, rt, images):
    register(client, settings)
    upload(client, images["plain"], title="First try")
    with rt.sessions() as session:
        entry = session.query(MediaEntry).one()
        keys = [r.key for r in entry.renditions] + [entry.original_key]
        store = entry.original_store
    resp = form_post(client, f"/m/{entry.id}/edit", {
        "title": "Better title", "description": "Hello **world** <script>alert(1)</script>",
        "tags": "a, b", "license": "https://creativecommons.org/licenses/by/4.0/"})
    assert resp.status_code == 200
    assert "Better title" in resp.text and "<strong>world</strong>" in resp.text
    assert "<script>alert" not in resp.text
    assert 'rel="license" href="https://creativecommons.org/licenses/by/4.0/"' in resp.text
    bad = form_post(client, f"/m/{entry.id}/edit", {"title": "", "license": ""}, page=f"/m/{entry.id}/edit")
    assert bad.status_code == 422 and "title cannot be empty" in bad.text
    # Someone else can neither edit nor delete.
    other = client.__class__(client.app, base_url=str(client.base_url))
    register(other, settings, "mallory")
    assert form_post(other, f"/m/{entry.id}/delete", {}, page="/").status_code == 403
    resp = form_post(client, f"/m/{entry.id}/delete", {}, page=f"/m/{entry.id}/delete")
    assert resp.status_code == 200 and "Deleted" in resp.text
    with rt.sessions() as session:
        assert session.get(MediaEntry, entry.id) is None
    assert not any(rt.stores.public.exists(k) for k in keys[:-1])
    assert not rt.stores.by_name(store).exists(keys[-1])


@pytest.mark.db
def test_front_page_paginates_newest_first(client, settings, rt, images):
    rt.settings.per_page = 2
    register(client, settings)
    upload(client, images["plain"], images["flat_png"], images["webp"], title="Pic")
    first = client.get("/")
    titles = re.findall(r'<span class="caption">([^<]+)</span>', first.text)
    assert titles == ["Pic (3)", "Pic (2)"]
    older = re.search(r'href="\?before=([\w-]+)"', first.text).group(1)
    second = client.get(f"/?before={older}")
    assert re.findall(r'<span class="caption">([^<]+)</span>', second.text) == ["Pic (1)"]
    assert "Older" not in second.text
    broken = client.get("/?before=garbage")
    assert broken.status_code == 422 and "page link is broken" in broken.text


@pytest.mark.db
def test_media_page_shows_exif_summary_and_neighbours(client, settings, rt, images):
    register(client, settings)
    upload(client, images["plain"], images["camera"])
    with rt.sessions() as session:
        first, second = session.query(MediaEntry).order_by(MediaEntry.id).all()
    page = client.get(f"/u/alice/m/{second.id}")
    assert "Camera details" in page.text
    assert f'href="/u/alice/m/{first.id}"' in page.text  # older neighbour
    form_post(client, f"/m/{second.id}/edit", {"title": "x", "show_exif": ""})
    assert "Camera details" not in client.get(f"/u/alice/m/{second.id}").text


def test_unknown_pages_are_friendly_404s(client):
    resp = client.get("/u/nobody")
    assert resp.status_code == 404 and "There is no user named" in resp.text
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/u/nobody/m/notanumber").status_code == 422
    assert client.get("/media/media/1/../../../etc/passwd").status_code == 404


def test_local_renditions_support_ranges_etags_and_long_caching(client, settings, rt, images):
    register(client, settings)
    upload(client, images["plain"])
    with rt.sessions() as session:
        medium = session.query(MediaEntry).one().rendition("medium")
    url = rt.stores.public.url(medium.key)
    full = client.get(url)
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert full.headers["accept-ranges"] == "bytes" and "etag" in full.headers
    part = client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == full.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(full.content)}"
    assert client.get(url, headers={"If-None-Match": full.headers["etag"]}).status_code == 304
    bad = client.get(url, headers={"Range": f"bytes={len(full.content) + 10}-"})
    assert bad.status_code == 416


def test_static_assets_can_live_on_another_host(tmp_path, db_url):
    from kiln.app import create_app
    from kiln.processing.dispatch import RecordingDispatcher
    from kiln.runtime import build_runtime
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "data", db_url, static_base_url="https://static.example.org/kiln/")
    rt = build_runtime(settings, dispatcher=RecordingDispatcher())
    with client_for(create_app(settings, rt)) as other:
        page = other.get("/").text
    rt.close()
    assert 'href="https://static.example.org/kiln/kiln.css?v=' in page


def client_for(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://testserver")


@pytest.mark.db
def test_concurrent_uploads_with_the_same_new_tag(rt, images):
    """Two requests creating the same tag at once must both succeed (a unique-slug race)."""
    import threading

    from kiln.accounts import services as accounts
    from kiln.media import services as media_service

    with rt.sessions() as session:
        accounts.create_user(session, "tagger", "t@example.com", "correct horse", verified=True)
        session.commit()
    barrier, errors = threading.Barrier(4), []

    def one() -> None:
        try:
            with rt.sessions() as session:
                owner = accounts.get_user(session, "tagger")
                barrier.wait()
                with images["plain"].open("rb") as fh:
                    media_service.submit(rt, session, owner, fh, "p.jpg", media_service.MediaFields(tags="racy, new"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with rt.sessions() as session:
        from kiln.media.models import Tag

        assert sorted(t.slug for t in session.query(Tag).all()) == ["new", "racy"]
        assert session.query(MediaEntry).count() == 4
        assert all(sorted(t.slug for t in m.tags) == ["new", "racy"] for m in session.query(MediaEntry))


@pytest.mark.db
def test_titles_over_the_limit_are_refused_with_one_sentence_on_every_path(client, settings, rt, images, kiln):
    """The form says the limit; the form, the page's uploader, the API, the edit page and the CLI
    all refuse a longer title with the same sentence, and nothing is stored or cut."""
    register(client, settings)
    page = client.get("/upload").text
    assert re.search(r'<input name="title" maxlength="200"[^>]*aria-describedby="title-hint"', page)
    assert '<p class="hint" id="title-hint">Up to 200 characters.</p>' in page
    sentence = "A title can have at most 200 characters; this one has 201. Shorten it and try again."
    long_title, longest = "word " * 40 + "x", "x" * 200

    form = upload(client, images["plain"], title=long_title)
    assert form.status_code == 422 and f"{images['plain'].name}: {sentence}" in form.text
    script = client.post("/upload", data={"csrf_token": csrf(client, "/upload"), "title": long_title},
                         files={"file": ("a.jpg", images["plain"].read_bytes(), "image/jpeg")},
                         headers={"Accept": "application/json"})  # what upload.js sends
    assert script.status_code == 422 and script.json()["error"] == {"code": "title_too_long",
                                                                    "message": f"a.jpg: {sentence}"}
    several = upload(client, images["plain"], images["webp"], title="y" * 197)  # "... (1)" would be 201
    assert several.status_code == 422
    assert "Each of the 2 files gets a number after the title, so the title can have at most 196 " \
           "characters; this one has 197." in several.text
    with rt.sessions() as session:
        assert session.query(MediaEntry).count() == 0

    assert upload(client, images["plain"], title=longest).status_code == 200  # exactly the limit is fine
    with rt.sessions() as session:
        entry = session.query(MediaEntry).one()
        assert entry.title == longest
    edit_page = client.get(f"/m/{entry.id}/edit").text
    assert 'maxlength="200"' in edit_page and "Up to 200 characters." in edit_page
    edited = form_post(client, f"/m/{entry.id}/edit", {"title": long_title, "license": ""}, page=f"/m/{entry.id}/edit")
    assert edited.status_code == 422 and sentence in edited.text
    with rt.sessions() as session:
        assert session.get(MediaEntry, entry.id).title == longest

    token = re.search(r"kiln_[\w-]+", form_post(client, "/account/tokens", {"name": "t"}, page="/account").text)[0]
    api = {"Authorization": f"Bearer {token}"}
    posted = client.post("/api/v1/media", headers=api, data={"title": long_title},
                         files={"file": ("a.jpg", images["plain"].read_bytes(), "image/jpeg")})
    assert posted.status_code == 422 and "200 characters" in posted.json()["error"]["message"]
    patched = client.patch(f"/api/v1/media/{entry.id}", headers=api, json={"title": long_title})
    assert patched.status_code == 422 and "200 characters" in patched.json()["error"]["message"]

    cli = kiln("addmedia", "alice", str(images["plain"]), "--title", long_title, ok=False)
    assert cli.exit_code == 1 and sentence in cli.output
    with rt.sessions() as session:
        assert session.query(MediaEntry).count() == 1


@pytest.mark.db
def test_a_title_made_from_a_long_file_name_is_cut_at_a_word(rt, images):
    from kiln.accounts import services as accounts
    from kiln.media import services as media_service

    name = "holiday " * 30 + "end.jpg"  # 247 characters
    with rt.sessions() as session:
        owner = accounts.create_user(session, "alice", "alice@example.com", "correct horse", verified=True)
        with images["plain"].open("rb") as fh:
            entry = media_service.submit(rt, session, owner, fh, name, media_service.MediaFields())
        assert entry.title == ("holiday " * 24).strip() + "…" and len(entry.title) <= 200


def test_sizes_read_in_human_units_on_the_upload_page_the_panel_and_the_cli(client, settings, rt, images, kiln):
    register(client, settings)
    page = client.get("/upload").text
    assert "Your upload limit is 2 GiB." in page and 'data-limit="2147483648"' in page
    assert 'data-too-large="The file is larger than your 2 GiB upload limit."' in page
    assert page.index("static/sizes.js") < page.index("static/upload.js")
    small = Image.new("RGB", (8, 8), (10, 200, 30))
    buffer = io.BytesIO()
    small.save(buffer, "PNG")
    client.post("/upload", data={"csrf_token": csrf(client, "/upload")},
                files={"file": ("tiny.png", buffer.getvalue(), "image/png")})
    with rt.sessions() as session:
        entry = session.query(MediaEntry).one()
    size = f"{entry.size_bytes} B"  # a few dozen bytes: never "0.0 MB"
    assert f"tiny.png · {size} · uploaded" in client.get("/panel").text
    shown = kiln("media", "show", str(entry.id)).output
    assert re.search(r"thumbnail: \d+x\d+ image/\w+ \d+(\.\d)? (B|KiB) ", shown), shown
    assert " bytes " not in shown
    # The media page's download link of a published original.
    form_post(client, f"/m/{entry.id}/edit", {"title": "Tiny", "license": "", "original": "public"},
              page=f"/m/{entry.id}/edit")
    with rt.sessions() as session:
        original = session.get(MediaEntry, entry.id).rendition("original")
    page = client.get(f"/u/alice/m/{entry.id}").text
    assert f"8×8, {format_size(original.size_bytes)}" in page and " MB" not in page and " kB" not in page


@pytest.mark.db
def test_the_download_menu_lists_every_file_and_the_original_once_published(client, settings, rt, images):
    register(client, settings)
    assert upload(client, images["plain"]).status_code == 200
    media_id = int(re.findall(r'href="/u/alice/m/(\d+)"', client.get("/u/alice").text)[0])
    page = client.get(f"/u/alice/m/{media_id}").text
    menu = page.split('<details class="downloads">')[1].split("</details>")[0]
    links = re.findall(r'<a href="([^"]+)" download>([^<]+)</a>', menu)
    with rt.sessions() as session:  # every rendition of the item, each a picture here
        names = [r.name for r in session.get(MediaEntry, media_id).renditions]
    assert len(links) == len(names) >= 2 and {label for _, label in links} == {"Picture"} and "JPEG · " in menu
    for href, _ in links:
        assert client.get(href).status_code == 200
    form_post(client, f"/m/{media_id}/edit", {"title": "Plain", "original": "public"})
    menu = client.get(f"/u/alice/m/{media_id}").text.split('<details class="downloads">')[1].split("</details>")[0]
    assert re.findall(r'download>([^<]+)</a>', menu) == ["Original", *["Picture"] * len(names)]
