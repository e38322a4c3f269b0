"""A whole Kiln on Swift or S3: uploads go through processing to pages whose images load, and
private files stay private."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from kiln.app import create_app
from kiln.media.models import MediaEntry
from tests.test_api import make_user, token_for


def test_upload_process_publish_on_object_storage(remote_rt, images, tmp_path):
    rt = remote_rt
    assert not rt.stores.public.is_local
    with TestClient(create_app(rt.settings, rt), base_url="http://testserver") as client:
        make_user(rt)
        auth = token_for(client)
        with images["camera"].open("rb") as fh:
            created = client.post("/api/v1/media", headers=auth, files={"file": ("cam.jpg", fh, "image/jpeg")})
        item = client.get(f"/api/v1/media/{created.json()['id']}").json()
        assert item["state"] == "processed", item
        page = client.get(f"/u/alice/m/{item['id']}")
        medium_url = item["renditions"]["medium"]["url"]
        assert medium_url.startswith("http://127.0.0.1:8080/")
        # The page links straight to the object store (a signed URL is signed again, maybe in another second).
        assert medium_url.split("?")[0] in page.text
        for rendition in item["renditions"].values():
            got = httpx.get(rendition["url"])
            assert got.status_code == 200 and got.content[:3] == b"\xff\xd8\xff"
            assert len(got.content) == rendition["bytes"]
    with rt.sessions() as session:
        entry = session.get(MediaEntry, item["id"])
        assert entry.original_store == "originals"
        assert rt.stores.originals.exists(entry.original_key)
        assert not rt.stores.queue.exists(entry.original_key)
        original_key = entry.original_key
    # Anonymous requests for the original, at the address it would have if it were public, are refused.
    public_base = item["renditions"]["medium"]["url"].split("?")[0].rsplit("/entries/", 1)[0]
    guessed = public_base.replace("-public", "-originals") + "/" + "/".join(original_key)
    assert "-originals/" in guessed and httpx.get(guessed).status_code in (400, 401, 403)
