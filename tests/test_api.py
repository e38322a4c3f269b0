"""The JSON API: tokens, upload, get, list, patch, delete, and its OpenAPI schema."""

from __future__ import annotations

import pytest

from kiln.accounts import services as accounts


def make_user(rt, name="alice", verified=True):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        accounts.create_user(session, name, f"{name}@example.com", "correct horse", verified=verified)
        session.commit()


def token_for(client, name="alice", scope="write") -> dict[str, str]:  # type: ignore[no-untyped-def]
    resp = client.post("/api/v1/tokens", json={"username": name, "password": "correct horse", "scope": scope})
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


@pytest.mark.db
def test_token_upload_get_list_patch_delete(client, rt, images):
    make_user(rt)
    auth = token_for(client)
    with images["camera"].open("rb") as fh:
        resp = client.post("/api/v1/media", headers=auth, files={"file": ("IMG_0001.JPG", fh, "image/jpeg")},
                           data={"title": "Stockholm", "tags": "city, sweden", "description": "*Hej*"})
    assert resp.status_code == 202, resp.text
    item = resp.json()
    assert item["kind"] == "image" and item["title"] == "Stockholm" and item["owner"] == "alice"
    assert item["url"] == f"http://testserver/u/alice/m/{item['id']}"
    got = client.get(f"/api/v1/media/{item['id']}").json()  # anonymous may read processed media
    assert got["state"] == "processed"
    assert set(got["renditions"]) == {"thumbnail", "thumbnail_2x", "medium"}
    for rendition in got["renditions"].values():
        assert {"url", "width", "height", "mime_type", "bytes"} <= set(rendition)
        assert client.get(rendition["url"]).status_code == 200
    assert [s["state"] for s in got["steps"]] == ["done", "done", "done"]
    listed = client.get("/api/v1/media", params={"tag": "sweden"}).json()
    assert [m["id"] for m in listed["items"]] == [item["id"]] and listed["next"] is None
    patched = client.patch(f"/api/v1/media/{item['id']}", headers=auth, json={"title": "Gamla stan", "tags": ["old"]})
    assert patched.status_code == 200 and patched.json()["title"] == "Gamla stan"
    assert patched.json()["tags"] == ["old"]
    assert client.delete(f"/api/v1/media/{item['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/media/{item['id']}").status_code == 404


def test_api_errors_are_json_with_codes(client, rt, images):
    make_user(rt)
    auth = token_for(client)
    bad_login = client.post("/api/v1/tokens", json={"username": "alice", "password": "wrong pass"})
    assert bad_login.status_code == 401 and bad_login.json()["error"]["code"] == "bad_credentials"
    anon = client.post("/api/v1/media", files={"file": ("a.jpg", b"x", "image/jpeg")})
    assert anon.status_code == 401 and anon.json()["error"]["code"] == "not_authenticated"
    bogus = client.get("/api/v1/media", headers={"Authorization": "Bearer nope"})
    assert bogus.status_code == 401 and bogus.json()["error"]["code"] == "bad_token"
    text = client.post("/api/v1/media", headers=auth, files={"file": ("photo.jpg", b"just text\n", "image/jpeg")})
    assert text.status_code == 415 and "text file" in text.json()["error"]["message"]
    missing = client.post("/api/v1/media", headers=auth, data={"title": "no file"})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "invalid"
    assert client.get("/api/v1/media/999").status_code == 404
    assert client.get("/api/v1/media", params={"state": "bogus"}).status_code == 422
    assert client.get("/api/v1/media", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/media", params={"cursor": "x"}).status_code == 422


def test_read_only_tokens_cannot_write_and_others_cannot_touch(client, rt, images):
    make_user(rt)
    make_user(rt, "bob")
    alice = token_for(client)
    with images["plain"].open("rb") as fh:
        item = client.post("/api/v1/media", headers=alice, files={"file": ("p.jpg", fh, "image/jpeg")}).json()
    reader = token_for(client, scope="read")
    denied = client.patch(f"/api/v1/media/{item['id']}", headers=reader, json={"title": "x"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "read_only_token"
    bob = token_for(client, "bob")
    assert client.patch(f"/api/v1/media/{item['id']}", headers=bob, json={"title": "x"}).status_code == 403
    assert client.delete(f"/api/v1/media/{item['id']}", headers=bob).status_code == 403


@pytest.mark.db
def test_unfinished_media_is_listed_only_for_its_owner(client, rt, images):
    make_user(rt)
    make_user(rt, "bob")
    alice = token_for(client)
    with images["truncated"].open("rb") as fh:
        failed = client.post("/api/v1/media", headers=alice, files={"file": ("t.jpg", fh, "image/jpeg")}).json()
    mine = client.get("/api/v1/media", params={"state": "failed", "user": "alice"}, headers=alice).json()
    assert [m["id"] for m in mine["items"]] == [failed["id"]]
    assert mine["items"][0]["error"]["code"] == "corrupt"
    assert client.get("/api/v1/media", params={"state": "failed", "user": "alice"},
                      headers=token_for(client, "bob")).status_code == 403
    assert client.get(f"/api/v1/media/{failed['id']}").status_code == 404
    assert client.get(f"/api/v1/media/{failed['id']}", headers=alice).json()["state"] == "failed"


def test_cookie_sessions_need_the_csrf_header_for_api_writes(client, rt, settings):
    from tests.conftest import register

    register(client, settings)
    resp = client.delete("/api/v1/media/1")
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "csrf_failed"


def test_openapi_schema_documents_every_operation(client):
    schema = client.get("/api/openapi.json").json()
    ops = {(path, method) for path, item in schema["paths"].items() for method in item}
    # The media API's operations; each area's tests check its own (tests/test_collections.py ...).
    assert ops >= {("/api/v1/tokens", "post"), ("/api/v1/media", "post"), ("/api/v1/media", "get"),
                   ("/api/v1/media/{media_id}", "get"), ("/api/v1/media/{media_id}", "patch"),
                   ("/api/v1/media/{media_id}", "delete"), ("/api/v1/media/{media_id}/retry", "post"),
                   ("/api/v1/admin/processing", "get"), ("/api/v1/media/{media_id}/captions", "post"),
                   ("/api/v1/media/{media_id}/captions/{language}", "delete")}
    assert {"MediaOut", "ProcessingOverviewOut"} <= set(schema["components"]["schemas"])


def test_an_authorization_header_that_is_not_a_bearer_token_does_not_skip_csrf(client, rt, settings, images):
    """One method per request: a cookie session stays CSRF-checked whatever else is sent; a Bearer
    token is the only credential of its request (a bad one is refused, never the cookie's user)."""
    from tests.conftest import form_post

    make_user(rt)
    with images["plain"].open("rb") as fh:
        media_id = client.post("/api/v1/media", headers=token_for(client), files={"file": ("p.jpg", fh)}).json()["id"]
    form_post(client, "/auth/login", {"username": "alice", "password": "correct horse"})
    assert client.cookies.get("kiln_session")
    for header in ("Basic junk", "Digest x", "bearer", "Token abc"):
        resp = client.delete(f"/api/v1/media/{media_id}", headers={"Authorization": header})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "csrf_failed", header
    resp = client.delete(f"/api/v1/media/{media_id}", headers={"Authorization": "Bearer not-a-token"})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "bad_token"
    assert client.get(f"/api/v1/media/{media_id}").status_code == 200


def test_an_idempotency_key_makes_a_retried_upload_return_the_same_item(client, rt, images):
    """A client that lost the answer and sends again with the same key gets the first item back (200,
    body not read), not a duplicate; another key, or another person's same key, makes a new item."""
    make_user(rt)
    make_user(rt, "bob")
    alice, bob = token_for(client), token_for(client, "bob")

    def send(auth, key, name="plain"):  # type: ignore[no-untyped-def]
        with images[name].open("rb") as fh:
            return client.post("/api/v1/media", headers={**auth, "Idempotency-Key": key}, files={"file": ("p.jpg", fh)})

    first = send(alice, "upload-1")
    assert first.status_code == 202
    again = send(alice, "upload-1", "webp")
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert send(alice, "upload-2").json()["id"] != first.json()["id"]
    assert send(bob, "upload-1").json()["owner"] == "bob"
    listed = client.get("/api/v1/media", params={"user": "alice"}).json()["items"]
    assert len(listed) == 2
    assert send(alice, "\x07bad").status_code in (400, 422)
    client.delete(f"/api/v1/media/{first.json()['id']}", headers=alice)
    assert send(alice, "upload-1").status_code == 202  # the item is gone: the key is free again
