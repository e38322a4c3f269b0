"""Read-only views of the processing ledger and the outbox for the owner's panel, the admin panel
and the API.

Nothing here writes. Every function takes a session (and, for queue depths, the Celery app) and
returns plain dataclasses that the pages render and the API serialises.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, and_, cast, func, or_, select, text
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.db.base import utcnow
from kiln.i18n import Nn_, _, say_stored, translate_plural
from kiln.media.models import MEDIA_STATES, MediaEntry, MediaState
from kiln.processing.celery_app import lanes
from kiln.processing.dispatch import CeleryDispatcher, lane
from kiln.processing.models import (
    EFFECT_STATES,
    STEP_STATES,
    UNFINISHED_STEPS,
    OutboxEffect,
    ProcessingStep,
    WorkState,
)
from kiln.runtime import Runtime

log = logging.getLogger(__name__)

# What an item is doing, as the panels show it:
# queued: waiting for a worker (with a place in its lane), running: a worker has it,
# retrying: a step failed for a passing reason and runs again at retry_at,
# failed: a step failed for good, done: every step finished.
PHASES = ("queued", "running", "retrying", "failed", "done")


@dataclass
class StepStatus:
    name: str
    state: str
    progress: float
    attempts: int
    next_run: dt.datetime | None
    error_code: str | None
    error_message: str | None


@dataclass
class ItemStatus:
    media_id: int
    phase: str
    steps: list[StepStatus]
    progress: float = 0.0
    lane: str | None = None
    position: int | None = None  # 1 = next in its lane
    lane_size: int | None = None
    retry_at: dt.datetime | None = None
    error_message: str | None = None
    retryable: list[str] = field(default_factory=list)  # the steps "retry now" would run again

    @property
    def unfinished(self) -> bool:
        return self.phase in ("queued", "running", "retrying")

    @property
    def can_retry_now(self) -> bool:
        """Offer "retry now": it failed, or it waits for a retry (not when it is due anyway)."""
        return bool(self.retryable) and self.phase in ("failed", "retrying")


def _step_status(step: ProcessingStep) -> StepStatus:
    progress = 1.0 if step.state in (WorkState.DONE, WorkState.SKIPPED) else max(0.0, min(1.0, step.progress or 0.0))
    return StepStatus(step.name, step.state, progress, step.attempts, step.next_run, step.error_code,
                      step.error_said)


def _waiting_clause(now: dt.datetime):
    """Steps waiting for a worker: rung (queued), or due and about to be rung (pending, next_run passed)."""
    return or_(ProcessingStep.state == WorkState.QUEUED,
               and_(ProcessingStep.state == WorkState.PENDING, ProcessingStep.next_run <= now))


def _busy():
    """Items a worker is running: they are not waiting in any lane."""
    return select(ProcessingStep.media_id).where(ProcessingStep.state == WorkState.RUNNING)


def queue_positions(session: Session, media_ids: Iterable[int], now: dt.datetime | None = None
                    ) -> dict[int, tuple[str, int, int]]:
    """Where each waiting item stands: ``{media_id: (lane, place, items in the lane)}``.

    An item waits in the lane of its kind and reason; items rung earlier (then lower ids) are ahead
    of it. Items a worker is already running are not waiting.
    """
    wanted = set(media_ids)
    if not wanted:
        return {}
    now = now or utcnow()
    since = func.coalesce(ProcessingStep.enqueued, ProcessingStep.next_run)
    waiting = (
        select(ProcessingStep.media_id.label("media_id"), MediaEntry.kind.label("kind"),
               ProcessingStep.reason.label("reason"), func.min(since).label("since"))
        .join(MediaEntry, MediaEntry.id == ProcessingStep.media_id)
        .where(_waiting_clause(now), ProcessingStep.media_id.not_in(_busy()))
        .group_by(ProcessingStep.media_id, MediaEntry.kind, ProcessingStep.reason)
        .subquery()
    )
    lane_of = (waiting.c.kind, waiting.c.reason)
    ranked = select(
        waiting.c.media_id, waiting.c.kind, waiting.c.reason,
        func.row_number().over(partition_by=lane_of, order_by=(waiting.c.since, waiting.c.media_id))
        .label("place"),
        func.count().over(partition_by=lane_of).label("size"),
    ).subquery()
    positions: dict[int, tuple[str, int, int]] = {}
    for media_id, kind, reason, place, size in session.execute(
            select(ranked).where(ranked.c.media_id.in_(wanted))):
        if media_id not in positions or place < positions[media_id][1]:
            positions[media_id] = (lane(kind, reason), int(place), int(size))
    return positions


def item_statuses(session: Session, media: Sequence[MediaEntry], now: dt.datetime | None = None
                  ) -> dict[int, ItemStatus]:
    """The processing status of each item: its steps, progress, place in the queue, retry time, reason."""
    now = now or utcnow()
    ids = [m.id for m in media]
    if not ids:
        return {}
    by_media: dict[int, list[ProcessingStep]] = defaultdict(list)
    for step in session.scalars(select(ProcessingStep).where(ProcessingStep.media_id.in_(ids))
                                .order_by(ProcessingStep.media_id, ProcessingStep.position)):
        by_media[step.media_id].append(step)
    positions = queue_positions(session, ids, now)
    return {m.id: _item_status(m, by_media.get(m.id, []), positions.get(m.id), now) for m in media}


def _item_status(media: MediaEntry, steps: list[ProcessingStep], position: tuple[str, int, int] | None,
                 now: dt.datetime) -> ItemStatus:
    views = [_step_status(s) for s in steps]
    status = ItemStatus(media.id, "done", views)
    status.progress = sum(v.progress for v in views) / len(views) if views else 1.0
    status.retryable = retryable_steps(steps)
    failed = [s for s in steps if s.state == WorkState.FAILED]
    scheduled = [s for s in steps if s.state == WorkState.PENDING and s.next_run is not None and s.next_run > now]
    if media.state == MediaState.FAILED:
        status.phase = "failed"
        status.error_message = media.error_said or (failed[0].error_said if failed else None)
    elif any(s.state == WorkState.RUNNING for s in steps):
        status.phase = "running"
    elif position is not None:
        status.phase = "queued"
        status.lane, status.position, status.lane_size = position
    elif scheduled:
        status.phase = "retrying"
        first = min(scheduled, key=lambda s: s.next_run or now)
        status.retry_at, status.error_message = first.next_run, first.error_said
    elif failed:  # a published item whose later reprocess failed: it still serves its old renditions
        status.phase = "failed"
        status.error_message = failed[0].error_said
    elif media.state in (MediaState.QUEUED, MediaState.PROCESSING):  # steps final, the finishing check to run
        status.phase = "running"
    if status.phase in ("queued", "running") and status.error_message is None:
        earlier = next((s for s in steps if s.state == WorkState.PENDING and s.error_message), None)
        status.error_message = earlier.error_said if earlier else None
    return status


def retryable_steps(steps: Iterable[ProcessingStep]) -> list[str]:
    """What "retry now" runs again: failed steps, and steps waiting to retry after a passing
    failure; never reprocess requests that merely wait their turn."""
    return [s.name for s in steps
            if s.state == WorkState.FAILED or (s.state == WorkState.PENDING and s.error_code is not None)]


def humanize_delay(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """'in 40 seconds', 'in 3 minutes', 'in 2 hours', or 'now' for a time already passed."""
    if when is None:
        return ""
    seconds = (when - (now or utcnow())).total_seconds()
    if seconds <= 0:
        return _("now")
    if seconds >= 86_400 * 1.5:
        return translate_plural(*Nn_("in %(n)s day", "in %(n)s days"), round(seconds / 86_400))
    if seconds >= 3600 * 1.5:
        return translate_plural(*Nn_("in %(n)s hour", "in %(n)s hours"), round(seconds / 3600))
    if seconds >= 60:
        return translate_plural(*Nn_("in %(n)s minute", "in %(n)s minutes"), round(seconds / 60))
    return translate_plural(*Nn_("in %(n)s second", "in %(n)s seconds"), max(1, round(seconds)))


# The admin's overview ------------------------------------------------------------------------

@dataclass
class FailureCount:
    code: str
    message: str
    items: int  # distinct media with a step failed for good with this code
    failed: int  # steps failed for good
    retrying: int  # steps waiting to retry after a failure with this code


@dataclass
class LaneDepth:
    name: str
    waiting: int  # items the ledger says are waiting in this lane
    messages: int | None  # messages in the broker's queue; None when it could not be read
    broker: str  # "ok", "unknown" (the broker did not answer) or "not available" (no broker)


@dataclass
class StuckItem:
    media_id: int
    title: str
    owner: str
    kind: str
    steps: list[str]
    state: str  # of those steps: queued, pending or running
    since: dt.datetime | None  # when they should have moved
    reason: str


@dataclass
class FailedItem:
    media_id: int
    title: str
    owner: str
    kind: str
    media_state: str
    steps: list[str]  # the failed steps, in order
    code: str  # of the first failed step

    message: str
    attempts: int
    at: dt.datetime | None


@dataclass
class OutboxRow:
    id: int
    kind: str
    summary: str  # subject and recipient of a mail; never its body
    state: str
    attempts: int
    created: dt.datetime
    next_run: dt.datetime | None  # of a retry
    code: str | None  # why it failed last
    message: str | None


@dataclass
class OutboxOverview:
    counts: dict[str, int]  # per state
    waiting: list[OutboxRow]  # queued, running or waiting to retry; oldest first
    failed: list[OutboxRow]  # failed for good; newest first


@dataclass
class Overview:
    media: dict[str, int]
    steps: dict[str, int]
    failures: list[FailureCount]
    lanes: list[LaneDepth]
    stuck: list[StuckItem]
    latest_failures: list[FailedItem]
    outbox: OutboxOverview
    generated: dt.datetime


def media_state_counts(session: Session, owner_id: int | None = None) -> dict[str, int]:
    query = select(MediaEntry.state, func.count()).group_by(MediaEntry.state)
    if owner_id is not None:
        query = query.where(MediaEntry.owner_id == owner_id)
    counts = dict.fromkeys(MEDIA_STATES, 0)
    counts.update({state: int(n) for state, n in session.execute(query)})
    return counts


def step_state_counts(session: Session) -> dict[str, int]:
    counts = dict.fromkeys(STEP_STATES, 0)
    counts.update({state: int(n) for state, n in session.execute(
        select(ProcessingStep.state, func.count()).group_by(ProcessingStep.state))})
    return counts


def failure_counts(session: Session) -> list[FailureCount]:
    """Steps that failed for good, and steps waiting to retry, per error code (most items first)."""
    rows = session.execute(
        # The stored sentence (JSON) as text through an aggregate: PostgreSQL cannot group by json.
        select(ProcessingStep.error_code, ProcessingStep.state, ProcessingStep.error_message,
               func.min(cast(ProcessingStep.error_stored, Text)), func.count())
        .where(ProcessingStep.error_code.is_not(None), ProcessingStep.state.in_((WorkState.FAILED, WorkState.PENDING)))
        .group_by(ProcessingStep.error_code, ProcessingStep.state, ProcessingStep.error_message)
    ).all()
    out: dict[str, FailureCount] = {}
    common: dict[str, int] = {}
    for code, state, message, stored_text, steps in rows:
        if code is None:  # the query excludes it; for the type checker
            continue
        stored = json.loads(stored_text) if stored_text and stored_text != "null" else None
        entry = out.setdefault(code, FailureCount(code, "", 0, 0, 0))
        if state == WorkState.FAILED:
            entry.failed += steps
        else:
            entry.retrying += steps
        if steps > common.get(code, 0):  # show the most frequent wording of the code
            common[code], entry.message = steps, say_stored(stored, message) or ""
    items = dict(session.execute(
        select(ProcessingStep.error_code, func.count(func.distinct(ProcessingStep.media_id)))
        .where(ProcessingStep.state == WorkState.FAILED, ProcessingStep.error_code.is_not(None))
        .group_by(ProcessingStep.error_code)).all())
    for code, entry in out.items():
        entry.items = int(items.get(code, 0))
    return sorted(out.values(), key=lambda f: (-f.items, -f.retrying, f.code))


def ledger_lane_counts(session: Session, now: dt.datetime | None = None) -> dict[str, int]:
    """Items waiting per lane according to the ledger (as in :func:`queue_positions`)."""
    now = now or utcnow()
    rows = session.execute(
        select(MediaEntry.kind, ProcessingStep.reason, func.count(func.distinct(ProcessingStep.media_id)))
        .join(MediaEntry, MediaEntry.id == ProcessingStep.media_id)
        .where(_waiting_clause(now), ProcessingStep.media_id.not_in(_busy()))
        .group_by(MediaEntry.kind, ProcessingStep.reason))
    return {lane(kind, reason): int(n) for kind, reason, n in rows}


def broker_depths(celery_app: Any, names: Sequence[str], timeout: float = 2.0) -> dict[str, int | None]:
    """Messages waiting in each named queue, asked of the broker (filesystem, Redis or RabbitMQ).

    A queue the broker does not know holds nothing (Redis drops empty lists). ``None`` means the
    broker could not be asked; the admin page says "unknown" instead of failing.
    """
    depths: dict[str, int | None] = dict.fromkeys(names)
    try:
        with celery_app.connection_for_read(connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.2, timeout=timeout)
            for name in names:
                channel = conn.channel()  # a failed passive declare closes an AMQP channel: one each
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except Exception as exc:
                    if str(getattr(exc, "reply_code", "")) == "404":
                        depths[name] = 0
                    else:
                        log.warning("could not read the depth of queue %s: %s", name, exc)
                finally:
                    with contextlib.suppress(Exception):  # the broker may have closed it already
                        channel.close()
    except Exception as exc:
        log.warning("could not reach the broker for queue depths: %s", exc)
    return depths


def lane_depths(session: Session, celery_app: Any | None, names: Sequence[str]) -> list[LaneDepth]:
    waiting = ledger_lane_counts(session)
    all_names = list(names) + sorted(set(waiting) - set(names))
    if celery_app is None:
        return [LaneDepth(n, waiting.get(n, 0), None, "not available") for n in all_names]
    depths = broker_depths(celery_app, all_names)
    return [LaneDepth(n, waiting.get(n, 0), depths[n], "ok" if depths[n] is not None else "unknown")
            for n in all_names]


def stuck_after(lease_seconds: float) -> dt.timedelta:
    """How long a bell may go unanswered before the item counts as stuck (the sweeper's threshold)."""
    return dt.timedelta(seconds=max(60.0, lease_seconds * 2))


def stuck_items(session: Session, lease_seconds: float, now: dt.datetime | None = None,
                limit: int = 300) -> list[StuckItem]:
    """Steps that should be moving and are not: a bell unanswered for long, a retry long overdue,
    or a running step whose worker stopped renewing its lease. The sweeper normally recovers them."""
    now = now or utcnow()
    old = now - stuck_after(lease_seconds)
    rows = session.execute(
        select(ProcessingStep, MediaEntry.title, MediaEntry.kind, User.username)
        .join(MediaEntry, MediaEntry.id == ProcessingStep.media_id).join(User, User.id == MediaEntry.owner_id)
        .where(text("processing_steps." + UNFINISHED_STEPS))  # implied below; says so to the partial index
        .where(or_(
            and_(ProcessingStep.state == WorkState.QUEUED, ProcessingStep.enqueued < old),
            and_(ProcessingStep.state == WorkState.PENDING, ProcessingStep.next_run < old,
                 ProcessingStep.reason != "reprocess"),  # reprocessing waits its turn on purpose
            and_(ProcessingStep.state == WorkState.RUNNING, ProcessingStep.lease_expires < now),
        ))
        .order_by(ProcessingStep.media_id, ProcessingStep.position).limit(limit)
    ).all()
    items: dict[tuple[int, str], StuckItem] = {}
    for step, title, kind, owner in rows:
        if step.state == WorkState.QUEUED:
            since, reason = step.enqueued, _("Queued and not picked up by any worker.")
        elif step.state == WorkState.PENDING:
            since, reason = step.next_run, _("A retry is overdue and has not been queued.")
        else:
            since, reason = step.lease_expires, _("Its worker stopped renewing the lease (it may have died).")
        item = items.setdefault((step.media_id, step.state),
                                StuckItem(step.media_id, title, owner, kind, [], step.state, since, reason))
        item.steps.append(step.name)
        if since is not None and (item.since is None or since < item.since):
            item.since = since
    return list(items.values())


def latest_failures(session: Session, limit: int = 50) -> list[FailedItem]:
    """The items whose steps failed most recently, one row per item, naming every failed step."""
    rows = session.execute(
        select(ProcessingStep, MediaEntry.title, MediaEntry.kind, MediaEntry.state, User.username)
        .join(MediaEntry, MediaEntry.id == ProcessingStep.media_id).join(User, User.id == MediaEntry.owner_id)
        .where(ProcessingStep.state == WorkState.FAILED)
        .order_by(ProcessingStep.finished.desc(), ProcessingStep.media_id.desc())
        .limit(limit * 5)
    ).all()
    groups: dict[int, list[Any]] = {}
    for row in rows:
        if row[0].media_id in groups or len(groups) < limit:
            groups.setdefault(row[0].media_id, []).append(row)
    out = []
    for media_id, group in groups.items():
        group.sort(key=lambda r: r[0].position)
        first, title, kind, media_state, owner = group[0]
        out.append(FailedItem(media_id, title, owner, kind, media_state, [r[0].name for r in group],
                              first.error_code or "failed", first.error_said or "", first.attempts,
                              max((r[0].finished for r in group if r[0].finished), default=None)))
    return out


def failed_media_ids(session: Session, kind: str | None = None, code: str | None = None) -> list[int]:
    """Items with a step failed for good, optionally only of one kind or one error code."""
    query = (select(ProcessingStep.media_id).distinct()
             .join(MediaEntry, MediaEntry.id == ProcessingStep.media_id)
             .where(ProcessingStep.state == WorkState.FAILED))
    if kind:
        query = query.where(MediaEntry.kind == kind)
    if code:
        query = query.where(ProcessingStep.error_code == code)
    return sorted(session.scalars(query))


def outbox_rows(session: Session, states: Sequence[str], newest_first: bool = False, limit: int | None = 20,
                ids: Sequence[int] | None = None) -> list[OutboxRow]:
    order = OutboxEffect.id.desc() if newest_first else OutboxEffect.id
    query = select(OutboxEffect).where(OutboxEffect.state.in_(states)).order_by(order).limit(limit)
    if ids is not None:
        query = query.where(OutboxEffect.id.in_(ids))
    effects = session.scalars(query)
    return [OutboxRow(id=e.id, kind=e.kind, summary=e.summary, state=e.state, attempts=e.attempts, created=e.created,
                      next_run=e.next_run if e.state == WorkState.PENDING else None, code=e.error_code,
                      message=e.error_said) for e in effects]


def outbox_overview(session: Session) -> OutboxOverview:
    counts = dict.fromkeys(EFFECT_STATES, 0)
    counts.update({state: int(n) for state, n in session.execute(
        select(OutboxEffect.state, func.count()).group_by(OutboxEffect.state))})
    waiting = outbox_rows(session, (WorkState.QUEUED, WorkState.RUNNING, WorkState.PENDING))
    return OutboxOverview(counts=counts, waiting=waiting,
                          failed=outbox_rows(session, (WorkState.FAILED,), newest_first=True))


def overview(session: Session, lease_seconds: float, celery_app: Any | None, lane_names: Sequence[str]
             ) -> Overview:
    """Everything the admin panel and ``GET /api/v1/admin/processing`` show."""
    now = utcnow()
    return Overview(
        media=media_state_counts(session),
        steps=step_state_counts(session),
        failures=failure_counts(session),
        lanes=lane_depths(session, celery_app, lane_names),
        stuck=stuck_items(session, lease_seconds, now),
        latest_failures=latest_failures(session),
        outbox=outbox_overview(session),
        generated=now,
    )


def celery_app_of(rt: Runtime) -> Any | None:
    """The Celery app behind the dispatcher, to ask the broker for queue depths (None: no broker)."""
    return rt.dispatcher.app if isinstance(rt.dispatcher, CeleryDispatcher) else None


def admin_overview(rt: Runtime, session: Session) -> Overview:
    return overview(session, rt.settings.processing.lease_seconds, celery_app_of(rt), lanes())
