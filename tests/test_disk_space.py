"""A nearly full disk: uploads are refused with 507 and a sentence before their body is read, nothing
is stored, the admin panel says so; with room again, uploads are taken."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from kiln.accounts import services as accounts
from kiln.app import create_app
from kiln.media.space import MIB
from tests.conftest import inline_runtime, make_settings
from tests.test_api import make_user, token_for


def test_uploads_are_refused_with_507_when_the_disk_is_nearly_full(tmp_path, db_url, images):
    free_mib = shutil.disk_usage(tmp_path).free // MIB
    settings = make_settings(tmp_path / "data", db_url, storage={"reserve_mib": free_mib + 100})
    rt = next(inline_runtime(settings))
    try:
        make_user(rt)
        with rt.sessions() as session:
            accounts.create_user(session, "root", "root@example.com", "correct horse", verified=True, admin=True)
            session.commit()
        with TestClient(create_app(settings, rt), base_url="http://testserver") as client:
            auth = token_for(client)
            with images["plain"].open("rb") as fh:
                refused = client.post("/api/v1/media", headers=auth, files={"file": ("p.jpg", fh)})
            assert refused.status_code == 507, refused.text
            assert refused.json()["error"] == {"code": "disk_full", "message": refused.json()["error"]["message"]}
            assert "out of disk space" in refused.json()["error"]["message"]
            assert list(settings.workbench_dir.iterdir()) == []
            assert list(rt.stores.queue.iter_keys()) == []
            assert client.get("/api/v1/media?user=alice&state=queued", headers=auth).json()["items"] == []
            client.post("/auth/login", data={"username": "root", "password": "correct horse",
                                             "csrf_token": client.get("/auth/login").text.split(
                                                 'name="csrf_token" value="')[1].split('"')[0]})
            admin = client.get("/admin/processing")
            assert admin.status_code == 200 and "The disk is nearly full" in admin.text
            settings.storage.reserve_mib = 0  # room again
            with images["plain"].open("rb") as fh:
                taken = client.post("/api/v1/media", headers=auth, files={"file": ("p.jpg", fh)})
            assert taken.status_code == 202, taken.text
            assert "The disk is nearly full" not in client.get("/admin/processing").text
    finally:
        rt.close()
