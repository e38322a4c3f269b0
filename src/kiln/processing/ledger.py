"""State changes of processing steps, outbox effects and media items. Every write to the ledger lives here,
and every change of a ``WorkState`` or a ``MediaState``.

A step is claimed with a conditional UPDATE, so two workers that received the same bell can
never both run it; a claim holds a lease that the runner renews, and the sweeper takes back
steps whose lease lapsed (the worker died).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from kiln.config import RetryPolicy
from kiln.db import changes
from kiln.db.base import rowcount, utcnow
from kiln.errors import KilnError
from kiln.i18n import Nn_
from kiln.media.models import MediaEntry, MediaState, Rendition
from kiln.mediatypes.base import StepDef
from kiln.processing.models import OutboxEffect, ProcessingStep, WorkState

FINAL = (WorkState.DONE, WorkState.FAILED, WorkState.SKIPPED)
# Rows with a state, attempts, a lease and a next run time: the same rules serve both.
Leased = ProcessingStep | OutboxEffect
# Why a row failed: an error (said later in the reader's language), or an English sentence.
Message = str | KilnError


def _said(message: Message) -> tuple[str, dict[str, Any] | None]:
    """The English text (for logs and admins) and the stored msgid and parameters of ``message``."""
    if isinstance(message, KilnError):
        return str(message)[:1000], message.stored()
    return message[:1000], None


def create_steps(session: Session, media: MediaEntry, steps: Iterable[StepDef], reason: str = "new") -> None:
    now = utcnow()
    for position, step in enumerate(steps):
        session.add(
            ProcessingStep(
                media_id=media.id,
                name=step.name,
                position=position,
                fingerprint=step.fingerprint(),
                state=WorkState.QUEUED,
                reason=reason,
                enqueued=now,
            )
        )


def backoff_delay(attempts: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: base * 2^(n-1), capped, then scaled by 50-100%."""
    raw = min(policy.backoff_cap, policy.backoff_base * (2 ** max(0, attempts - 1)))
    return raw * (0.5 + 0.5 * (rng or random).random())


def due_clause(model: type[Leased], now: dt.datetime) -> ColumnElement[bool]:
    """Rows of ``model`` (processing steps, outbox effects) that a worker may claim now."""
    return or_(
        and_(
            model.state.in_((WorkState.QUEUED, WorkState.PENDING)),
            or_(model.next_run.is_(None), model.next_run <= now),
        ),
        and_(model.state == WorkState.RUNNING, model.lease_expires < now),
    )


def _due_clause(now: dt.datetime) -> ColumnElement[bool]:
    return due_clause(ProcessingStep, now)


def claim_row(session: Session, model: type[Leased], row_id: int, owner: str, lease_seconds: float) -> bool:
    """The conditional UPDATE that takes a due row for one worker (does not commit)."""
    now = utcnow()
    result = session.execute(
        update(model)
        .where(model.id == row_id, due_clause(model, now))
        .values(state=WorkState.RUNNING, lease_owner=owner, lease_expires=now + dt.timedelta(seconds=lease_seconds),
                attempts=model.attempts + 1, started=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def due_steps(session: Session, media_id: int) -> list[ProcessingStep]:
    now = utcnow()
    query = (
        select(ProcessingStep)
        .where(ProcessingStep.media_id == media_id, _due_clause(now))
        .order_by(ProcessingStep.position)
    )
    return list(session.scalars(query))


def claim(session: Session, step_id: int, owner: str, lease_seconds: int, *, queued: bool = True) -> bool:
    """Take the step for this worker if it is still due. Commits. ``queued``: whether its item may
    still be waiting in the queue, to be marked processing (False once the caller has seen it is not).
    A step object the session holds comes back up to date (attempts, lease), read by the same statement
    where the database can return what it updated."""
    now = utcnow()
    statement = (
        update(ProcessingStep)
        .where(ProcessingStep.id == step_id, _due_clause(now))
        .values(
            state=WorkState.RUNNING,
            lease_owner=owner,
            lease_expires=now + dt.timedelta(seconds=lease_seconds),
            attempts=ProcessingStep.attempts + 1,
            started=now,
            progress=0.0,
        )
        .execution_options(synchronize_session=False)
    )
    if session.get_bind().dialect.update_returning:
        claimed = session.execute(statement.returning(ProcessingStep)
                                  .execution_options(populate_existing=True)).first() is not None
    else:
        claimed = rowcount(session.execute(statement)) == 1
        held = session.identity_map.get(identity_key(ProcessingStep, step_id))
        if claimed and held is not None:
            session.refresh(held)
    if claimed and queued:
        session.execute(
            update(MediaEntry)
            .where(MediaEntry.id == select(ProcessingStep.media_id).where(ProcessingStep.id == step_id)
                   .scalar_subquery(), MediaEntry.state == MediaState.QUEUED)
            .values(state=MediaState.PROCESSING)
            .execution_options(**{changes.QUIET: True})  # an upload still processing: no visitor sees it
        )
    session.commit()
    return claimed


def renew(session: Session, step_id: int, owner: str, lease_seconds: int, progress: float | None = None) -> bool:
    values: dict[str, object] = {"lease_expires": utcnow() + dt.timedelta(seconds=lease_seconds)}
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
    result = session.execute(
        update(ProcessingStep)
        .where(ProcessingStep.id == step_id, ProcessingStep.lease_owner == owner,
               ProcessingStep.state == WorkState.RUNNING)
        .values(**values)
    )
    session.commit()
    return rowcount(result) == 1


def still_holds(session: Session, step_id: int, owner: str) -> bool:
    """Whether ``owner`` still holds the step's lease, locking the row until this transaction ends.

    A worker asks just before it commits a step's outcome: the sweeper may have taken the step back
    meanwhile (its host fell silent, its lease lapsed) and given it to another worker, whose outcome
    must not be doubled. The sweeper locks the rows it takes back, so the two cannot cross."""
    result = session.execute(
        update(ProcessingStep)
        .where(ProcessingStep.id == step_id, ProcessingStep.lease_owner == owner,
               ProcessingStep.state == WorkState.RUNNING)
        .values(lease_owner=owner)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def mark_done(row: Leased) -> None:
    row.state = WorkState.DONE
    if isinstance(row, ProcessingStep):
        row.progress = 1.0
    row.finished = utcnow()
    row.lease_owner = None
    row.lease_expires = None
    row.next_run = None
    row.error_class = row.error_code = row.error_message = row.error_stored = None


def mark_current(step: ProcessingStep, definition: StepDef, renditions: Mapping[str, Rendition]) -> None:
    """The step's outputs would come out the same under its current specs: done, with those specs
    recorded on its stored outputs, and nothing run."""
    mark_done(step)
    record_specs(definition, renditions)
    step.fingerprint = definition.fingerprint()


def record_specs(definition: StepDef, renditions: Mapping[str, Rendition]) -> None:
    """Record the current spec on each stored output of the step (optional ones not made are left out)."""
    for spec in definition.renditions:
        rendition = renditions.get(spec.name)
        if rendition is not None:
            rendition.spec_fingerprint, rendition.spec = spec.fingerprint(), dict(spec.params)


def mark_skipped(step: ProcessingStep) -> None:
    """A step the item's kind no longer has: final, nothing to run."""
    step.state = WorkState.SKIPPED


def mark_queued(step: ProcessingStep, now: dt.datetime) -> None:
    """Its bell is being rung (admission control)."""
    step.state, step.enqueued = WorkState.QUEUED, now


def mark_failed(step: Leased, error_class: str, code: str, message: Message) -> None:
    step.state = WorkState.FAILED
    step.finished = utcnow()
    step.lease_owner = None
    step.lease_expires = None
    step.next_run = None
    step.error_class, step.error_code = error_class, code
    step.error_message, step.error_stored = _said(message)


def schedule_retry(
    step: ProcessingStep, policy: RetryPolicy, error_class: str, code: str, message: Message
) -> None:
    """A transient failure: try again after a backoff, or give up after the attempt limit."""
    if retry_later(step, policy, error_class, code, message):
        step.reason = "retry"


def retry_later(row: Leased, policy: RetryPolicy, error_class: str, code: str, message: Message) -> bool:
    """Put a step or an outbox effect back to ``pending`` after a backoff, or fail it for good after
    the attempt limit. True when it will be tried again."""
    if row.attempts >= policy.max_attempts:
        text, stored = _said(message)
        gave_up = KilnError(Nn_("Kiln tried %(n)s time and gave up.", "Kiln tried %(n)s times and gave up."),
                            n=row.attempts)
        mark_failed(row, error_class, code, f"{text} {gave_up}")
        row.error_stored = {**stored, "then": gave_up.stored()} if stored else None
        return False
    row.state = WorkState.PENDING
    row.lease_owner = None
    row.lease_expires = None
    row.next_run = utcnow() + dt.timedelta(seconds=backoff_delay(row.attempts, policy))
    row.error_class, row.error_code = error_class, code
    row.error_message, row.error_stored = _said(message)
    return True


def postpone(row: Leased, until: dt.datetime, message: Message) -> None:
    """Put a row back to ``pending`` until ``until`` without counting this try as an attempt."""
    row.state = WorkState.PENDING
    row.lease_owner = None
    row.lease_expires = None
    row.attempts = max(0, row.attempts - 1)
    row.next_run = until
    row.error_class, row.error_code = "Postponed", "postponed"
    row.error_message, row.error_stored = _said(message)


def request_steps(session: Session, media: MediaEntry, definitions: Iterable[StepDef], names: Iterable[str],
                  reason: str, remake: bool = True) -> list[ProcessingStep]:
    """Ask for steps to run again (retry now, or reprocess). They become due at once; the caller
    rings the bell after committing (retries), or the admission control does (reprocessing).

    ``remake``: the step makes all its outputs again (someone asked for it by name, or it failed),
    which its fingerprint, cleared, records; otherwise (``kiln reprocess stale``) the step keeps its
    fingerprint and makes only the outputs that are not current (processing.service)."""
    wanted = set(names)
    existing = {s.name: s for s in steps_of(session, media.id)}
    now = utcnow()
    touched = []
    for position, definition in enumerate(definitions):
        if definition.name not in wanted:
            continue
        step = existing.get(definition.name)
        if step is None:
            step = ProcessingStep(media_id=media.id, name=definition.name, position=position)
            session.add(step)
        if step.state in (WorkState.RUNNING, WorkState.QUEUED):  # a worker has it, or its bell already rang
            continue
        step.state, step.reason, step.attempts, step.progress = WorkState.PENDING, reason, 0, 0.0
        step.next_run, step.enqueued, step.finished = now, None, None
        if remake:
            step.fingerprint = ""
        step.error_class = step.error_code = step.error_message = step.error_stored = None
        touched.append(step)
    if touched and media.state == MediaState.FAILED:
        media.state = MediaState.PROCESSING
        media.error_code = media.error_message = media.error_stored = None
    return touched


# Outbox effects ----------------------------------------------------------------------------------

def new_effect(kind: str, payload: dict[str, Any], summary: str) -> OutboxEffect:
    """An effect recorded now, its bell rung after the commit (processing/outbox.py adds it)."""
    return OutboxEffect(kind=kind, payload=payload, summary=summary[:300], state=WorkState.QUEUED,
                        enqueued=utcnow())


def requeue_effects(session: Session, ids: list[int], *, fresh_attempts: bool = False) -> None:
    """The effects ``ids`` are rung again now (the caller rings them after the commit); a retry asked for
    by an admin starts over with ``fresh_attempts``."""
    values: dict[str, object] = {"state": WorkState.QUEUED, "enqueued": utcnow(), "next_run": None}
    if fresh_attempts:
        values["attempts"] = 0
    session.execute(update(OutboxEffect).where(OutboxEffect.id.in_(ids)).values(**values)
                    .execution_options(synchronize_session=False))


# Media items -------------------------------------------------------------------------------------
# An item is created QUEUED (media/services.py); the first claim of one of its steps makes it PROCESSING
# (``claim``), and the runner settles it with these once its steps stop (processing/service.py).

def media_failed(media: MediaEntry, step: ProcessingStep) -> None:
    """A required step failed for good before the item was ever published."""
    media.state = MediaState.FAILED
    media.error_code, media.error_message = step.error_code, step.error_message
    media.error_stored = step.error_stored


def media_published(media: MediaEntry) -> bool:
    """Every step is final and the renditions are there. True when this changed the item's state."""
    if media.state == MediaState.PROCESSED:
        return False
    media.state = MediaState.PROCESSED
    # An imported item keeps the date it was published on its old site.
    media.published = media.published or (media.created if media.imported_from else utcnow())
    media.error_code = media.error_message = media.error_stored = None
    return True


def media_processing(media: MediaEntry) -> None:
    media.state = MediaState.PROCESSING


def steps_of(session: Session, media_id: int) -> list[ProcessingStep]:
    query = select(ProcessingStep).where(ProcessingStep.media_id == media_id).order_by(ProcessingStep.position)
    return list(session.scalars(query))


def retry_at(steps: Iterable[ProcessingStep]) -> dt.datetime | None:
    """When the next retry of a waiting step is scheduled, if any."""
    times = [s.next_run for s in steps if s.state == WorkState.PENDING and s.next_run is not None]
    return min(times) if times else None


def running_on_host(session: Session, host: str) -> list[ProcessingStep]:
    """Steps running under a lease held by a process on ``host`` (``kiln serve`` asks this before it
    stops its worker, to say what it waits for)."""
    query = select(ProcessingStep).where(ProcessingStep.state == WorkState.RUNNING,
                                         ProcessingStep.lease_owner.like(f"{host}:%"))
    return list(session.scalars(query))
