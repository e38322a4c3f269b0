"""Reprocessing: running steps again for media that was already processed, or that failed.

Originals are always kept, so any step of any item can run again. Two reasons bring an item back:

* **retry** — a step failed (the file was corrupt under an older Kiln, the disk was full, the
  worker was killed...). :func:`retry_failed` makes every failed step due now, on the ``KIND.retry``
  lane, rung at once.
* **reprocess** — something changed on the site: a rendition size in the settings, or Kiln's own
  algorithms (their version is part of every spec). :func:`stale` finds every done step whose stored
  spec differs from what the current settings ask for; :func:`request` makes steps due on the
  ``KIND.reprocess`` lane, which the admission control lets in a few at a time
  (``processing.reprocess_concurrency``) so fresh uploads stay fast.

Whether an output is current is decided in one place, :mod:`kiln.processing.current`, which the step
runner asks too. A rendition whose spec changed but whose bytes would come out the same (the kind's
``is_current`` hook says so; for images: the picture is smaller than both the old and the new size, so
neither shrinks it) is not stale: it needs no work, only its record. :func:`stale` reports those apart
(``same_output``), and :func:`apply_stale` records the new spec on them without running anything,
so what a dry run counts as stale is exactly what the real run remakes.

Every function takes a :class:`~kiln.runtime.Runtime` and returns plain data (dicts, lists, tuples)
that the CLI prints and the admin panel can show.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.errors import InvalidInput, NotFound
from kiln.media.models import MediaEntry, Rendition
from kiln.mediatypes import get_kind, kinds
from kiln.mediatypes.base import Identified, MediaKind, StepDef
from kiln.processing import ledger
from kiln.processing.admission import ring_bells, ring_due
from kiln.processing.current import MISSING, SAME_OUTPUT, STALE, needs_work, step_status
from kiln.processing.models import ProcessingStep
from kiln.processing.service import process_media
from kiln.runtime import Runtime

BATCH = 200
# Media states whose items `bulk` may send back (queued and processing items are on their way).
BULK_STATES = ("processed", "failed")
# `--wait` waits out a retry scheduled this soon; later ones are left to the workers.
SHORT_RETRY = 60.0

Pair = tuple[int, str]  # (media id, step name)
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def check_kind(name: str) -> MediaKind:
    known = kinds()
    if name not in known:
        raise NotFound("There is no media kind called %(kind)s. Kinds: %(kinds)s.",
                       code="unknown_kind", kind=repr(name), kinds=", ".join(sorted(known)))
    return known[name]


def _kind_names(kind: str | None) -> list[str]:
    if kind is not None:
        check_kind(kind)
        return [kind]
    return sorted(kinds())


def kind_of(rt: Runtime, media_id: int) -> str:
    with rt.sessions() as session:
        kind = session.scalar(select(MediaEntry.kind).where(MediaEntry.id == media_id))
    if kind is None:
        raise NotFound("There is no media with id %(id)s.", id=str(media_id))
    return kind


def check_steps(rt: Runtime, kind: str, steps: Iterable[str] | None) -> list[str]:
    """The step names asked for, checked against the kind; None or ``["all"]`` means every step."""
    names = [d.name for d in check_kind(kind).steps(rt.settings)]
    wanted = [s for s in (steps or []) if s != "all"]
    if not wanted:
        return names
    unknown = [s for s in wanted if s not in names]
    if unknown:
        raise InvalidInput("The %(kind)s kind has no step called %(step)s. Steps: %(steps)s (or all).",
                           code="unknown_step", kind=kind, step=repr(unknown[0]), steps=", ".join(names))
    return [n for n in names if n in wanted]


def _identified(kind: str, mime_type: str, width: int | None, height: int | None) -> Identified:
    """What the kind learned from the original's header, as recorded on the media row."""
    return Identified(kind=kind, mime_type=mime_type, width=width, height=height)


def _scan(session: Session, settings: Any, kind_name: str, states: Sequence[str] = ("processed",),
          media_ids: Sequence[int] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """(media id, {step: status}) for every item of the kind in ``states``, read in batches."""
    kind = get_kind(kind_name)
    defs = kind.steps(settings)
    last = 0
    while True:
        query = (select(MediaEntry.id, MediaEntry.mime_type, MediaEntry.width, MediaEntry.height)
                 .where(MediaEntry.kind == kind_name, MediaEntry.state.in_(states), MediaEntry.id > last)
                 .order_by(MediaEntry.id).limit(BATCH))
        if media_ids is not None:
            query = query.where(MediaEntry.id.in_(media_ids))
        rows = session.execute(query).all()
        if not rows:
            return
        ids = [r.id for r in rows]
        last = ids[-1]
        steps: dict[int, dict[str, Any]] = {i: {} for i in ids}
        for step in session.execute(select(ProcessingStep.media_id, ProcessingStep.name, ProcessingStep.state,
                                           ProcessingStep.fingerprint)
                                    .where(ProcessingStep.media_id.in_(ids))):
            steps[step.media_id][step.name] = step
        renditions: dict[int, dict[str, Any]] = {i: {} for i in ids}
        for rendition in session.execute(select(Rendition.media_id, Rendition.name, Rendition.spec_fingerprint,
                                                Rendition.spec)
                                         .where(Rendition.media_id.in_(ids))):
            renditions[rendition.media_id][rendition.name] = rendition
        for row in rows:
            identified = _identified(kind_name, row.mime_type, row.width, row.height)
            yield row.id, {d.name: step_status(kind, d, steps[row.id].get(d.name), renditions[row.id], identified)
                           for d in defs}


# What can run ----------------------------------------------------------------------------------
def available(rt: Runtime, target: int | str) -> dict[str, Any]:
    """The steps that can run for one media item (an int) or for a kind (a name).

    For an item: ``{"media_id", "kind", "state", "title", "steps": [{"step", "renditions",
    "state", "attempts", "stale", "spec_changed", "error"}]}``. ``stale`` means the current
    settings would give other bytes; ``spec_changed`` also covers renditions whose bytes would not
    change. For a kind: ``{"kind", "items": {media state: count}, "steps": [{"step",
    "renditions", "states": {step state: count}, "stale", "same_output"}]}`` where ``stale`` and
    ``same_output`` count processed items.
    """
    if isinstance(target, int):
        return _available_item(rt, target)
    return _available_kind(rt, target)


def _available_item(rt: Runtime, media_id: int) -> dict[str, Any]:
    with rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        if media is None:
            raise NotFound("There is no media with id %(id)s.", id=str(media_id))
        kind = get_kind(media.kind)
        rows = {s.name: s for s in ledger.steps_of(session, media_id)}
        stored = {r.name: r for r in media.renditions}
        identified = _identified(media.kind, media.mime_type, media.width, media.height)
        out = []
        for definition in kind.steps(rt.settings):
            row = rows.get(definition.name)
            status = step_status(kind, definition, row, stored, identified)
            out.append({
                "step": definition.name,
                "renditions": [spec.name for spec in definition.renditions],
                "state": row.state if row is not None else MISSING,
                "attempts": row.attempts if row is not None else 0,
                "stale": needs_work(status),
                "spec_changed": status in (STALE, SAME_OUTPUT, MISSING),
                "error": ({"code": row.error_code, "message": row.error_said}
                          if row is not None and row.error_code else None),
            })
        return {"media_id": media.id, "kind": media.kind, "state": media.state, "title": media.title,
                "steps": out}


def _available_kind(rt: Runtime, kind_name: str) -> dict[str, Any]:
    kind = check_kind(kind_name)
    report = stale(rt, kind_name)["kinds"][kind_name]
    with rt.sessions() as session:
        items = dict(session.execute(select(MediaEntry.state, func.count()).where(MediaEntry.kind == kind_name)
                                     .group_by(MediaEntry.state)).all())
        states: dict[str, dict[str, int]] = {}
        for name, state, count in session.execute(
            select(ProcessingStep.name, ProcessingStep.state, func.count())
            .join(MediaEntry, MediaEntry.id == ProcessingStep.media_id)
            .where(MediaEntry.kind == kind_name).group_by(ProcessingStep.name, ProcessingStep.state)
        ):
            states.setdefault(name, {})[state] = count
    steps = []
    for definition in kind.steps(rt.settings):
        counts = report["steps"][definition.name]
        steps.append({"step": definition.name, "renditions": [spec.name for spec in definition.renditions],
                      "states": dict(sorted(states.get(definition.name, {}).items())),
                      "stale": counts["stale"], "same_output": counts["same_output"]})
    return {"kind": kind_name, "items": dict(sorted(items.items())), "steps": steps}


# Stale renditions ------------------------------------------------------------------------------
def stale(rt: Runtime, kind: str | None = None) -> dict[str, Any]:
    """Which done steps of processed items the current settings would remake.

    Returns ``{"kinds": {kind: {"items": processed items, "steps": {step: {"stale": n,
    "same_output": n}}}}, "stale": [(media_id, step)], "same_output": [(media_id, step)]}``.
    ``stale`` pairs need remaking; ``same_output`` pairs only need their record updated.
    """
    report: dict[str, Any] = {"kinds": {}, "stale": [], "same_output": []}
    with rt.sessions() as session:
        for kind_name in _kind_names(kind):
            defs = get_kind(kind_name).steps(rt.settings)
            counts = {d.name: {"stale": 0, "same_output": 0} for d in defs}
            items = 0
            for media_id, statuses in _scan(session, rt.settings, kind_name):
                items += 1
                for name, status in statuses.items():
                    if needs_work(status):
                        counts[name]["stale"] += 1
                        report["stale"].append((media_id, name))
                    elif status == SAME_OUTPUT:
                        counts[name]["same_output"] += 1
                        report["same_output"].append((media_id, name))
            if items or kind:  # kinds the site has no media of stay out of the report
                report["kinds"][kind_name] = {"items": items, "steps": counts}
    return report


def apply_stale(rt: Runtime, report: Mapping[str, Any]) -> dict[str, Any]:
    """Act on a :func:`stale` report: record the new spec on ``same_output`` steps (nothing runs),
    and request the ``stale`` steps on the reprocess lane. Each is checked again first, so a step
    that changed since the report was made is left alone."""
    recorded = record_same_output(rt, report.get("same_output", []))
    requested = request_pairs(rt, group_pairs(report.get("stale", [])), "reprocess", only_stale=True)
    return {**requested, "recorded": recorded}


def record_same_output(rt: Runtime, pairs: Iterable[Pair]) -> int:
    """Give steps whose output would not change the current spec, without running them.
    Returns how many steps were recorded."""
    wanted = group_pairs(pairs)
    done = 0
    for chunk in _chunks(sorted(wanted)):
        with rt.sessions() as session:
            for media in session.scalars(select(MediaEntry).where(MediaEntry.id.in_(chunk))
                                         .order_by(MediaEntry.id)):
                kind = get_kind(media.kind)
                rows = {s.name: s for s in ledger.steps_of(session, media.id)}
                stored = {r.name: r for r in media.renditions}
                identified = _identified(media.kind, media.mime_type, media.width, media.height)
                for definition in kind.steps(rt.settings):
                    row = rows.get(definition.name)
                    if definition.name not in wanted[media.id] or row is None:
                        continue
                    if step_status(kind, definition, row, stored, identified) != SAME_OUTPUT:
                        continue
                    ledger.record_specs(definition, stored)
                    row.fingerprint = definition.fingerprint()
                    done += 1
            session.commit()
    return done


# Requesting work -------------------------------------------------------------------------------
def group_pairs(pairs: Iterable[Pair]) -> dict[int, set[str]]:
    grouped: dict[int, set[str]] = {}
    for media_id, step in pairs:
        grouped.setdefault(int(media_id), set()).add(step)
    return grouped


def request(rt: Runtime, media_ids: Iterable[int], steps: Iterable[str] | None = None,
            reason: str = "reprocess") -> dict[str, Any]:
    """Make ``steps`` (None: all) of each item due now, commit, and ring: retries at once,
    reprocessing through the admission control. Unknown ids or steps refuse the whole request."""
    ids = sorted(set(media_ids))
    step_list = list(steps) if steps else None
    wanted: dict[int, set[str] | None] = {}
    with rt.sessions() as session:
        found = dict(session.execute(select(MediaEntry.id, MediaEntry.kind).where(MediaEntry.id.in_(ids))).all()) \
            if ids else {}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound("There is no media with id %(id)s.", id=str(missing[0]))
    for media_id in ids:
        wanted[media_id] = set(check_steps(rt, found[media_id], step_list))
    return request_pairs(rt, wanted, reason)


def request_pairs(rt: Runtime, wanted: Mapping[int, set[str] | None], reason: str,
                  only_stale: bool = False) -> dict[str, Any]:
    """The work of :func:`request`, with a set of steps per item.

    ``only_stale``: touch a step only if it is still stale (see :func:`step_status`).
    Returns ``{"reason", "media_ids": [items with steps made due], "steps": count,
    "busy": [items with nothing made due: the steps were running, or no longer stale]}``.
    """
    if reason not in ("retry", "reprocess"):
        raise InvalidInput("Unknown reason %(reason)s.", reason=repr(reason))
    touched_ids: list[int] = []
    busy: list[int] = []
    count = 0
    for chunk in _chunks(sorted(wanted)):
        rung: list[tuple[int, str]] = []
        with rt.sessions() as session:
            for media in session.scalars(select(MediaEntry).where(MediaEntry.id.in_(chunk))
                                         .order_by(MediaEntry.id)):
                kind = get_kind(media.kind)
                defs = kind.steps(rt.settings)
                asked = wanted[media.id]
                names = {d.name for d in defs} if asked is None else set(asked)
                if only_stale:
                    names = _still_stale(session, kind, media, defs, names)
                touched = ledger.request_steps(session, media, defs, names, reason, remake=not only_stale) \
                    if names else []
                if touched:
                    touched_ids.append(media.id)
                    count += len(touched)
                    rung.append((media.id, media.kind))
                else:
                    busy.append(media.id)
            session.commit()
        if reason == "retry":
            ring_bells(rt, {media_id: (kind_name, "retry") for media_id, kind_name in rung})
    if reason == "reprocess" and touched_ids:
        ring_due(rt)
    return {"reason": reason, "media_ids": touched_ids, "steps": count, "busy": busy}


def _still_stale(session: Session, kind: MediaKind, media: MediaEntry, defs: list[StepDef],
                 names: set[str]) -> set[str]:
    rows = {s.name: s for s in ledger.steps_of(session, media.id)}
    stored = {r.name: r for r in media.renditions}
    identified = _identified(media.kind, media.mime_type, media.width, media.height)
    return {d.name for d in defs if d.name in names
            and needs_work(step_status(kind, d, rows.get(d.name), stored, identified))}


# Failed work -----------------------------------------------------------------------------------
def failed(rt: Runtime, kind: str | None = None) -> dict[str, Any]:
    """Every failed step of failed items, and of published items (a reprocess that failed: the
    item still serves its earlier renditions).

    Returns ``{"kinds": {kind: {"items": n, "steps": {step: n}}}, "failed": [(media_id, step)],
    "errors": {media_id: message}}``.
    """
    report: dict[str, Any] = {"kinds": {}, "failed": [], "errors": {}}
    with rt.sessions() as session:
        for kind_name in _kind_names(kind):
            counts: dict[str, int] = {d.name: 0 for d in get_kind(kind_name).steps(rt.settings)}
            items: set[int] = set()
            for media_id, name, message in session.execute(
                select(ProcessingStep.media_id, ProcessingStep.name, ProcessingStep.error_message)
                .join(MediaEntry, MediaEntry.id == ProcessingStep.media_id)
                .where(MediaEntry.kind == kind_name, MediaEntry.state.in_(("failed", "processed")),
                       ProcessingStep.state == "failed")
                .order_by(ProcessingStep.media_id, ProcessingStep.position)
            ):
                items.add(media_id)
                counts[name] = counts.get(name, 0) + 1
                report["failed"].append((media_id, name))
                report["errors"].setdefault(media_id, message or "")
            if items or kind:
                report["kinds"][kind_name] = {"items": len(items), "steps": counts}
    return report


def retry_failed(rt: Runtime, kind: str | None = None, report: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Retry now every failed step (of ``report``, or found afresh), on the retry lane."""
    if report is None:
        report = failed(rt, kind)
    return request_pairs(rt, group_pairs(report["failed"]), "retry")


# Bulk ------------------------------------------------------------------------------------------
def bulk(rt: Runtime, kind: str, state: str, step: str, dry_run: bool = False) -> dict[str, Any]:
    """Reprocess ``step`` (or ``all``) of every item of ``kind`` whose media state is ``state``.

    Returns ``{"kind", "state", "steps": [names], "media_ids": [...], "requested": result of
    request_pairs, or None for a dry run}``.
    """
    names = check_steps(rt, kind, [step])
    if state not in BULK_STATES:
        raise InvalidInput("Bulk reprocessing takes items that are %(states)s, not %(state)s.",
                           code="bad_state", states=" or ".join(BULK_STATES), state=repr(state))
    with rt.sessions() as session:
        ids = list(session.scalars(select(MediaEntry.id).where(MediaEntry.kind == kind, MediaEntry.state == state)
                                   .order_by(MediaEntry.id)))
    result: dict[str, Any] = {"kind": kind, "state": state, "steps": names, "media_ids": ids, "requested": None}
    if not dry_run and ids:
        result["requested"] = request_pairs(rt, {i: set(names) for i in ids}, "reprocess")
    return result


# Waiting ---------------------------------------------------------------------------------------
def _busy(session: Session, media_id: int) -> bool:
    soon = utcnow() + dt.timedelta(seconds=SHORT_RETRY)
    for step in ledger.steps_of(session, media_id):
        if step.state in ("queued", "running"):
            return True
        if step.state == "pending" and (step.next_run is None or step.next_run <= soon):
            return True
    return False


def settle(rt: Runtime, media_id: int, limit: float = 600.0, poll: float = 0.5) -> None:
    """Work on one item here until none of its steps is queued, running or due soon.

    Safe alongside running workers: a step a worker holds is not claimed again; this waits for it.
    Used by ``--wait``, so the CLI finishes even when no worker runs.
    """
    deadline = time.monotonic() + limit
    while True:
        process_media(rt, media_id)
        with rt.sessions() as session:
            if not _busy(session, media_id):
                return
        if time.monotonic() > deadline:
            return
        time.sleep(poll)


def outcome(rt: Runtime, wanted: Mapping[int, Iterable[str]] | Iterable[Pair]) -> dict[str, Any]:
    """Where requested steps stand: ``{"done", "failed", "waiting", "busy": counts,
    "failures": [(media_id, step, message)]}``. ``waiting`` steps have a retry scheduled."""
    pairs = group_pairs(wanted) if not isinstance(wanted, Mapping) else {k: set(v) for k, v in wanted.items()}
    result: dict[str, Any] = {"done": 0, "failed": 0, "waiting": 0, "busy": 0, "failures": []}
    for chunk in _chunks(sorted(pairs)):
        with rt.sessions() as session:
            for step in session.scalars(select(ProcessingStep).where(ProcessingStep.media_id.in_(chunk))
                                        .order_by(ProcessingStep.media_id, ProcessingStep.position)):
                if step.name not in pairs[step.media_id]:
                    continue
                if step.state in ("done", "skipped"):
                    result["done"] += 1
                elif step.state == "failed":
                    result["failed"] += 1
                    result["failures"].append((step.media_id, step.name, step.error_message or ""))
                elif step.state == "pending":
                    result["waiting"] += 1
                else:
                    result["busy"] += 1
    return result
