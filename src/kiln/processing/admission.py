"""Ringing bells for due work, with reprocessing throttled so fresh uploads stay fast.

Fresh uploads and retries are rung as soon as they are due. Items being reprocessed at an
administrator's request are let in a few at a time (``processing.reprocess_concurrency``): the
next one is rung when one finishes, and by the sweeper.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.media.models import MediaEntry
from kiln.processing import ledger
from kiln.processing.models import ProcessingStep, WorkState
from kiln.runtime import Runtime

log = logging.getLogger(__name__)


def _in_flight_reprocess(session: Session) -> int:
    return session.scalar(
        select(func.count(func.distinct(ProcessingStep.media_id))).where(
            ProcessingStep.reason == "reprocess", ProcessingStep.state.in_((WorkState.QUEUED, WorkState.RUNNING)))
    ) or 0


def ring_due(rt: Runtime, lost_after: dt.timedelta | None = None, held_before: dt.datetime | None = None) -> int:
    """Ring the bell for every item with due work; returns how many items were rung.

    ``lost_after``: also re-ring items whose bell was rung that long ago without effect.
    ``held_before``: also re-ring items whose bell was rung before then (a host that may have taken
    it has fallen silent; a bell too many finds nothing to claim).
    """
    now = utcnow()
    clauses = [and_(ProcessingStep.state == WorkState.PENDING, ProcessingStep.next_run <= now)]
    if lost_after is not None:
        lost_before = now - lost_after if held_before is None else max(now - lost_after, held_before)
        clauses.append(and_(ProcessingStep.state == WorkState.QUEUED, ProcessingStep.enqueued < lost_before))
    ring: dict[int, tuple[str, str]] = {}
    with rt.sessions() as session:
        room = rt.settings.processing.reprocess_concurrency - _in_flight_reprocess(session)
        rows = session.execute(
            select(ProcessingStep, MediaEntry.kind).join(MediaEntry, MediaEntry.id == ProcessingStep.media_id)
            .where(or_(*clauses)).order_by(ProcessingStep.next_run, ProcessingStep.media_id)
        ).all()
        for step, kind in rows:
            if step.media_id not in ring:
                if step.reason == "reprocess" and step.state == WorkState.PENDING:
                    if room <= 0:
                        continue
                    room -= 1
                ring[step.media_id] = (kind, step.reason)
            ledger.mark_queued(step, now)
        session.commit()
    ring_bells(rt, ring)
    return len(ring)


def admit_reprocess(rt: Runtime) -> int:
    """Let the next reprocess items in, up to the concurrency limit."""
    return ring_due(rt)


def ring_bells(rt: Runtime, ring: dict[int, tuple[str, str]]) -> None:
    for media_id, (kind, reason) in ring.items():
        try:
            rt.dispatcher.ring(media_id, kind, reason)
        except Exception as exc:  # the broker is down or hung: the work waits in the ledger
            log.warning("could not ring the bell for media %s (%s); the sweeper will ring it again",
                        media_id, exc)
