"""Running a group of an item's steps: one claim, one lease, one transaction for their outcomes.

A worker claims the steps of a group in one statement (``ledger.claim_steps``) and commits; runs them
in order on one working copy of the original, outside any transaction, while one thread renews their
lease; stores every file they made; then records every outcome (rendition rows, step states,
metadata) in one transaction, after checking that it still holds every step's lease. An image's
steps form one group (they take milliseconds: the claim and the commits were most of an item's
cost); a kind whose steps take minutes (``batch_steps = false``: video, audio) runs each step as a
group of its own, so a worker that dies never loses more than the step it was on.

A worker killed before the outcomes commit leaves the group's steps ``running`` under its lease: the
next bell (or the sweeper) takes them back, counts the attempt and runs them again. Nothing of the
run is in the database, and files it had stored are unreferenced (``kiln storage gc``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from kiln.config import RetryPolicy
from kiln.errors import KilnError
from kiln.media.captions import is_caption
from kiln.media.models import MediaEntry, Rendition
from kiln.mediatypes import get_kind, placeholder
from kiln.mediatypes.base import (
    MediaKind,
    MediaRejected,
    ProducedFile,
    RenditionSpec,
    StepContext,
    StepDef,
    StepResult,
    TransientFailure,
)
from kiln.processing import ledger
from kiln.processing.current import STALE, outputs_status
from kiln.processing.limits import kill_self
from kiln.processing.models import ProcessingStep, WorkState
from kiln.runtime import Runtime
from kiln.storage.base import StorageError, put_local_file

log = logging.getLogger(__name__)

PUBLISHED_ORIGINAL = "original"  # the rendition media/services.py publishes the original as: no step makes it
# A step that starts this many seconds after the item was last looked at looks again, so a deleted
# item's remaining slow steps are not run for nothing (fast steps just run; nothing of theirs is stored).
RECHECK_AFTER = 1.0


class MediaGone(Exception):
    """The item was deleted while one of its steps ran, or a step was taken back from this worker:
    nothing of this run may be stored."""


@dataclass
class Outcome:
    """How one claimed step ended: ``result`` when it ran, else ``settle`` records what happened."""

    step: ProcessingStep
    definition: StepDef
    result: StepResult | None = None
    settle: Callable[[ProcessingStep], object] | None = None
    stored: list[tuple[ProducedFile, list[str], int, RenditionSpec]] = field(default_factory=list)
    specs: set[str] = field(default_factory=set)  # the outputs this run of the step was to make
    current: bool = False  # a reprocess found its stored outputs current: done, nothing run


class Lease:
    """The steps a worker runs as one group: their lease, the running step and its progress, as the
    process's :class:`LeaseKeeper` sees them."""

    def __init__(self, rt: Runtime, step_ids: list[int], owner: str, time_limit: float) -> None:
        self.rt, self.step_ids, self.owner, self.time_limit = rt, step_ids, owner, time_limit
        self.current = step_ids[0]
        self.progress: float | None = None
        self.started = time.monotonic()
        self.last_progress: float | None = None
        # Wake often enough to show progress live (one small UPDATE when it changed), renew the
        # lease every third of its length, and notice an overrun within a quarter of the limit.
        self.renew_every = rt.settings.processing.lease_seconds / 3
        self.tick = max(0.5, min(2.0, self.renew_every, time_limit / 4))
        self.last_renewal = self.started

    def begin(self, step_id: int) -> None:
        """The step now running: its time limit starts, and progress is its own."""
        self.current, self.progress, self.started = step_id, None, time.monotonic()

    def tend(self, now: float) -> None:
        """Renew the lease and record progress when due; past the time limit, in a worker process,
        record the overrun and kill the process (nothing else can stop a stuck decoder)."""
        overrun = now - self.started > self.time_limit
        if not overrun and now - self.last_renewal < self.renew_every and self.progress == self.last_progress:
            return
        self.last_renewal, self.last_progress = now, self.progress
        try:
            with self.rt.sessions() as session:
                if overrun and self.rt.enforce_limits:
                    step = session.get(ProcessingStep, self.current)
                    if step is not None and step.state == WorkState.RUNNING:
                        ledger.mark_failed(step, "TimeLimit", "timeout",
                                           KilnError("Processing took longer than the %(limit)s s limit "
                                                     "and was stopped.", limit=round(self.time_limit)))
                        session.commit()
                    kill_self()
                ledger.renew(session, self.step_ids, self.owner, self.rt.settings.processing.lease_seconds,
                             self.progress, progress_of=self.current)
        except Exception:  # renewal is best effort; the sweeper tolerates a late one
            log.exception("lease renewal failed for steps %s", self.step_ids)


class LeaseKeeper(threading.Thread):
    """One thread per process tends every lease the process holds. It is started once, not per item:
    starting a thread for each group cost a small image's run more than its lease check did."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="kiln-leases")
        self.changed = threading.Condition()
        self.leases: list[Lease] = []

    def hold(self, lease: Lease) -> None:
        with self.changed:
            if not self.leases or lease.tick < min(held.tick for held in self.leases):
                self.changed.notify()  # else the keeper wakes in time anyway: no switch to it per item
            self.leases.append(lease)

    def release(self, lease: Lease) -> None:
        with self.changed:
            self.leases.remove(lease)

    def run(self) -> None:
        while True:
            with self.changed:
                while not self.leases:
                    self.changed.wait()
                self.changed.wait(min(lease.tick for lease in self.leases))
                held = list(self.leases)
            now = time.monotonic()
            for lease in held:
                lease.tend(now)


_keeper: tuple[int, LeaseKeeper] | None = None
_keeper_lock = threading.Lock()


def keeper() -> LeaseKeeper:
    """This process's lease keeper (a new one in a forked child: threads do not cross a fork)."""
    global _keeper
    with _keeper_lock:
        if _keeper is None or _keeper[0] != os.getpid():
            thread = LeaseKeeper()
            thread.start()
            _keeper = (os.getpid(), thread)
        return _keeper[1]


# Running ------------------------------------------------------------------------------------------

def run_steps(rt: Runtime, media: MediaEntry, steps: list[ProcessingStep], defs: dict[str, StepDef],
              ctx: StepContext, owner: str) -> list[Outcome]:
    """Run the claimed ``steps`` in order (no transaction is open). Raises MediaGone when the item
    was deleted meanwhile."""
    policy = rt.settings.processing.policy(media.kind)
    lease = Lease(rt, [step.id for step in steps], owner, policy.step_time_limit)
    ctx.report_progress = lambda fraction: setattr(lease, "progress", fraction)
    keeper().hold(lease)
    outcomes = []
    looked = time.monotonic()
    try:
        for step in steps:
            definition = defs[step.name]
            if time.monotonic() - looked > RECHECK_AFTER:
                if current_token(rt, media.id) is None:
                    raise MediaGone()
                looked = time.monotonic()
            if step.reason == "reprocess" and _already_current(rt, media, definition, ctx):
                renditions = {r.name: r for r in media.renditions}
                outcomes.append(Outcome(step, definition, current=True, settle=partial(
                    ledger.mark_current, definition=definition, renditions=renditions)))
                continue
            ctx.specs = _outputs_to_make(rt, media, step, definition, ctx)
            lease.begin(step.id)
            outcomes.append(_run_one(media, step, definition, ctx, policy))
    finally:
        keeper().release(lease)
    return outcomes


def _run_one(media: MediaEntry, step: ProcessingStep, definition: StepDef, ctx: StepContext,
             policy: RetryPolicy) -> Outcome:
    outcome = Outcome(step, definition, specs=set(ctx.specs))
    try:
        outcome.result = pixel_work(get_kind(media.kind), step.name, ctx)
    except MediaRejected as exc:
        outcome.settle = partial(ledger.mark_failed, error_class=type(exc).__name__, code=exc.code, message=exc)
    except (TransientFailure, StorageError) as exc:
        outcome.settle = _retry(policy, type(exc).__name__, exc.code, exc)
    except MemoryError:
        outcome.settle = _retry(policy, "MemoryError", "out_of_memory",
                                KilnError("The server ran out of memory while processing this file."))
    except Exception as exc:  # unknown: transient until the attempt limit
        log.exception("step %s of media %s failed", step.name, media.id)
        outcome.settle = _retry(policy, type(exc).__name__, "internal",
                                KilnError("Processing stopped on an unexpected error."))
    return outcome


def pixel_work(kind: MediaKind, step: str, ctx: StepContext) -> StepResult:
    """What a step makes, as the worker makes it: the kind's step, then the blurred placeholder of the
    gallery picture (every kind's thumbnail gets one). ``bench/bench_engine.py`` times this alone as
    the pixel work the engine is compared with."""
    result = kind.run_step(step, ctx)
    for produced in result.files:
        ctx.earlier[produced.name] = produced
        if produced.name == "thumbnail":
            result.metadata.setdefault("blurhash", placeholder(produced.path))
    return result


def _retry(policy: RetryPolicy, error_class: str, code: str, message: KilnError) -> Callable[[ProcessingStep], object]:
    return partial(ledger.schedule_retry, policy=policy, error_class=error_class, code=code, message=message)


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


# Storing ------------------------------------------------------------------------------------------

def current_token(rt: Runtime, media_id: int) -> str | None:
    """The item's key token as committed now, None when the item is gone. Read on a connection of its
    own (no session: one plain query): the step's session may hold a snapshot older than a deletion
    or a change of visibility."""
    with rt.engine.connect() as fresh:
        return fresh.scalar(_token_query(), {"media_id": media_id})


@cache
def _token_query() -> Select[str]:
    return select(MediaEntry.key_token).where(MediaEntry.id == bindparam("media_id"))


def store_outputs(rt: Runtime, media: MediaEntry, outcomes: list[Outcome]) -> list[list[str]]:
    """Store every file the steps made in the public store (no transaction is open). The key names
    the spec, so a reprocess with new settings never overwrites a file in use; it holds the item's key
    token as committed now, so making the item private retires every old URL. Returns the keys
    stored; raises MediaGone when the item was deleted."""
    made = [outcome for outcome in outcomes if outcome.result is not None and outcome.result.files]
    if not made:
        return []
    token = current_token(rt, media.id)
    if token is None:
        raise MediaGone()
    keys = []
    for outcome in made:
        assert outcome.result is not None
        try:
            for produced in outcome.result.files:
                spec = outcome.definition.spec(produced.name)  # a KeyError here is a kind's bug
                key = media.rendition_key(f"{produced.name}-{spec.fingerprint()[:10]}{produced.path.suffix}", token)
                size = put_local_file(rt.stores.public, key, produced.path, durable=False)
                keys.append(key)
                outcome.stored.append((produced, key, size, spec))
        except StorageError as exc:
            outcome.result = None
            outcome.settle = _retry(rt.settings.processing.policy(media.kind), type(exc).__name__, exc.code, exc)
    return keys


# Recording ----------------------------------------------------------------------------------------

def record(rt: Runtime, session: Session, media: MediaEntry, outcomes: list[Outcome]) -> list[list[str]]:
    """Write every outcome into the session's transaction (the caller commits): rendition rows, step
    states, metadata. Returns the keys of files the new rows replaced, to delete after the commit (a
    crash in between leaves a spare file, never a row pointing at nothing)."""
    replaced: list[list[str]] = []
    kind = get_kind(media.kind)
    known = {spec.name for d in kind.steps(rt.settings) for spec in d.renditions}
    stored = {r.name: r for r in media.renditions}
    for outcome in outcomes:
        step, definition = outcome.step, outcome.definition
        if outcome.result is None:
            assert outcome.settle is not None
            outcome.settle(step)
            continue
        for produced, key, size, spec in outcome.stored:
            replaced += _point_rendition(media, stored, produced, key, size, spec)
        made = {produced.name for produced, *_ in outcome.stored}
        replaced += _drop_unmade(session, media, stored, outcome.specs, made, known)
        # Outputs kept from an earlier run (this run made only the others) now carry the current spec.
        ledger.record_specs(definition, {n: r for n, r in stored.items() if n not in outcome.specs})
        _apply_metadata(media, outcome.result.metadata)
        ledger.mark_done(step)
        step.fingerprint = definition.fingerprint()
    return replaced


def _point_rendition(media: MediaEntry, stored: dict[str, Rendition], produced: ProducedFile, key: list[str],
                     size: int, spec: RenditionSpec) -> list[list[str]]:
    """Point the item's rendition row at a stored file (a new row, or the one it had). Returns the key
    it replaced."""
    existing = stored.get(produced.name)
    replaced = []
    if existing is None:
        existing = stored[produced.name] = Rendition(name=produced.name)
        media.renditions.append(existing)
    elif existing.key != key:
        replaced.append(list(existing.key))
    existing.key = key
    existing.mime_type = produced.mime_type
    existing.width, existing.height = produced.width, produced.height
    existing.size_bytes = size
    existing.spec_fingerprint = spec.fingerprint()
    existing.spec = dict(spec.params)
    return replaced


def _drop_unmade(session: Session, media: MediaEntry, stored: dict[str, Rendition], declared: set[str],
                 made: set[str], known: set[str]) -> list[list[str]]:
    """Delete the rows of outputs this run of the step was to make (``declared``) but did not (an
    optional output the original no longer gives), and of outputs no step of the kind makes any more
    (``known``: every output the kind's specs name; a page past a lowered page count). The published
    original and the owner's caption tracks are no step's output. Returns their keys, to delete after
    the commit."""
    gone = []
    for name, rendition in list(stored.items()):
        if name in made or name == PUBLISHED_ORIGINAL or is_caption(name):
            continue
        if name in declared or name not in known:
            gone.append(list(rendition.key))
            media.renditions.remove(rendition)
            session.delete(rendition)
            del stored[name]
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
