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
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            for queue in app.amqp.queues.values():
                queue(channel).declare()
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
