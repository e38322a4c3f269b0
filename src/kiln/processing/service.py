"""Running a media item's due steps, and the finishing check that decides it is processed.

Safe to run twice: each step is claimed before it runs, and a run that finds nothing due only
re-checks whether the item is finished.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from kiln import plugins
from kiln.errors import KilnError
from kiln.i18n import Nn_
from kiln.media.captions import is_caption
from kiln.media.models import MediaEntry, MediaState, Rendition
from kiln.mediatypes import extension_for, get_kind, identify, placeholder
from kiln.mediatypes.base import (
    MediaRejected,
    ProducedFile,
    RenditionSpec,
    StepContext,
    StepDef,
    TransientFailure,
)
from kiln.processing import ledger
from kiln.processing.current import STALE, outputs_status
from kiln.processing.limits import HOST, kill_self, lease_owner, owner_is_dead
from kiln.processing.models import ProcessingStep, WorkState
from kiln.runtime import Runtime
from kiln.social.notify import notify
from kiln.storage.base import Storage, StorageError, copy_to_local, save_local_file

log = logging.getLogger(__name__)

PUBLISHED_ORIGINAL = "original"  # the rendition media/services.py publishes the original as: no step makes it


def process_media(rt: Runtime, media_id: int) -> str | None:
    """Run every due step of one media item, then the finishing check. Returns the item's state."""
    owner = lease_owner()
    reprocessing = False
    with rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        if media is None:
            return None
        _recover_dead(rt, session, media)
        due = ledger.due_steps(session, media_id)
        reprocessing = any(step.reason == "reprocess" for step in due)
        if due:
            _run_steps(rt, session, media, due, owner)
        state = finish_check(rt, session, media_id)
    if reprocessing:
        from kiln.processing.admission import admit_reprocess

        admit_reprocess(rt)
    return state


def _recover_dead(rt: Runtime, session: Session, media: MediaEntry) -> None:
    """A step still 'running' under a process of this host that died (killed, crashed): count the
    attempt and schedule a retry with backoff, instead of waiting for its lease to lapse."""
    policy = rt.settings.processing.policy(media.kind)
    for step in ledger.steps_of(session, media.id):
        if step.state == WorkState.RUNNING and owner_is_dead(step.lease_owner):
            ledger.schedule_retry(step, policy, "WorkerLost", "worker_lost",
                                  KilnError("The worker processing this file stopped unexpectedly."))
    session.commit()


def _run_steps(rt: Runtime, session: Session, media: MediaEntry, due: list[ProcessingStep], owner: str) -> None:
    kind = get_kind(media.kind)
    policy = rt.settings.processing.policy(media.kind)
    defs = {d.name: d for d in kind.steps(rt.settings)}
    rt.settings.workbench_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"media-{media.id}-{HOST}-{os.getpid()}-", dir=rt.settings.workbench_dir))
    try:
        store = rt.stores.by_name(media.original_store)
        source = copy_to_local(store, media.original_key, workdir / ("original" + extension_for(media.mime_type)))
        ctx = StepContext(source=source, workdir=workdir, settings=rt.settings,
                          identified=identify(source, rt.settings, kind=media.kind))
        for step in due:
            if step.name not in defs:  # a step the kind no longer has
                ledger.mark_skipped(step)
                session.commit()
                continue
            if not ledger.claim(session, step.id, owner, rt.settings.processing.lease_seconds,
                                queued=media.state == MediaState.QUEUED):
                continue
            if step.attempts > policy.max_attempts:  # the previous attempts all died mid-step
                ledger.mark_failed(step, "WorkerLost", "worker_lost",
                                   KilnError(Nn_("Processing this file stopped the worker %(n)s time; Kiln gave up.",
                                                 "Processing this file stopped the worker %(n)s times; Kiln gave up."),
                                             n=step.attempts - 1))
                session.commit()
                continue
            if step.reason == "reprocess" and _already_current(rt, media, defs[step.name], ctx):
                ledger.mark_current(step, defs[step.name], {r.name: r for r in media.renditions})
                session.commit()
                continue
            ctx.specs = _outputs_to_make(rt, media, step, defs[step.name], ctx)
            _run_one(rt, session, media, step, defs[step.name], ctx, owner)
    except _MediaGone:
        return  # deleted while it was processed: its other steps went with it
    except MediaRejected as exc:  # the original itself no longer identifies: permanent for all steps
        rejected = exc
        _settle_all(session, due, lambda s: ledger.mark_failed(s, "MediaRejected", rejected.code, rejected))
    except StorageError as exc:
        code = exc.code
        _settle_all(session, due, lambda s: ledger.schedule_retry(
            s, policy, "StorageError", code, KilnError("The original could not be read from storage.")))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def clean_workbench(rt: Runtime) -> int:
    """Remove the work directories of this host's processes that died mid-step (a SIGKILL skips the
    ``finally`` that removes them), so a file that keeps killing its worker cannot fill the disk; and
    the half-received uploads of web processes that died mid-upload.

    A work directory is named ``media-ID-HOST-PID-RANDOM``, an upload ``upload-HOST-PID-RANDOM`` (the
    random part has no dash).
    """
    removed = 0
    try:
        entries = list(rt.settings.workbench_dir.iterdir())
    except FileNotFoundError:
        return 0
    for path in entries:
        head, _, rest = path.name.partition("-")
        if head == "media" and path.is_dir():
            rest = rest.split("-", 1)[-1]
        elif not (head == "upload" and path.is_file()):
            continue
        parts = rest.rsplit("-", 2)
        if len(parts) != 3:
            continue
        host, pid, _random = parts
        if host == HOST and pid.isdigit() and owner_is_dead(f"{host}:{pid}"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return removed


def _settle_all(session: Session, steps: list[ProcessingStep], settle: Callable[[ProcessingStep], object]) -> None:
    for step in steps:
        session.refresh(step)
        if step.state not in ledger.FINAL:
            settle(step)
    session.commit()


def _already_current(rt: Runtime, media: MediaEntry, definition: StepDef, ctx: StepContext) -> bool:
    """A reprocess whose stored outputs would all come out the same is skipped (processing/current.py
    is the one place that decides); a lost file is remade, not skipped."""
    if not definition.renditions:
        return False
    stored = {r.name: r for r in media.renditions}
    statuses = outputs_status(get_kind(media.kind), definition, stored, ctx.identified, asked=True)
    if any(status == STALE for status in statuses.values()):
        return False
    return all(rt.stores.public.exists(stored[name].key) for name in statuses if name in stored)


def _outputs_to_make(rt: Runtime, media: MediaEntry, step: ProcessingStep, definition: StepDef,
                     ctx: StepContext) -> dict[str, RenditionSpec]:
    """The outputs this run of the step makes, by name: all of them, except in a reprocess of a stale
    step (``kiln reprocess stale``: a setting changed, or the kind gained an output such as a new
    thumbnail size) whose stored outputs are partly current (made with today's spec, or giving the
    same bytes, and still stored). Those are kept; only the others are made. A step asked for by name
    (``kiln reprocess run``, ``bulk``) or retried has its fingerprint cleared (ledger.request_steps)
    and makes all its outputs, as does a first run, which has none stored."""
    every = {spec.name: spec for spec in definition.renditions}
    if step.reason == "new" or not step.fingerprint or not every:  # a first run has nothing stored to keep
        return every
    stored = {r.name: r for r in media.renditions}
    statuses = outputs_status(get_kind(media.kind), definition, stored, ctx.identified)
    kept = {name for name, status in statuses.items()
            if status != STALE and name in stored and rt.stores.public.exists(stored[name].key)}
    return {name: spec for name, spec in every.items() if name not in kept} or every


class _LeaseKeeper(threading.Thread):
    """Renews a running step's lease and reports progress; past the time limit, in a worker
    process, it records the overrun and kills the process (nothing else can stop a stuck decoder)."""

    def __init__(self, rt: Runtime, step_id: int, owner: str, time_limit: float) -> None:
        super().__init__(daemon=True, name=f"lease-{step_id}")
        self.rt, self.step_id, self.owner, self.time_limit = rt, step_id, owner, time_limit
        self.stop = threading.Event()
        self.progress: float | None = None
        self.started = time.monotonic()

    def run(self) -> None:
        # Wake often enough to show progress live (one small UPDATE when it changed), renew the
        # lease every third of its length, and notice an overrun within a quarter of the limit.
        renew_every = self.rt.settings.processing.lease_seconds / 3
        tick = max(0.5, min(2.0, renew_every, self.time_limit / 4))
        last_renewal, last_progress = time.monotonic(), self.progress
        while not self.stop.wait(tick):
            now = time.monotonic()
            overrun = now - self.started > self.time_limit
            if not overrun and now - last_renewal < renew_every and self.progress == last_progress:
                continue
            last_renewal, last_progress = now, self.progress
            try:
                with self.rt.sessions() as session:
                    if overrun and self.rt.enforce_limits:
                        step = session.get(ProcessingStep, self.step_id)
                        if step is not None and step.state == WorkState.RUNNING:
                            ledger.mark_failed(step, "TimeLimit", "timeout",
                                               KilnError("Processing took longer than the %(limit)s s limit "
                                                         "and was stopped.", limit=round(self.time_limit)))
                            session.commit()
                        kill_self()
                    ledger.renew(session, self.step_id, self.owner, self.rt.settings.processing.lease_seconds,
                                 self.progress)
            except Exception:  # renewal is best effort; the sweeper tolerates a late one
                log.exception("lease renewal failed for step %s", self.step_id)


class _MediaGone(Exception):
    """The item was deleted while one of its steps ran, or the step was taken back from this worker:
    nothing of this run may be stored."""


def _run_one(
    rt: Runtime, session: Session, media: MediaEntry, step: ProcessingStep, definition: StepDef,
    ctx: StepContext, owner: str,
) -> None:
    policy = rt.settings.processing.policy(media.kind)
    keeper = _LeaseKeeper(rt, step.id, owner, policy.step_time_limit)
    ctx.report_progress = lambda fraction: setattr(keeper, "progress", fraction)
    keeper.start()
    stored: list[list[str]] = []
    replaced: list[list[str]] = []
    try:
        result = get_kind(media.kind).run_step(step.name, ctx)
        session.commit()  # end the read transaction: no lock is held while files are stored
        # Bytes first, every file of the step; then the rows, in one short transaction.
        saved = []
        for produced in result.files:
            saved.append(_store_file(rt, media, produced, definition))
            stored.append(saved[-1][1])
        for produced, key, size, spec in saved:
            replaced += _record_rendition(session, media, produced, key, size, spec, definition)
            ctx.earlier[produced.name] = produced
            if produced.name == "thumbnail":  # every kind's gallery picture gets a blurred placeholder
                result.metadata.setdefault("blurhash", placeholder(produced.path))
        known = {spec.name for d in get_kind(media.kind).steps(rt.settings) for spec in d.renditions}
        made = {produced.name for produced, *_ in saved}
        replaced += _drop_unmade(session, media, set(ctx.specs), made, known)
        # Outputs kept from an earlier run (this run made only the others) now carry the current spec.
        ledger.record_specs(definition, {r.name: r for r in media.renditions if r.name not in ctx.specs})
        _apply_metadata(media, result.metadata)
        ledger.mark_done(step)
        step.fingerprint = definition.fingerprint()
    except _MediaGone:
        keeper.stop.set()
        _discard(rt, session, media.id, stored)
        raise
    except MediaRejected as exc:
        ledger.mark_failed(step, type(exc).__name__, exc.code, exc)
    except (TransientFailure, StorageError) as exc:
        ledger.schedule_retry(step, policy, type(exc).__name__, exc.code, exc)
    except MemoryError:
        ledger.schedule_retry(step, policy, "MemoryError", "out_of_memory",
                              KilnError("The server ran out of memory while processing this file."))
    except Exception as exc:  # unknown: transient until the attempt limit
        log.exception("step %s of media %s failed", step.name, media.id)
        ledger.schedule_retry(step, policy, type(exc).__name__, "internal",
                              KilnError("Processing stopped on an unexpected error."))
    finally:
        keeper.stop.set()
    try:
        with session.no_autoflush:  # asked before the step's new state is written
            held = ledger.still_holds(session, step.id, owner)
        if not held:
            session.rollback()
            for key in stored:
                rt.stores.public.delete(key)
            log.warning("step %s of media %s was taken back while it ran (its host fell silent or its lease "
                        "lapsed); its results were dropped for the worker that runs it again", step.name, media.id)
            raise _MediaGone()  # nothing more of this item for this worker
        session.commit()
    except SQLAlchemyError:
        if _exists(rt, media.id):
            raise
        _discard(rt, session, media.id, stored)  # deleted between the last check and the commit
        raise _MediaGone() from None
    for key in replaced:  # the rows point at the new files now: the old ones can go
        rt.stores.public.delete(key)


def _exists(rt: Runtime, media_id: int) -> bool:
    return _current_token(rt, media_id) is not None


def _current_token(rt: Runtime, media_id: int) -> str | None:
    """The item's key token as committed now, None when the item is gone. Read in a session of its
    own: the step's session may hold a snapshot older than a deletion or a change of visibility."""
    with rt.sessions() as fresh:
        return fresh.scalar(select(MediaEntry.key_token).where(MediaEntry.id == media_id))


def _discard(rt: Runtime, session: Session, media_id: int, stored: list[list[str]]) -> None:
    session.rollback()
    for key in stored:
        rt.stores.public.delete(key)
    log.info("media %s was deleted while it was processed; its new files were removed", media_id)


def _store_file(rt: Runtime, media: MediaEntry, produced: ProducedFile, definition: StepDef,
                ) -> tuple[ProducedFile, list[str], int, RenditionSpec]:
    """Store one output of a step in the public store (no database transaction is open)."""
    spec = definition.spec(produced.name)  # every output has a spec: a KeyError here is a kind's bug
    fingerprint = spec.fingerprint()
    # The key names the spec, so a reprocess with new settings never overwrites a file in use.
    # The item's key token is part of it, so making the item private can retire every old URL. Read
    # afresh: the item may have been made private (a new token), or deleted, while this step ran.
    token = _current_token(rt, media.id)
    if token is None:
        raise _MediaGone()
    key = media.rendition_key(f"{produced.name}-{fingerprint[:10]}{produced.path.suffix}", token)
    return produced, key, _put(rt.stores.public, key, produced.path, durable=False), spec


def _put(store: Storage, key: list[str], path: Path, *, durable: bool) -> int:
    """Store a local file: linked in without a copy where the store is a folder on the same disk,
    else copied (and synced) by the store. A rendition is linked without syncing its bytes
    (``durable=False``): a process crash cannot lose it, and what a power cut loses, ``kiln reprocess``
    makes again from the original."""
    link_in = getattr(store, "link_in", None)
    if link_in is not None:
        try:
            return int(link_in(key, path, durable=durable))
        except OSError:  # another disk (or links refused): copy
            pass
    return save_local_file(store, key, path)


def _record_rendition(session: Session, media: MediaEntry, produced: ProducedFile, key: list[str], size: int,
                      spec: RenditionSpec, definition: StepDef) -> list[list[str]]:
    """Point the item's rendition row at a stored file; returns the key it replaced, to delete after
    the commit (a crash in between leaves a spare file, never a row pointing at nothing)."""
    fingerprint = spec.fingerprint()
    existing = session.scalar(select(Rendition).where(Rendition.media_id == media.id,
                                                      Rendition.name == produced.name))
    replaced = []
    if existing is None:
        existing = Rendition(media_id=media.id, name=produced.name)
        session.add(existing)
    elif existing.key != key:
        replaced.append(list(existing.key))
    existing.key = key
    existing.mime_type = produced.mime_type
    existing.width, existing.height = produced.width, produced.height
    existing.size_bytes = size
    existing.spec_fingerprint = fingerprint
    existing.spec = dict(spec.params)
    return replaced


def _drop_unmade(session: Session, media: MediaEntry, declared: set[str], made: set[str],
                 known: set[str]) -> list[list[str]]:
    """Delete the rows of outputs this run of the step was to make (``declared``) but did not (an
    optional output the original no longer gives), and of outputs no step of the kind makes any more
    (``known``: every output the kind's specs name; a page past a lowered page count). The published
    original and the owner's caption tracks are no step's output. Returns their keys, to delete after
    the commit."""
    gone = []
    for rendition in list(media.renditions):
        if rendition.name in made or rendition.name == PUBLISHED_ORIGINAL or is_caption(rendition.name):
            continue
        if rendition.name in declared or rendition.name not in known:
            gone.append(list(rendition.key))
            session.delete(rendition)
    return gone


def _apply_metadata(media: MediaEntry, metadata: dict[str, Any]) -> None:
    """Width, height, EXIF and GPS have columns; everything else a kind reports lands in ``info``."""
    if not metadata:
        return
    rest = dict(metadata)
    media.width = rest.pop("width", media.width)
    media.height = rest.pop("height", media.height)
    if "exif" in rest:
        media.exif = rest.pop("exif") or None
    if "gps" in rest:
        gps = rest.pop("gps") or {}
        if gps or media.imported_from is None:  # an imported item keeps the place its old site knew
            media.gps_lat, media.gps_lon = gps.get("lat"), gps.get("lon")
    if rest:
        media.info = {**(media.info or {}), **rest}


def finish_check(rt: Runtime, session: Session, media_id: int) -> str | None:
    """Decide the item's state from what is actually stored, not from counters.

    An item that was published once stays published when a later reprocess fails: its earlier
    renditions still serve, and the failure shows in the panels.
    """
    media = session.get(MediaEntry, media_id, populate_existing=True)
    if media is None:
        return None
    first_publication = False
    steps = ledger.steps_of(session, media_id)
    defs = {d.name: d for d in get_kind(media.kind).steps(rt.settings)}
    failed = [s for s in steps if s.state == WorkState.FAILED and defs.get(s.name, StepDef(s.name)).required]
    if failed and media.published is None:
        if media.state != MediaState.FAILED:  # the owner hears of it once, in this same transaction
            notify(session, media.owner, "failed", media_id=media.id, extra={"code": failed[0].error_code})
        ledger.media_failed(media, failed[0])
    elif all(s.state in ledger.FINAL for s in steps) and _renditions_present(rt, media, defs.values()):
        first_publication = media.published is None
        ledger.media_published(media)
        if first_publication:  # to followers on other servers, after this transaction commits
            from kiln.federation import publishing

            publishing.on_published(session, rt.settings, media)
        if media.original_store == "queue":
            # Copy first, commit, then delete: a crash in between leaves a spare copy, never none.
            key = list(media.original_key)
            if rt.stores.queue.is_local and getattr(rt.stores.originals, "link_in", None) is not None:
                # The upload's bytes were synced when it was received: a link, its folder synced.
                _put(rt.stores.originals, key, rt.stores.queue.local_path(key), durable=True)
            else:
                with rt.stores.queue.open(key) as fh:
                    rt.stores.originals.save(key, fh)
            media.original_store = "originals"
            session.commit()
            rt.stores.queue.delete(key)
    elif media.published is None and any(s.state != WorkState.QUEUED for s in steps):
        ledger.media_processing(media)
    kind, state = media.kind, media.state
    session.commit()
    if first_publication and state == MediaState.PROCESSED:  # after the commit: plugins see it published
        plugins.notify("kiln_media_published", media_id=media_id, kind=kind, runtime=rt)
    return state


def _renditions_present(rt: Runtime, media: MediaEntry, defs: Iterable[StepDef]) -> bool:
    for definition in defs:
        if not definition.required:
            continue
        for spec in definition.renditions:
            if spec.optional:
                continue
            rendition = media.rendition(spec.name)
            if rendition is None or not rt.stores.public.exists(rendition.key):
                log.warning("media %s lacks rendition %s", media.id, spec.name)
                return False
    return True
