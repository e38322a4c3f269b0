"""Running a media item's due steps, and the finishing check that decides it is processed.

Safe to run twice: each step is claimed before it runs, and a run that finds nothing due only
re-checks whether the item is finished.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.media.models import MediaEntry, Rendition
from kiln.mediatypes import extension_for, get_kind, identify
from kiln.mediatypes.base import MediaRejected, ProducedFile, StepContext, StepDef, TransientFailure
from kiln.processing import ledger
from kiln.processing.models import ProcessingStep
from kiln.runtime import Runtime
from kiln.storage.base import StorageError, copy_to_local, save_local_file

log = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def process_media(rt: Runtime, media_id: int) -> str | None:
    """Run every due step of one media item, then the finishing check. Returns the item's state."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    with rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        if media is None:
            return None
        due = ledger.due_steps(session, media_id)
        if due:
            _run_steps(rt, session, media, due, owner)
        return finish_check(rt, session, media_id)


def _run_steps(rt: Runtime, session: Session, media: MediaEntry, due: list[ProcessingStep], owner: str) -> None:
    kind = get_kind(media.kind)
    defs = {d.name: d for d in kind.steps(rt.settings)}
    rt.settings.workbench_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"media-{media.id}-", dir=rt.settings.workbench_dir))
    try:
        store = rt.stores.by_name(media.original_store)
        source = copy_to_local(store, media.original_key, workdir / ("original" + extension_for(media.mime_type)))
        ctx = StepContext(source=source, workdir=workdir, settings=rt.settings,
                          identified=identify(source, rt.settings))
        for step in due:
            if step.name not in defs:  # a step the kind no longer has
                step.state = "skipped"
                session.commit()
                continue
            if not ledger.claim(session, step.id, owner, rt.settings.processing.lease_seconds):
                continue
            session.refresh(step)
            _run_one(rt, session, media, step, defs[step.name], ctx, owner)
    except MediaRejected as exc:  # the original itself no longer identifies: permanent for all steps
        for step in due:
            session.refresh(step)
            if step.state not in ledger.FINAL:
                ledger.mark_failed(step, type(exc).__name__, exc.code, exc.message)
        session.commit()
    except StorageError as exc:
        for step in due:
            session.refresh(step)
            if step.state not in ledger.FINAL:
                ledger.schedule_retry(step, rt.settings.processing, type(exc).__name__, exc.code,
                                      "The original could not be read from storage.")
        session.commit()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _LeaseKeeper(threading.Thread):
    """Renews a running step's lease in the background so the sweeper leaves it alone."""

    def __init__(self, rt: Runtime, step_id: int, owner: str) -> None:
        super().__init__(daemon=True, name=f"lease-{step_id}")
        self.rt, self.step_id, self.owner = rt, step_id, owner
        self.stop = threading.Event()
        self.progress: float | None = None

    def run(self) -> None:
        interval = max(1.0, self.rt.settings.processing.lease_seconds / 3)
        while not self.stop.wait(interval):
            try:
                with self.rt.sessions() as session:
                    ledger.renew(session, self.step_id, self.owner, self.rt.settings.processing.lease_seconds,
                                 self.progress)
            except Exception:  # renewal is best effort; the sweeper tolerates a late one
                log.exception("lease renewal failed for step %s", self.step_id)


def _run_one(
    rt: Runtime, session: Session, media: MediaEntry, step: ProcessingStep, definition: StepDef,
    ctx: StepContext, owner: str,
) -> None:
    keeper = _LeaseKeeper(rt, step.id, owner)
    ctx.report_progress = lambda fraction: setattr(keeper, "progress", fraction)
    keeper.start()
    try:
        result = get_kind(media.kind).run_step(step.name, ctx)
        for produced in result.files:
            _store_rendition(rt, session, media, produced, definition)
            ctx.earlier[produced.name] = produced
        _apply_metadata(media, result.metadata)
        ledger.mark_done(step)
        step.fingerprint = definition.fingerprint()
    except MediaRejected as exc:
        ledger.mark_failed(step, type(exc).__name__, exc.code, exc.message)
    except (TransientFailure, StorageError) as exc:
        ledger.schedule_retry(step, rt.settings.processing, type(exc).__name__, exc.code, exc.message)
    except MemoryError:
        ledger.schedule_retry(step, rt.settings.processing, "MemoryError", "out_of_memory",
                              "The server ran out of memory while processing this file.")
    except Exception as exc:  # unknown: transient until the attempt limit
        log.exception("step %s of media %s failed", step.name, media.id)
        ledger.schedule_retry(step, rt.settings.processing, type(exc).__name__, "internal",
                              "Processing stopped on an unexpected error.")
    finally:
        keeper.stop.set()
    session.commit()


def _store_rendition(rt: Runtime, session: Session, media: MediaEntry, produced: ProducedFile,
                     definition: StepDef) -> None:
    spec = next((s for s in definition.renditions if s.name == produced.name), None)
    fingerprint = spec.fingerprint() if spec else definition.fingerprint()
    # The key names the spec, so a reprocess with new settings never overwrites a file in use.
    key = ["entries", str(media.id), f"{produced.name}-{fingerprint[:10]}{produced.path.suffix}"]
    size = save_local_file(rt.stores.public, key, produced.path)
    existing = session.scalar(select(Rendition).where(Rendition.media_id == media.id,
                                                      Rendition.name == produced.name))
    if existing is None:
        existing = Rendition(media_id=media.id, name=produced.name)
        session.add(existing)
    elif existing.key != key:
        rt.stores.public.delete(existing.key)
    existing.key = key
    existing.mime_type = produced.mime_type
    existing.width, existing.height = produced.width, produced.height
    existing.size_bytes = size
    existing.spec_fingerprint = fingerprint


def _apply_metadata(media: MediaEntry, metadata: dict) -> None:  # type: ignore[type-arg]
    if not metadata:
        return
    media.width = metadata.get("width", media.width)
    media.height = metadata.get("height", media.height)
    if "exif" in metadata:
        media.exif = metadata["exif"] or None
    gps = metadata.get("gps") or {}
    media.gps_lat, media.gps_lon = gps.get("lat"), gps.get("lon")


def finish_check(rt: Runtime, session: Session, media_id: int) -> str | None:
    """Decide the item's state from what is actually stored, not from counters."""
    media = session.get(MediaEntry, media_id, populate_existing=True)
    if media is None:
        return None
    steps = ledger.steps_of(session, media_id)
    kind = get_kind(media.kind)
    defs = {d.name: d for d in kind.steps(rt.settings)}
    failed = [s for s in steps if s.state == "failed" and defs.get(s.name, StepDef(s.name)).required]
    if failed:
        media.state = "failed"
        media.error_code, media.error_message = failed[0].error_code, failed[0].error_message
    elif all(s.state in ("done", "skipped") for s in steps) and _renditions_present(rt, media, defs.values()):
        if media.state != "processed":
            media.state = "processed"
            media.published = media.published or utcnow()
            media.error_code = media.error_message = None
        if media.original_store == "queue":
            # Copy first, commit, then delete: a crash in between leaves a spare copy, never none.
            key = list(media.original_key)
            with rt.stores.queue.open(key) as fh:
                rt.stores.originals.save(key, fh)
            media.original_store = "originals"
            session.commit()
            rt.stores.queue.delete(key)
    elif any(s.state != "queued" for s in steps):
        media.state = "processing"
    session.commit()
    return media.state


def _renditions_present(rt: Runtime, media: MediaEntry, defs) -> bool:  # type: ignore[no-untyped-def]
    for definition in defs:
        if not definition.required:
            continue
        for spec in definition.renditions:
            rendition = media.rendition(spec.name)
            if rendition is None or not rt.stores.public.exists(rendition.key):
                log.warning("media %s lacks rendition %s", media.id, spec.name)
                return False
    return True

