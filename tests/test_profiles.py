"""Profiles: the avatar (square WebP renditions, upright, no EXIF or GPS, in the public store), links
(http and https only), the comment setting, and the counts on the profile header and in the API."""

from __future__ import annotations

import io

import pytest
import pyvips
from fastapi.testclient import TestClient
from PIL import Image

from kiln.accounts.models import User
from kiln.errors import InvalidInput
from kiln.runtime import Runtime
from kiln.social import profiles
from kiln.social.models import Collection
from tests.fixtures_images import make_camera_jpeg, make_text_as_jpeg
from tests.social_kit import api, log_in, person, post, upload

pytestmark = pytest.mark.db


def _user(rt: Runtime, user_id: int) -> User:
    with rt.sessions() as session:
        user = session.get(User, user_id)
        assert user is not None
        session.expunge(user)
        return user


def test_avatar_is_square_upright_and_without_camera_data(rt: Runtime, client: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    photo = make_camera_jpeg(tmp_path, orientation=6)  # EXIF with GPS, stored sideways
    with Image.open(photo) as original:
        assert original.getexif() and original.size[0] > original.size[1]
    me = person(rt, "anna")
    log_in(client, rt, me)
    answer = post(client, "/account/avatar", files={"file": ("me.jpg", photo.read_bytes(), "image/jpeg")})
    assert answer.status_code == 303, answer.text
    keys = _user(rt, me).avatar
    assert keys and set(keys) == {"64", "256"} and keys["256"][:2] == ["avatars", str(me)]
    for size, key in keys.items():
        with rt.stores.public.open(key) as fh:
            data = fh.read()
        image = pyvips.Image.new_from_buffer(data, "")
        assert (image.width, image.height) == (int(size), int(size))
        assert image.get_typeof("exif-data") == 0 and image.get_typeof("xmp-data") == 0
        assert b"Exif" not in data and b"GPS" not in data
    gallery = client.get("/u/anna").text
    assert f'src="{rt.stores.public.url(keys["256"])}"' in gallery
    assert api(client, "GET", "/api/v1/users/anna").json()["avatar"]["64"].endswith("64.webp")
    # A new picture replaces the old files; removing it brings the initials back.
    post(client, "/account/avatar", files={"file": ("me.jpg", photo.read_bytes(), "image/jpeg")})
    newer = _user(rt, me).avatar
    assert newer and newer["64"] != keys["64"] and not rt.stores.public.exists(keys["64"])
    assert post(client, "/account/avatar/delete").status_code == 303
    assert _user(rt, me).avatar is None and not rt.stores.public.exists(newer["64"])
    assert 'avatar-initials' in client.get("/u/anna").text


def test_a_file_that_is_not_a_picture_is_refused_with_a_sentence(rt: Runtime, client: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    me = person(rt, "anna")
    log_in(client, rt, me)
    fake = make_text_as_jpeg(tmp_path)
    answer = post(client, "/account/avatar", files={"file": ("me.jpg", fake.read_bytes(), "image/jpeg")},
                  headers={"Accept": "application/json"})
    assert answer.status_code == 415 and "not a picture" in answer.json()["error"]["message"]
    assert _user(rt, me).avatar is None


def test_links_are_http_or_https_and_few() -> None:
    assert profiles.clean_links([("Site", " https://a.example/x "), ("", ""), ("", "http://b.example")]) == [
        {"label": "Site", "url": "https://a.example/x"}, {"label": "b.example", "url": "http://b.example"}]
    for bad in ("javascript:alert(1)", "data:text/html,hi", "ftp://a.example", "https://", "a.example"):
        with pytest.raises(InvalidInput) as refused:
            profiles.clean_links([("x", bad)])
        assert refused.value.code == "bad_link" and "http://" in refused.value.message
    with pytest.raises(InvalidInput) as too_many:
        profiles.clean_links([("x", f"https://{i}.example") for i in range(6)])
    assert too_many.value.code == "too_many_links"


def test_links_and_comment_setting_on_the_account_page(rt: Runtime, client: TestClient) -> None:
    me = person(rt, "anna")
    log_in(client, rt, me)
    assert 'name="comments_enabled"' in client.get("/account").text
    saved = post(client, "/account/links", {"label": ["Blog", ""], "url": ["https://blog.example", ""]})
    assert saved.status_code == 303 and _user(rt, me).links == [{"label": "Blog", "url": "https://blog.example"}]
    refused = post(client, "/account/links", {"label": ["Bad"], "url": ["javascript:alert(1)"]})
    assert refused.status_code == 422 and _user(rt, me).links[0]["label"] == "Blog"
    assert '<a href="https://blog.example" rel="me nofollow">Blog</a>' in client.get("/u/anna").text
    assert post(client, "/account/comments", {}).status_code == 303 and _user(rt, me).comments_enabled is False
    post(client, "/account/comments", {"comments_enabled": "true"})
    assert _user(rt, me).comments_enabled is True


def test_counts_count_only_public_things(rt: Runtime, client: TestClient) -> None:
    me, fan = person(rt, "anna"), person(rt, "fan")
    upload(rt, me, "Shown")
    upload(rt, me, "Unlisted", visibility="unlisted")
    upload(rt, me, "Private", visibility="private")
    with rt.sessions() as session:
        session.add_all([Collection(owner_id=me, title="Open"), Collection(owner_id=me, title="Mine",
                                                                           visibility="private")])
        session.commit()
    log_in(client, rt, fan)
    api(client, "PUT", "/api/v1/users/anna/follow")
    assert api(client, "GET", "/api/v1/users/anna").json()["counts"] == {
        "media": 1, "collections": 1, "followers": 1, "following": 0}
    header = client.get("/u/anna").text
    assert "1 item" in header and "1 collection" in header and "1 follower" in header and "0 following" in header


def test_storage_gc_keeps_avatars(rt: Runtime, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kiln.media.garbage import gc

    me = person(rt, "anna")
    with rt.sessions() as session:
        user = session.get(User, me)
        assert user is not None
        profiles.set_avatar(rt, session, user, make_camera_jpeg(tmp_path).read_bytes())
    report = gc(rt.sessions, rt.stores, dry_run=False, grace=0)
    stray = [key for keys in report.unreferenced.values() for key in keys if key[0] == "avatars"]
    assert not stray, (stray, _user(rt, me).avatar)  # once seen failing in CI only: say what was left
    assert all(rt.stores.public.exists(key) for key in (_user(rt, me).avatar or {}).values())


def test_storage_gc_keeps_an_avatar_whose_recorded_key_the_store_cleaned(rt: Runtime) -> None:
    """Avatars made before their tokens were hex: a random token ending in "_" was recorded as it was
    written and saved without the "_" (the stores clean each component); gc must see them as one."""
    from kiln.media.garbage import gc

    me = person(rt, "ines")
    keys = {str(size): profiles.avatar_key(me, "th76BYlV6wp_", size) for size in profiles.AVATAR_SIZES}
    for key in keys.values():
        rt.stores.public.save(key, io.BytesIO(b"RIFF-not-really-webp"))
    with rt.sessions() as session:
        user = session.get(User, me)
        assert user is not None
        user.avatar = keys
        session.commit()
    report = gc(rt.sessions, rt.stores, dry_run=False, grace=0)
    assert not [key for keys_ in report.unreferenced.values() for key in keys_ if key[0] == "avatars"]
    assert all(rt.stores.public.exists(key) for key in keys.values())
