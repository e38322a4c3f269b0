"""Each processing lane is a queue of its own on a real broker, bound under its own name: a bell rung
for one lane reaches that lane only (what `kiln worker --kinds` relies on)."""

from __future__ import annotations

import uuid
from pathlib import Path

import redis

from kiln.config import load_settings
from kiln.processing.celery_app import lanes, make_celery
from kiln.processing.dispatch import lane


def test_a_bell_reaches_its_own_lane_only(tmp_path: Path) -> None:
    prefix = f"kiln-test-{uuid.uuid4().hex[:8]}:"
    app = make_celery(load_settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/5"))
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "global_keyprefix": prefix}
    client = redis.Redis(host="127.0.0.1", port=6379, db=5)
    try:
        # Nothing is declared beforehand: a web process may ring before any worker has started.
        for target in (lane("video", "new"), lane("image", "new"), lane("audio", "retry")):
            app.send_task("kiln.process_media", args=[1], queue=target)
            depths = {name: client.llen(prefix + name) for name in lanes()}
            assert depths[target] == 1, depths
            assert sum(depths.values()) == 1, f"a bell for {target} reached {depths}"
            client.delete(prefix + target)
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


def test_an_upload_is_taken_when_the_broker_is_down(tmp_path: Path, db_url: str, images) -> None:  # type: ignore[no-untyped-def]
    """Stored and committed means 202, whatever the broker does: a 500 would invite a duplicate.
    The item waits in the ledger until the sweeper rings again."""
    import time

    from fastapi.testclient import TestClient

    from kiln.app import create_app
    from kiln.media.models import MediaEntry
    from kiln.runtime import build_runtime
    from tests.conftest import make_settings
    from tests.test_api import make_user, token_for

    settings = make_settings(tmp_path / "data", db_url, broker_url="redis://127.0.0.1:9/0")  # nothing listens
    rt = build_runtime(settings)
    try:
        make_user(rt)
        with TestClient(create_app(settings, rt), base_url="http://testserver") as client:
            auth = token_for(client)
            started = time.monotonic()
            with images["plain"].open("rb") as fh:
                resp = client.post("/api/v1/media", headers=auth, files={"file": ("p.jpg", fh)})
            took = time.monotonic() - started
        assert resp.status_code == 202, resp.text
        assert took < 10, f"the upload waited {took:.1f} s on a dead broker"
        with rt.sessions() as session:
            assert session.get(MediaEntry, resp.json()["id"]).state == "queued"
    finally:
        rt.close()
