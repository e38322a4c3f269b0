"""An item deleted while its steps run leaves nothing behind: no step stores a file for it (a file
stored without the item's key token would sit at a URL anyone can guess), and `kiln storage gc`
finds every object no row references, whatever id its key names."""

from __future__ import annotations

import io
import os
import time

import pytest

from kiln.accounts import services as accounts
from kiln.media import services as media_service
from kiln.media.garbage import gc
from kiln.media.models import MediaEntry
from kiln.mediatypes import get_kind
from kiln.processing import run
from kiln.processing.service import process_media

pytestmark = pytest.mark.db


def _upload(rt, images, visibility: str) -> int:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        user = accounts.create_user(session, "alice", "a@example.com", "correct horse", verified=True)
        session.commit()
        with images["plain"].open("rb") as fh:
            entry = media_service.submit(rt, session, user, fh, "p.jpg",
                                         media_service.MediaFields(visibility=visibility))
        return entry.id


def _public_keys(rt) -> list[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    return [tuple(k) for k in rt.stores.public.iter_keys()]


@pytest.mark.parametrize(("visibility", "slow"), [("private", True), ("public", True), ("public", False)])
def test_a_step_stores_nothing_for_an_item_deleted_while_it_ran(queued_rt, images, monkeypatch, visibility, slow):
    """Slow steps (``slow``: each starts past ``RECHECK_AFTER``) look at the item before they start and
    stop; fast ones run on (a look would cost more than they do), and nothing of theirs is stored."""
    if slow:
        monkeypatch.setattr(run, "RECHECK_AFTER", 0.0)
    media_id = _upload(queued_rt, images, visibility)
    kind = get_kind("image")
    real = kind.run_step
    ran: list[str] = []

    def delete_then_finish(step, ctx):  # type: ignore[no-untyped-def]
        result = real(step, ctx)
        if not ran:  # the owner deletes the item while its first step is still running
            with queued_rt.sessions() as other:
                media_service.delete(queued_rt, other, None, other.get(MediaEntry, media_id))
        ran.append(step)
        return result

    monkeypatch.setattr(kind, "run_step", delete_then_finish)
    assert process_media(queued_rt, media_id) is None
    assert ran and (len(ran) == 1 or not slow), "slow steps went on running for a deleted item"
    assert _public_keys(queued_rt) == []
    report = gc(queued_rt.sessions, queued_rt.stores, dry_run=True, grace=0)
    assert report.unreferenced == {"queue": [], "originals": [], "public": []}


def test_gc_finds_objects_of_any_id_and_spares_young_ones(queued_rt, images):
    media_id = _upload(queued_rt, images, "public")
    assert process_media(queued_rt, media_id) == "processed"
    for stray in (["entries", "1", "left-behind.jpg"], ["entries", str(media_id + 1000), "medium.jpg"],
                  ["entries", "notanid", "x.jpg"]):
        queued_rt.stores.public.save(stray, io.BytesIO(b"x"))
    young = gc(queued_rt.sessions, queued_rt.stores, dry_run=True)
    assert young.unreferenced["public"] == [] and young.recent == 3
    old = gc(queued_rt.sessions, queued_rt.stores, dry_run=False, grace=0)
    assert sorted(map(tuple, old.unreferenced["public"])) == [
        ("entries", "1", "left-behind.jpg"), ("entries", str(media_id + 1000), "medium.jpg"),
        ("entries", "notanid", "x.jpg")]
    assert old.deleted == 3
    # A save a killed process never finished leaves a .part- file: old ones go, a young one may be a
    # save still going on.
    folder = queued_rt.stores.public.local_path(["entries", str(media_id)])
    cut_off, going_on = folder / ".part-cutoff", folder / ".part-going-on"
    cut_off.write_bytes(b"half"), going_on.write_bytes(b"half")
    os.utime(cut_off, (time.time() - 7200, time.time() - 7200))
    assert gc(queued_rt.sessions, queued_rt.stores, dry_run=True).partial == [str(cut_off)]
    assert gc(queued_rt.sessions, queued_rt.stores, dry_run=False).deleted == 1
    assert not cut_off.exists() and going_on.exists()
    with queued_rt.sessions() as session:  # what the item references is untouched
        media = session.get(MediaEntry, media_id)
        assert all(queued_rt.stores.public.exists(r.key) for r in media.renditions)
