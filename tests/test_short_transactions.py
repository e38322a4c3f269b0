"""No transaction waits on storage: while a large upload is being copied into a slow store, every
other write on the site (sign-ups, edits, small uploads) goes through at once, on SQLite too (whose
one write lock a long transaction would hold for the whole copy)."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from kiln.accounts import services as accounts
from kiln.media import services as media_service
from kiln.media.models import MediaEntry

pytestmark = pytest.mark.db

BIG = 1024 * 1024


def test_other_writes_go_through_while_a_large_upload_is_stored(queued_rt, images, tmp_path, monkeypatch):
    rt = queued_rt
    with rt.sessions() as session:
        alice = accounts.create_user(session, "alice", "a@example.com", "correct horse", verified=True)
        bob = accounts.create_user(session, "bob", "b@example.com", "correct horse", verified=True)
        session.commit()
        with images["plain"].open("rb") as fh:
            item = media_service.submit(rt, session, alice, fh, "p.jpg", media_service.MediaFields()).id
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (1400, 1400, 3), dtype=np.uint8)).save(big)
    assert big.stat().st_size > 4 * BIG

    queue = rt.stores.queue
    real_save = queue.save
    copying = threading.Event()

    def slow_save(key, source):  # type: ignore[no-untyped-def]
        """A store that takes about 2.5 s for the big file (2 MiB/s); small files pass at once."""
        data = source.read()
        if len(data) > BIG:
            copying.set()
            for _ in range(len(data) // (256 * 1024)):
                time.sleep(0.125)
        return real_save(key, io.BytesIO(data))

    real_link_in = queue.link_in

    def slow_link_in(key, path, *, durable):  # type: ignore[no-untyped-def]
        """The same for an upload linked into the store (no copy): as slow, so the test means the same."""
        if path.stat().st_size > BIG:
            copying.set()
            for _ in range(path.stat().st_size // (256 * 1024)):
                time.sleep(0.125)
        return real_link_in(key, path, durable=durable)

    monkeypatch.setattr(queue, "save", slow_save)
    monkeypatch.setattr(queue, "link_in", slow_link_in)
    done: list[int] = []

    def upload_big() -> None:
        with rt.sessions() as session, big.open("rb") as fh:
            owner = session.merge(bob)
            done.append(media_service.submit(rt, session, owner, fh, "big.png", media_service.MediaFields()).id)

    uploader = threading.Thread(target=upload_big)
    uploader.start()
    assert copying.wait(30)
    slowest = 0.0
    for i in range(20):
        started = time.monotonic()
        with rt.sessions() as session:
            if i % 3 == 0:
                accounts.create_user(session, f"new{i}", f"n{i}@example.com", "correct horse")
                session.commit()
            elif i % 3 == 1:
                media = session.get(MediaEntry, item)
                media_service.update(rt, session, session.merge(alice), media,
                                     media_service.MediaFields(title=f"Edit {i}"))
            else:
                with images["plain"].open("rb") as fh:
                    media_service.submit(rt, session, session.merge(alice), fh, "small.jpg",
                                         media_service.MediaFields())
        slowest = max(slowest, time.monotonic() - started)
    still_copying = uploader.is_alive()
    uploader.join(60)
    assert done, "the large upload failed"
    assert slowest < 1.0, f"a write waited {slowest:.2f} s behind the upload being stored"
    assert still_copying, "the large upload finished before the other writes: the test proved nothing"
