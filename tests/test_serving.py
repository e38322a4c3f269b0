"""How user bytes leave Kiln: pictures, video and sound are shown; originals and everything else
(text, JSON, models, documents) are downloads; a media domain replaces /media in every URL."""

from __future__ import annotations

from kiln.config import BackendSettings, StorageSettings
from kiln.media.models import MediaEntry
from kiln.storage import open_store
from tests.conftest import form_post, make_settings, register
from tests.mediatypes.test_conformance import upload


def test_pictures_show_inline_and_other_files_download(client, settings, rt, samples):
    register(client, settings)
    upload(client, samples("image")["plain"])
    upload(client, samples("text")["utf8"])
    with rt.sessions() as session:
        photo, text = session.query(MediaEntry).order_by(MediaEntry.id).all()
        thumb, plain = photo.rendition("thumbnail"), text.rendition("text")
        photo_id = photo.id
    shown = client.get(rt.stores.public.url(thumb.key))
    assert shown.status_code == 200 and "content-disposition" not in shown.headers
    assert shown.headers["content-security-policy"] == "default-src 'none'; sandbox"
    saved = client.get(rt.stores.public.url(plain.key))
    assert saved.status_code == 200 and saved.headers["content-disposition"].startswith("attachment")
    assert saved.headers["x-content-type-options"] == "nosniff"

    form_post(client, f"/m/{photo_id}/edit", {"title": "Sea", "original": "public"})
    with rt.sessions() as session:
        original = session.get(MediaEntry, photo_id).rendition("original")
    published = client.get(rt.stores.public.url(original.key))
    assert published.status_code == 200
    assert published.headers["content-disposition"] == 'attachment; filename="original.jpg"'


def test_a_media_domain_replaces_the_media_route_in_urls(tmp_path, db_url):
    storage = StorageSettings(backends={"local": BackendSettings(public_url="https://media.example.org/")})
    settings = make_settings(tmp_path / "data", db_url, storage=storage)
    store = open_store(settings, "local", "public")
    assert store.url(["entries", "1", "thumbnail.jpg"]) == "https://media.example.org/entries/1/thumbnail.jpg"
    default = open_store(make_settings(tmp_path / "other", db_url), "local", "public")
    assert default.url(["entries", "1", "thumbnail.jpg"]) == "/media/entries/1/thumbnail.jpg"
