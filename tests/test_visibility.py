"""Public, unlisted and private media: who sees what, on every page, feed, API call and file URL.

Private (and deleted) items answer 404 to everyone but the owner and admins, moderators included,
and making an item private retires every rendition URL handed out before, on every backend.
"""

from __future__ import annotations

import io
import re

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image

from kiln.accounts import services as accounts
from kiln.app import create_app
from kiln.cli import main
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.web.deps import SESSION_COOKIE
from tests.conftest import BASE_URL, form_post, register
from tests.fixtures_images import make_truncated_jpeg
from tests.storage.conftest import remote_rt  # noqa: F401  (a fixture, requested by name)

VIEWERS = ("anonymous", "owner", "other", "moderator", "admin")
SEES_PRIVATE = {"owner", "admin"}
NAMES = {"owner": "olga", "other": "bob", "moderator": "mona", "admin": "ada"}


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((320, 240)).convert("RGB").save(out, "JPEG")
    return out.getvalue()


def path_of(url: str) -> str:
    return url.removeprefix(BASE_URL)


@pytest.fixture
def people(rt, client):  # type: ignore[no-untyped-def]
    """Headers per viewer: an API token for the API and a login cookie for the pages (pages ignore
    tokens), so one client serves every role."""
    with rt.sessions() as session:
        for role, name in NAMES.items():
            user = accounts.create_user(session, name, f"{name}@example.com", "correct horse", verified=True,
                                        admin=role == "admin")
            if role == "moderator":
                accounts.grant(user, "moderator")
        session.commit()
        tokens = {role: accounts.create_api_token(session, accounts.get_user(session, name), "t", "write")
                  for role, name in NAMES.items()}
        cookies = {role: accounts.start_session(session, accounts.get_user(session, name))
                   for role, name in NAMES.items()}
        session.commit()
    heads = {name: {"Authorization": f"Bearer {token}", "Cookie": f"{SESSION_COOKIE}={cookies[name]}"}
             for name, token in tokens.items()}
    return {"anonymous": {}, **heads}


def upload(client, auth, visibility: str, tags: str = "sea") -> dict:  # type: ignore[no-untyped-def, type-arg]
    resp = client.post("/api/v1/media", headers=auth, files={"file": ("sea.jpg", jpeg(), "image/jpeg")},
                       data={"title": f"A {visibility} sea", "tags": tags, "visibility": visibility})
    assert resp.status_code == 202, resp.text
    item = client.get(f"/api/v1/media/{resp.json()['id']}", headers=auth).json()
    assert item["state"] == "processed" and item["visibility"] == visibility, item
    published = client.patch(f"/api/v1/media/{item['id']}", headers=auth, json={"original": "public"})
    assert published.status_code == 200, published.text
    return published.json()  # type: ignore[no-any-return]


def observe(client, headers, item) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What one viewer gets from every surface that could show the item."""
    media_id, link = item["id"], f"/u/olga/m/{item['id']}"
    listed = {
        "front": client.get("/", headers=headers).text,
        "gallery": client.get("/u/olga", headers=headers).text,
        "tag page": client.get("/tag/sea", headers=headers).text,
        "site feed": client.get("/feeds/atom", headers=headers).text,
        "user feed": client.get("/feeds/u/olga/atom", headers=headers).text,
        "tag feed": client.get("/feeds/tag/sea/atom", headers=headers).text,
    }
    seen: dict[str, object] = {name: link in body for name, body in listed.items()}
    api_lists = [client.get("/api/v1/media", headers=headers, params=p).json()["items"]
                 for p in ({}, {"user": "olga"}, {"tag": "sea"})]
    seen["api list"] = any(m["id"] == media_id for items in api_lists for m in items)
    seen["page"] = client.get(link, headers=headers).status_code
    seen["api get"] = client.get(f"/api/v1/media/{media_id}", headers=headers).status_code
    for name, rendition in item["renditions"].items():
        seen[name] = client.get(path_of(rendition["url"]), headers=headers).status_code
    return seen


@pytest.mark.parametrize("visibility", ["public", "unlisted", "private"])
@pytest.mark.db
def test_who_sees_what(client, people, visibility):
    item = upload(client, people["owner"], visibility)
    assert set(item["renditions"]) == {"thumbnail", "thumbnail_2x", "medium", "original"}
    listed = visibility == "public"
    for viewer in VIEWERS:
        allowed = visibility != "private" or viewer in SEES_PRIVATE
        status = 200 if allowed else 404
        # An owner's own gallery lists everything they have (tests below); every other list is public only.
        expected = {"front": listed, "gallery": listed or viewer == "owner", "tag page": listed, "site feed": listed,
                    "user feed": listed, "tag feed": listed, "api list": listed, "page": status,
                    "api get": status, "thumbnail": status, "thumbnail_2x": status, "medium": status,
                    "original": status}
        assert observe(client, people[viewer], item) == expected, (visibility, viewer)


@pytest.mark.db
def test_private_pages_point_only_at_the_checked_route(client, people, rt):
    item = upload(client, people["owner"], "private")
    with rt.sessions() as session:  # processed straight under the item's token
        media = session.get(MediaEntry, item["id"])
        assert len(media.key_token) == 32 and all(r.key[2] == media.key_token for r in media.renditions)
    assert all(path_of(r["url"]).startswith(f"/m/{item['id']}/r/") for r in item["renditions"].values())
    page = client.get(f"/u/olga/m/{item['id']}", headers=people["owner"]).text
    shown = page[page.find("<main"):page.find("</main>")]  # what to read if this fails
    assert f'src="/m/{item["id"]}/r/medium"' in page, shown
    assert "/media/entries" not in page, shown
    assert "Private: only you" in page
    served = client.get(f"/m/{item['id']}/r/medium", headers=people["owner"])
    assert served.headers["cache-control"] == "private, no-store"
    assert served.headers["x-content-type-options"] == "nosniff" and served.content[:3] == b"\xff\xd8\xff"
    ranged = client.get(f"/m/{item['id']}/r/medium", headers={**people["admin"], "Range": "bytes=0-9"})
    assert ranged.status_code == 206 and len(ranged.content) == 10
    original = client.get(f"/m/{item['id']}/r/original", headers=people["owner"])
    assert original.headers["content-disposition"].startswith("attachment")
    assert client.get(f"/m/{item['id']}/r/nothing", headers=people["owner"]).status_code == 404
    assert client.get("/m/99999/r/medium", headers=people["owner"]).status_code == 404


@pytest.mark.db
def test_owners_see_everything_of_theirs_in_their_gallery_marked_and_nobody_else_does(client, people, rt,
                                                                                       tmp_path):
    items = {v: upload(client, people["owner"], v) for v in ("public", "unlisted", "private")}
    damaged = client.post("/api/v1/media", headers=people["owner"], data={"title": "A damaged sea"},
                          files={"file": ("bad.jpg", make_truncated_jpeg(tmp_path).read_bytes(), "image/jpeg")})
    assert damaged.status_code == 202
    failed = damaged.json()["id"]
    link = "/u/olga/m/{}".format
    anonymous_before = client.get("/u/olga")  # fills the anonymous page cache first

    own = client.get("/u/olga", headers=people["owner"])
    assert own.status_code == 200 and own.headers["cache-control"].startswith("private")
    for visibility, item in items.items():
        assert link(item["id"]) in own.text, visibility
    assert link(failed) in own.text and "Not ready yet" in own.text
    marks = {}  # card by card: the first mark of each card that has one
    for card in own.text.split("<li>")[1:]:
        found = re.search(r'href="/u/olga/m/(\d+)".*?<p class="marks">\s*<span class="mark [^"]+">(\w+)',
                          card.split("</li>")[0], re.S)
        if found:
            marks[found.group(1)] = found.group(2)
    assert marks == {str(items["private"]["id"]): "Private", str(items["unlisted"]["id"]): "Unlisted",
                     str(failed): "Failed"}
    # Private thumbnails go through the checked route only; the owner can fetch them there.
    private_id = items["private"]["id"]
    assert f'src="/m/{private_id}/r/thumbnail"' in own.text and f"/media/entries/{private_id}/" not in own.text
    assert client.get(f"/m/{private_id}/r/thumbnail", headers=people["owner"]).status_code == 200
    # The processing panel marks them too.
    panel = client.get("/panel", headers=people["owner"]).text
    assert '<span class="mark mark-private">Private</span>' in panel
    assert '<span class="mark mark-unlisted">Unlisted</span>' in panel

    # Everyone else, before and after the owner's visit (the page cache never hands theirs out).
    for viewer in ("anonymous", "other", "moderator", "admin"):
        seen = client.get("/u/olga", headers=people[viewer]).text
        assert link(items["public"]["id"]) in seen, viewer
        for hidden in (items["unlisted"]["id"], private_id, failed):
            assert link(hidden) not in seen, (viewer, hidden)
        assert 'class="mark' not in seen and "Not ready yet" not in seen, viewer
    assert client.get("/u/olga").text == anonymous_before.text
    # The owner's own feed stays public only.
    feed = client.get("/feeds/u/olga/atom", headers=people["owner"]).text
    assert f"/m/{items['public']['id']}" in feed
    assert all(f"/m/{i}" not in feed for i in (items["unlisted"]["id"], private_id, failed))


@pytest.mark.db
def test_making_an_item_private_retires_its_old_urls(client, people, rt):
    item = upload(client, people["owner"], "unlisted")
    old_urls = {name: path_of(r["url"]) for name, r in item["renditions"].items()}
    assert all(client.get(url).status_code == 200 for url in old_urls.values())
    with rt.sessions() as session:
        old_token = session.get(MediaEntry, item["id"]).key_token

    made_private = client.patch(f"/api/v1/media/{item['id']}", headers=people["owner"],
                                json={"visibility": "private"})
    assert made_private.status_code == 200 and made_private.json()["visibility"] == "private"
    for url in old_urls.values():  # anyone, even the owner: the files are gone
        assert client.get(url, headers=people["owner"]).status_code == 404, url
    with rt.sessions() as session:
        media = session.get(MediaEntry, item["id"])
        assert media.key_token != old_token
        assert all(r.key[2] == media.key_token and rt.stores.public.exists(r.key) for r in media.renditions)
    for name in old_urls:
        assert client.get(f"/m/{item['id']}/r/{name}", headers=people["owner"]).status_code == 200
        assert client.get(f"/m/{item['id']}/r/{name}", headers=people["other"]).status_code == 404

    # Public again: reachable at its (new) store URLs, listed again.
    public = client.patch(f"/api/v1/media/{item['id']}", headers=people["owner"], json={"visibility": "public"})
    assert all(client.get(path_of(r["url"])).status_code == 200 for r in public.json()["renditions"].values())
    assert f"/u/olga/m/{item['id']}" in client.get("/").text


@pytest.mark.db
def test_deleted_items_are_gone_everywhere(client, people):
    item = upload(client, people["owner"], "public")
    urls = [path_of(r["url"]) for r in item["renditions"].values()]
    assert client.delete(f"/api/v1/media/{item['id']}", headers=people["owner"]).status_code == 204
    for viewer in ("owner", "admin", "anonymous"):
        headers = people[viewer]
        assert client.get(f"/u/olga/m/{item['id']}", headers=headers).status_code == 404
        assert client.get(f"/api/v1/media/{item['id']}", headers=headers).status_code == 404
        assert client.get(f"/m/{item['id']}/r/medium", headers=headers).status_code == 404
        assert all(client.get(url, headers=headers).status_code == 404 for url in urls)
    assert f"/m/{item['id']}" not in client.get("/feeds/atom").text


@pytest.mark.db
def test_others_cannot_change_visibility_and_bad_values_are_refused(client, people):
    item = upload(client, people["owner"], "public")
    assert client.patch(f"/api/v1/media/{item['id']}", headers=people["other"],
                        json={"visibility": "private"}).status_code == 403
    assert client.patch(f"/api/v1/media/{item['id']}", headers=people["owner"],
                        json={"visibility": "secret"}).status_code == 422
    bad = client.post("/api/v1/media", headers=people["owner"], data={"visibility": "hidden"},
                      files={"file": ("sea.jpg", jpeg(), "image/jpeg")})
    assert bad.status_code == 422
    mine = client.get(f"/api/v1/media/{item['id']}", headers=people["owner"]).json()
    assert mine["visibility"] == "public"
    private = upload(client, people["owner"], "private")
    # Another user's PATCH on a private item learns nothing: 404, like a GET.
    assert client.patch(f"/api/v1/media/{private['id']}", headers=people["other"],
                        json={"visibility": "public"}).status_code == 404


@pytest.mark.db
def test_upload_form_and_edit_page_set_visibility(client, rt, settings):
    register(client, settings, "alice")
    assert 'name="visibility"' in client.get("/upload").text
    resp = form_post(client, "/upload", {"title": "Hidden", "visibility": "private"},
                     files={"file": ("sea.jpg", jpeg(), "image/jpeg")})
    assert resp.status_code == 200, resp.text
    with rt.sessions() as session:
        media = session.query(MediaEntry).one()
        assert media.visibility == "private"
        media_id = media.id
    edit = client.get(f"/m/{media_id}/edit").text
    assert re.search(r'<option value="private" selected', edit)
    saved = form_post(client, f"/m/{media_id}/edit", {"title": "Hidden", "visibility": "unlisted",
                                                      "license": ""})
    assert saved.status_code == 200
    with rt.sessions() as session:
        assert session.get(MediaEntry, media_id).visibility == "unlisted"


@pytest.mark.db
def test_cli_addmedia_and_set_visibility(rt, tmp_path):
    with rt.sessions() as session:
        accounts.create_user(session, "carol", "c@example.com", "correct horse", verified=True)
        session.commit()
    photo = tmp_path / "sea.jpg"
    photo.write_bytes(jpeg())
    env = {"KILN_DATABASE_URL": rt.settings.database_url, "KILN_BASE_URL": BASE_URL}
    runner = CliRunner()
    data = ["--data", str(rt.settings.data_dir)]
    added = runner.invoke(main, [*data, "addmedia", "carol", str(photo), "--visibility", "private", "--wait", "--json"],
                          env=env)
    assert added.exit_code == 0, added.output
    media_id = int(re.search(r'"id": (\d+)', added.output).group(1))  # type: ignore[union-attr]
    assert '"visibility": "private"' in added.output
    changed = runner.invoke(main, [*data, "media", "set-visibility", str(media_id), "unlisted"], env=env)
    assert changed.exit_code == 0 and "now unlisted" in changed.output
    with rt.sessions() as session:
        assert session.get(MediaEntry, media_id).visibility == "unlisted"
    assert runner.invoke(main, [*data, "media", "set-visibility", str(media_id), "secret"], env=env).exit_code == 2




def test_making_private_retires_direct_object_urls(remote_rt):  # noqa: F811
    rt = remote_rt
    with TestClient(create_app(rt.settings, rt), base_url=BASE_URL) as client:
        with rt.sessions() as session:
            owner = accounts.create_user(session, "olga", "o@example.com", "correct horse", verified=True)
            media_id = media_service.submit(rt, session, owner, io.BytesIO(jpeg()), "sea.jpg",
                                            media_service.MediaFields()).id
            token = accounts.create_api_token(session, owner, "t", "write")
            session.commit()
        auth = {"Authorization": f"Bearer {token}"}
        item = client.get(f"/api/v1/media/{media_id}").json()
        direct = [r["url"] for r in item["renditions"].values()]
        assert direct and all(httpx.get(url).status_code == 200 for url in direct)
        # The store does not list its contents, so the key tokens cannot be read from a listing.
        listing = httpx.get(direct[0].split("?")[0].rsplit("/entries/", 1)[0] + "/")
        assert listing.status_code >= 400 and "entries" not in listing.text, listing.text[:200]
        made_private = client.patch(f"/api/v1/media/{media_id}", headers=auth, json={"visibility": "private"})
        assert made_private.status_code == 200
        assert all(httpx.get(url).status_code in (401, 403, 404) for url in direct)
        assert client.get(f"/api/v1/media/{media_id}").status_code == 404
        assert client.get(f"/m/{media_id}/r/medium").status_code == 404
        streamed = client.get(f"/m/{media_id}/r/medium", headers=auth)
        assert streamed.status_code == 200 and streamed.content[:3] == b"\xff\xd8\xff"
        assert streamed.headers["cache-control"] == "private, no-store"
