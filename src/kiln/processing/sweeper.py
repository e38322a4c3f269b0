"""The sweeper: re-rings the bell for work the queue lost or a dead worker left behind.

The broker cannot be trusted to redeliver (the filesystem and SQLite transports never redeliver
a message whose worker was SIGKILLed; Redis waits an hour), so the ledger is swept instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import and_, or_, select

from kiln.db.base import utcnow
from kiln.media.models import MediaEntry
from kiln.processing import ledger
from kiln.processing.models import ProcessingStep
from kiln.runtime import Runtime

log = logging.getLogger(__name__)


def sweep(rt: Runtime) -> int:
    """One pass. Returns how many media items had their bell rung again."""
    now = utcnow()
    policy = rt.settings.processing
    lost_bell = now - dt.timedelta(seconds=max(60.0, policy.lease_seconds * 2))
    ring: dict[int, tuple[str, str]] = {}
    with rt.sessions() as session:
        # A running step whose lease lapsed: its worker died. That attempt counts.
        for step in session.scalars(
            select(ProcessingStep).where(ProcessingStep.state == "running", ProcessingStep.lease_expires < now)
        ):
            ledger.schedule_retry(step, policy, "WorkerLost", "worker_lost",
                                  "The worker processing this file stopped unexpectedly.")
        session.commit()
        query = (
            select(ProcessingStep, MediaEntry.kind)
            .join(MediaEntry, MediaEntry.id == ProcessingStep.media_id)
            .where(
                or_(
                    and_(ProcessingStep.state == "pending", ProcessingStep.next_run <= now),
                    and_(ProcessingStep.state == "queued", ProcessingStep.enqueued < lost_bell),
                )
            )
        )
        for step, kind in session.execute(query):
            ring.setdefault(step.media_id, (kind, step.reason))
            step.state = "queued"
            step.enqueued = now
        # Items whose steps are all final but whose state was never settled (a crash mid-check).
        for media_id in session.scalars(
            select(MediaEntry.id).where(MediaEntry.state.in_(("queued", "processing")))
            .where(~MediaEntry.id.in_(select(ProcessingStep.media_id)
                                     .where(ProcessingStep.state.not_in(ledger.FINAL))))
        ):
            kind = session.get(MediaEntry, media_id).kind  # type: ignore[union-attr]
            ring.setdefault(media_id, (kind, "retry"))
        session.commit()
    for media_id, (kind, reason) in ring.items():
        try:
            rt.dispatcher.ring(media_id, kind, reason)
        except Exception:
            log.exception("could not ring the bell for media %s", media_id)
    return len(ring)


class Sweeper(threading.Thread):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(daemon=True, name="kiln-sweeper")
        self.rt = rt
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.rt.settings.processing.sweep_interval):
            try:
                sweep(self.rt)
            except Exception:
                log.exception("sweep failed")

    def stop(self) -> None:
        self.stopping.set()
