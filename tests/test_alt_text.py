"""Alternative text: what the owner writes reaches every picture of the item (pages, galleries, the
feed, the API); until then the title stands in and the owner is reminded, gently, on the item's page;
too long, hostile or one description for several files is refused with a sentence."""

from __future__ import annotations

import html
import re
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from kiln.media.models import ALT_TEXT_MAX
from kiln.runtime import Runtime
from tests.conftest import form_post, register

REMINDER = "has no description for people who cannot see it"


def upload(client: TestClient, rt: Runtime, path, **fields: str):  # type: ignore[no-untyped-def]
    with path.open("rb") as fh:
        return form_post(client, "/upload", fields, files={"file": (path.name, fh, "image/jpeg")}, page="/upload")


def photo(folder: Path, name: str, colour: tuple[int, int, int], size: tuple[int, int] = (320, 200)) -> Path:
    path = folder / name
    Image.new("RGB", size, colour).save(path, quality=85)
    return path


def test_alt_text_reaches_every_picture_and_the_reminder_only_the_owner(client, rt, settings, tmp_path):  # type: ignore[no-untyped-def]
    register(client, settings, "alice")
    described = "A red kite hovers over a ploughed field; the farmhouse is small, far off on the left."
    resp = upload(client, rt, photo(tmp_path, "kite.jpg", (160, 40, 30)), title="Kite", alt_text=described)
    assert resp.status_code == 200, resp.text
    resp = upload(client, rt, photo(tmp_path, "plain.jpg", (20, 40, 160)), title="Untold")
    assert resp.status_code == 200, resp.text
    items = {i["title"]: i for i in client.get("/api/v1/media?user=alice").json()["items"]}
    kite, untold = items["Kite"], items["Untold"]
    assert kite["alt_text"] == described and untold["alt_text"] == ""

    page = client.get(f"/u/alice/m/{kite['id']}").text
    assert f'alt="{html.escape(described, quote=True)}"' in page and REMINDER not in page
    page = client.get(f"/u/alice/m/{untold['id']}").text
    assert 'alt="Untold"' in page and REMINDER in page and f'href="/m/{untold["id"]}/edit#alt"' in page
    assert f'alt="{html.escape(described, quote=True)}"' in client.get("/u/alice").text
    assert f'alt="{described}"' in html.unescape(html.unescape(client.get("/feeds/atom").text))

    stranger = TestClient(client.app, base_url=str(client.base_url))
    assert REMINDER not in stranger.get(f"/u/alice/m/{untold['id']}").text

    # Edit writes it (the form sends every field), PATCH too; an empty one goes back to the title.
    edit = {"title": "Untold", "description": "", "tags": "", "license": "", "alt_text": "Blue, with a white band."}
    resp = form_post(client, f"/m/{untold['id']}/edit", edit)
    assert resp.status_code == 200 and REMINDER not in resp.text and 'alt="Blue, with a white band."' in resp.text
    got = stranger.post("/api/v1/tokens", json={"username": "alice", "password": "correct horse", "scope": "write"})
    assert got.status_code == 201, got.text
    token = got.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    resp = stranger.patch(f"/api/v1/media/{untold['id']}", json={"alt_text": ""}, headers=auth)
    assert resp.status_code == 200 and resp.json()["alt_text"] == ""
    assert REMINDER in client.get(f"/u/alice/m/{untold['id']}").text


def test_too_long_hostile_and_one_for_many_are_refused_with_a_sentence(client, rt, settings, tmp_path):  # type: ignore[no-untyped-def]
    register(client, settings, "bob")
    picture = photo(tmp_path, "p.jpg", (1, 2, 3), size=(64, 48))
    resp = upload(client, rt, picture, alt_text="x" * (ALT_TEXT_MAX + 1))
    assert resp.status_code == 422 and "can have at most 1,500 characters; this one has 1,501" in resp.text

    with picture.open("rb") as a, picture.open("rb") as b:
        resp = form_post(client, "/upload", {"alt_text": "Two of them"}, page="/upload",
                         files=[("file", ("a.jpg", a, "image/jpeg")), ("file", ("b.jpg", b, "image/jpeg"))])
    assert resp.status_code == 422 and "is about one picture" in resp.text
    assert client.get("/api/v1/media?user=bob").json()["items"] == []  # nothing half taken

    # Markup and invisible controls: stored as text (controls dropped), shown escaped, never markup.
    hostile = '"><script>alert(1)</script>\x00\u202e'
    resp = upload(client, rt, picture, title="Hostile", alt_text=hostile)
    assert resp.status_code == 200
    item = client.get("/api/v1/media?user=bob").json()["items"][0]
    assert "<script>" in item["alt_text"] and "\x00" not in item["alt_text"]
    page = client.get(f"/u/bob/m/{item['id']}").text
    assert "<script>alert(1)" not in page
    assert re.search(r'alt="(&#34;|&quot;)&gt;&lt;script&gt;', page)

    api = TestClient(client.app, base_url=str(client.base_url))
    token = api.post("/api/v1/tokens", json={"username": "bob", "password": "correct horse",
                                             "scope": "write"}).json()["token"]
    resp = api.patch(f"/api/v1/media/{item['id']}", json={"alt_text": "y" * (ALT_TEXT_MAX + 1)},
                        headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 422 and resp.json()["error"]["message"]
