"""Originals stay private unless the owner publishes them, as they are or without camera data."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from kiln.accounts import services as accounts
from kiln.errors import InvalidInput, PermissionDenied
from kiln.media import services as media_service
from kiln.media.models import MediaEntry


@pytest.fixture
def photo(rt, images):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        owner = accounts.create_user(session, "alice", "a@example.com", "correct horse", verified=True)
        accounts.create_user(session, "bob", "b@example.com", "correct horse", verified=True)
        session.commit()
        with images["camera"].open("rb") as fh:
            media_id = media_service.submit(rt, session, owner, fh, "cam.jpg", media_service.MediaFields()).id
    return media_id


def publish(rt, media_id, username, mode):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        media_service.publish_original(rt, session, accounts.get_user(session, username), media, mode)
        return media.rendition("original")


def test_original_is_private_until_published_then_private_again(rt, photo, images, client):
    with rt.sessions() as session:
        media = session.get(MediaEntry, photo)
        assert media_service.original_mode(media) == "private" and media.rendition("original") is None
        private_key = media.original_key
    assert not any("original" in "/".join(k) for k in rt.stores.public.iter_keys())

    stripped = publish(rt, photo, "alice", "stripped")
    served = client.get(rt.stores.public.url(stripped.key))
    assert served.status_code == 200
    with Image.open(io.BytesIO(served.content)) as im:
        assert not im.getexif().get_ifd(0x8825) and im.getexif().get(0x0112) == 6
        assert im.size == (6000, 4000)  # full size, stored sideways with its orientation tag
    assert b"TestCam" not in served.content

    as_is = publish(rt, photo, "alice", "public")
    assert client.get(rt.stores.public.url(as_is.key)).content == images["camera"].read_bytes()
    assert not rt.stores.public.exists(stripped.key)  # the stripped copy was replaced

    assert publish(rt, photo, "alice", "private") is None
    assert not rt.stores.public.exists(as_is.key)
    assert rt.stores.originals.exists(private_key)  # the private original never moves


def test_only_the_owner_publishes_and_only_processed_media(rt, photo, images):
    with pytest.raises(PermissionDenied):
        publish(rt, photo, "bob", "public")
    with pytest.raises(InvalidInput):
        publish(rt, photo, "alice", "everyone")
    with rt.sessions() as session:
        owner = accounts.get_user(session, "alice")
        with images["truncated"].open("rb") as fh:
            broken = media_service.submit(rt, session, owner, fh, "t.jpg", media_service.MediaFields()).id
    with pytest.raises(InvalidInput):
        publish(rt, broken, "alice", "public")


def test_png_originals_are_stripped_losslessly(rt, images):
    with rt.sessions() as session:
        owner = accounts.create_user(session, "carol", "c@example.com", "correct horse", verified=True)
        session.commit()
        with images["alpha_png"].open("rb") as fh:
            media_id = media_service.submit(rt, session, owner, fh, "a.png", media_service.MediaFields()).id
    published = publish(rt, media_id, "carol", "stripped")
    assert published.mime_type == "image/png"
    with rt.stores.public.open(published.key) as fh, Image.open(images["alpha_png"]) as original:
        copy = Image.open(io.BytesIO(fh.read()))
        assert copy.tobytes() == original.tobytes() and copy.mode == original.mode


def test_owner_publishes_the_original_from_the_edit_page(client, settings, rt, images):
    from tests.conftest import csrf, form_post, register

    register(client, settings)
    client.post("/upload", data={"csrf_token": csrf(client, "/upload")},
                files={"file": ("cam.jpg", images["camera"].read_bytes(), "image/jpeg")})
    with rt.sessions() as session:
        media_id = session.query(MediaEntry).one().id
    page = client.get(f"/m/{media_id}/edit")
    assert 'value="private" checked' in page.text
    form_post(client, f"/m/{media_id}/edit", {"title": "Cam", "original": "stripped"})
    media_page = client.get(f"/u/alice/m/{media_id}")
    assert "Download the original" in media_page.text and "without camera data" in media_page.text
    href = media_page.text.split('<p class="download"><a href="')[1].split('"')[0]
    assert b"TestCam" not in client.get(href).content
    form_post(client, f"/m/{media_id}/edit", {"title": "Cam", "original": "private"})
    assert "Download the original" not in client.get(f"/u/alice/m/{media_id}").text
    assert client.get(href).status_code == 404


def test_api_patch_publishes_the_original(client, rt, images):
    from tests.test_api import make_user, token_for

    make_user(rt, "dora")
    auth = token_for(client, "dora")
    with images["plain"].open("rb") as fh:
        media_id = client.post("/api/v1/media", headers=auth, files={"file": ("p.jpg", fh, "image/jpeg")}).json()["id"]
    item = client.patch(f"/api/v1/media/{media_id}", headers=auth, json={"original": "public"}).json()
    assert client.get(item["renditions"]["original"]["url"]).content == images["plain"].read_bytes()
    bad = client.patch(f"/api/v1/media/{media_id}", headers=auth, json={"original": "everyone"})
    assert bad.status_code == 422


def test_private_originals_and_queued_files_have_no_url(client, rt, photo, images):
    """Local stores: only the public store is served, so no path reaches an original or the queue."""
    with rt.sessions() as session:
        media = session.get(MediaEntry, photo)
        key = "/".join(media.original_key)
    assert rt.stores.originals.exists(media.original_key)
    for path in (f"/media/{key}", f"/media/../originals/{key}", f"/media/%2e%2e/originals/{key}",
                 f"/media/originals/{key}", f"/media/queue/{key}"):
        assert client.get(path).status_code == 404, path
