"""State changes of processing steps, outbox effects and media items. Every write to the ledger lives here,
and every change of a ``WorkState`` or a ``MediaState``.

A step is claimed with a conditional UPDATE, so two workers that received the same bell can
never both run it; a claim holds a lease that the runner renews, and the sweeper takes back
steps whose lease lapsed (the worker died).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, Update, and_, bindparam, insert, inspect, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

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
    """The item's steps, queued: one INSERT of all the rows (nothing needs them as objects in this
    session; a worker reads them afresh)."""
    now = utcnow()
    rows = [{"media_id": media.id, "name": step.name, "position": position, "fingerprint": step.fingerprint(),
             "state": WorkState.QUEUED, "reason": reason, "enqueued": now}
            for position, step in enumerate(steps)]
    if rows:
        session.execute(insert(ProcessingStep), rows)


def backoff_delay(attempts: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: base * 2^(n-1), capped, then scaled by 50-100%."""
    raw = min(policy.backoff_cap, policy.backoff_base * (2 ** max(0, attempts - 1)))
    return raw * (0.5 + 0.5 * (rng or random).random())


def due_clause(model: type[Leased], now: dt.datetime | ColumnElement[dt.datetime]) -> ColumnElement[bool]:
    """Rows of ``model`` (processing steps, outbox effects) that a worker may claim now."""
    return or_(
        and_(
            model.state.in_((WorkState.QUEUED, WorkState.PENDING)),
            or_(model.next_run.is_(None), model.next_run <= now),
        ),
        and_(model.state == WorkState.RUNNING, model.lease_expires < now),
    )


def _due_clause(now: dt.datetime | ColumnElement[dt.datetime]) -> ColumnElement[bool]:
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


STEPS = cast(Table, ProcessingStep.__table__)
MEDIA = cast(Table, MediaEntry.__table__)

# The statements a worker sends for every item are built once, with bound parameters: building a
# statement and its cache key each time cost more than SQLite took to run it (docs/processing.md).
@cache
def _claim_statement() -> Update:
    """Take the due steps ``ids`` for ``owner`` until ``expires``, the attempt counted."""
    now = bindparam("claim_now", type_=STEPS.c.started.type)
    return (
        update(STEPS)
        .where(STEPS.c.id.in_(bindparam("ids", expanding=True)), _due_clause(now))
        .values(
            state=WorkState.RUNNING,
            lease_owner=bindparam("claim_owner"),
            lease_expires=bindparam("claim_expires", type_=STEPS.c.lease_expires.type),
            attempts=STEPS.c.attempts + 1,
            started=now,
            progress=0.0,
        )
    )


@cache
def _step_attributes() -> list[tuple[str, str]]:
    """(column name, attribute name) of every column of a step row."""
    mapper = inspect(ProcessingStep)
    return [(column.key, mapper.get_property_by_column(column).key) for column in STEPS.c]


@cache
def _claimed_returning() -> Update:
    return _claim_statement().returning(*STEPS.c)


def _claimed(session: Session, steps: Sequence[ProcessingStep], owner: str, lease_seconds: int) -> list[int]:
    """Take those of ``steps`` that are still due for ``owner``, in one UPDATE. The step objects come
    back up to date (attempts, lease, and anything another worker changed), read by the same statement
    where the database can return what it updated. Returns the ids taken."""
    now = utcnow()
    params: dict[str, Any] = {"ids": [step.id for step in steps], "claim_now": now, "claim_owner": owner,
              "claim_expires": now + dt.timedelta(seconds=lease_seconds)}
    if not session.get_bind().dialect.update_returning:
        session.execute(_claim_statement(), params)
        return [step.id for step in session.scalars(  # read back what this claim took: its owner and time
            select(ProcessingStep).where(ProcessingStep.id.in_(params["ids"]), ProcessingStep.lease_owner == owner,
                                         ProcessingStep.state == WorkState.RUNNING, ProcessingStep.started == now)
            .execution_options(populate_existing=True))]
    by_id = {step.id: step for step in steps}
    taken = []
    for row in session.execute(_claimed_returning(), params).mappings():
        step = by_id[row["id"]]
        for column, attribute in _step_attributes():  # what populate_existing would do, without the ORM's load
            set_committed_value(step, attribute, row[column])
        taken.append(step.id)
    return taken


@cache
def _processing_statement() -> Update:
    return (update(MEDIA).where(MEDIA.c.id == bindparam("media_id"), MEDIA.c.state == MediaState.QUEUED)
            .values(state=MediaState.PROCESSING).execution_options(**{changes.QUIET: True}))


def _processing(session: Session, media_id: ColumnElement[int] | int) -> None:
    """A queued item whose step was just claimed is processing (no visitor sees it either way)."""
    if isinstance(media_id, int):
        session.execute(_processing_statement(), {"media_id": media_id})
        return
    session.execute(
        update(MediaEntry)
        .where(MediaEntry.id == media_id, MediaEntry.state == MediaState.QUEUED)
        .values(state=MediaState.PROCESSING)
        .execution_options(**{changes.QUIET: True}, synchronize_session=False)
    )


def claim(session: Session, step_id: int, owner: str, lease_seconds: int, *, queued: bool = True) -> bool:
    """Take one step for this worker if it is still due, its item from queued to processing. Commits.
    ``queued``: whether its item may still be waiting in the queue (False once the caller has seen
    it is not)."""
    step = session.get(ProcessingStep, step_id)
    claimed = step is not None and bool(_claimed(session, [step], owner, lease_seconds))
    if claimed and queued:
        _processing(session, select(ProcessingStep.media_id).where(ProcessingStep.id == step_id).scalar_subquery())
    session.commit()
    return claimed


def claim_steps(session: Session, media: MediaEntry, steps: list[ProcessingStep], owner: str,
                lease_seconds: int) -> list[ProcessingStep]:
    """Take every one of an item's ``steps`` that is still due for this worker, under one lease, in one
    statement, and a queued item to processing (a second statement). Does not commit. Returns the
    steps taken, in order, up to date."""
    taken = set(_claimed(session, steps, owner, lease_seconds))
    if taken and media.state == MediaState.QUEUED:
        _processing(session, media.id)
        set_committed_value(media, "state", MediaState.PROCESSING)
    return [step for step in steps if step.id in taken]


def renew(session: Session, step_ids: int | Sequence[int], owner: str, lease_seconds: int,
          progress: float | None = None, progress_of: int | None = None) -> bool:
    """Extend the lease of steps this worker holds, and record the progress of one of them
    (``progress_of``; the only step when ``step_ids`` is one id). Commits. True if all are still held."""
    ids = [step_ids] if isinstance(step_ids, int) else list(step_ids)
    lease = {"lease_expires": utcnow() + dt.timedelta(seconds=lease_seconds)}
    held = ProcessingStep.lease_owner == owner, ProcessingStep.state == WorkState.RUNNING
    renewed = rowcount(session.execute(update(ProcessingStep).where(ProcessingStep.id.in_(ids), *held)
                                       .values(**lease)))
    if progress is not None and (progress_of is not None or len(ids) == 1):
        session.execute(update(ProcessingStep).where(ProcessingStep.id == (progress_of or ids[0]), *held)
                        .values(progress=max(0.0, min(1.0, progress))))
    session.commit()
    return renewed == len(ids)


def still_holds(session: Session, step_ids: int | Sequence[int], owner: str) -> bool:
    """Whether ``owner`` still holds every one of the steps' leases, locking their rows until this
    transaction ends.

    A worker asks just before it commits the steps' outcomes: the sweeper may have taken a step back
    meanwhile (its host fell silent, its lease lapsed) and given it to another worker, whose outcome
    must not be doubled. The sweeper locks the rows it takes back, so the two cannot cross."""
    ids = [step_ids] if isinstance(step_ids, int) else list(step_ids)
    result = session.execute(_holds_statement(), {"ids": ids, "holder": owner})
    return rowcount(result) == len(ids)


@cache
def _holds_statement() -> Update:
    return (update(STEPS)
            .where(STEPS.c.id.in_(bindparam("ids", expanding=True)), STEPS.c.lease_owner == bindparam("holder"),
                   STEPS.c.state == WorkState.RUNNING)
            .values(lease_owner=bindparam("holder")))


def release(session: Session, step_ids: Sequence[int], owner: str) -> None:
    """Give back steps this worker still holds but whose results it dropped (another of the item's
    steps was taken back from it): due again at once, the attempt counted. Does not commit."""
    session.execute(
        update(ProcessingStep)
        .where(ProcessingStep.id.in_(list(step_ids)), ProcessingStep.lease_owner == owner,
               ProcessingStep.state == WorkState.RUNNING)
        .values(state=WorkState.PENDING, lease_owner=None, lease_expires=None, next_run=utcnow())
        .execution_options(synchronize_session=False)
    )


def is_due(step: ProcessingStep, now: dt.datetime) -> bool:
    """What ``due_clause`` asks of a row, asked of a step already read (the claim asks it again)."""
    if step.state in (WorkState.QUEUED, WorkState.PENDING):
        return step.next_run is None or step.next_run <= now
    return step.state == WorkState.RUNNING and step.lease_expires is not None and step.lease_expires < now


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
    return list(session.scalars(_steps_query(), {"media_id": media_id}))


@cache
def _steps_query() -> Select[ProcessingStep]:
    return (select(ProcessingStep).where(ProcessingStep.media_id == bindparam("media_id"))
            .order_by(ProcessingStep.position))


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
