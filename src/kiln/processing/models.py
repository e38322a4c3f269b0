"""The processing ledger: one row per step of each media item. The database is the truth;
the queue only rings the bell."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import NEVER_REUSE_IDS, Base, utcnow


class WorkState(StrEnum):
    """The state of a row of work in the ledger: a processing step or an outbox effect (they share the
    columns, the claim, the lease and the backoff). Only processing/ledger.py changes it. The column
    stays a string (a StrEnum member is one), so the rows and the migrations need no change."""

    PENDING = "pending"  # waiting for next_run (a retry)
    QUEUED = "queued"  # the bell was rung (or is about to be) at enqueued
    RUNNING = "running"  # a worker holds the lease
    DONE = "done"  # final
    FAILED = "failed"  # final
    SKIPPED = "skipped"  # final; processing steps only: the kind no longer has the step


STEP_STATES = tuple(state.value for state in WorkState)


class LeasedWork:
    """The ledger's columns, shared by processing steps and outbox effects: state, attempts, lease,
    next run and the last error. One claim, lease and backoff (processing/ledger.py) serves both."""

    state: Mapped[str] = mapped_column(String(10), default=WorkState.QUEUED.value)  # a WorkState
    attempts: Mapped[int] = mapped_column(default=0)
    enqueued: Mapped[dt.datetime | None]
    next_run: Mapped[dt.datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires: Mapped[dt.datetime | None]
    started: Mapped[dt.datetime | None]
    finished: Mapped[dt.datetime | None]
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    error_class: Mapped[str | None] = mapped_column(String(100))
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(String(1000))  # English, for logs and admins
    # The same sentence as msgid and parameters (KilnError.stored), said in the reader's language.
    error_stored: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    @property
    def error_said(self) -> str | None:
        """The last error, in the current language."""
        from kiln.i18n import say_stored

        return say_stored(self.error_stored, self.error_message)


# The partial index's condition, written out so that a query can repeat it word for word (SQLite uses a
# partial index only for a query whose WHERE holds the index's own terms).
UNFINISHED_STEPS = "state IN ('queued', 'pending', 'running')"


class ProcessingStep(LeasedWork, Base):
    __tablename__ = "processing_steps"
    __table_args__ = (
        UniqueConstraint("media_id", "name"),
        CheckConstraint(f"state IN {STEP_STATES!r}", name="state"),
        Index("ix_processing_steps_state_next_run", "state", "next_run"),
        # The unfinished steps, in the order the admin panel lists them (stats.stuck_items): a few
        # entries however many millions of finished steps the table holds.
        Index("ix_processing_steps_unfinished", "media_id", "position", sqlite_where=text(UNFINISHED_STEPS),
              postgresql_where=text(UNFINISHED_STEPS)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(default=0)
    fingerprint: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(String(10), default="new")  # new, retry, reprocess
    progress: Mapped[float] = mapped_column(Float, default=0.0)


class Lock(Base):
    """A named, expiring lock held by one process (the sweeper: one active at a time)."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    expires: Mapped[dt.datetime]


# The states of processing steps less "skipped" (in the order of the table's CHECK constraint).
EFFECT_STATES = tuple(WorkState[name].value for name in ("QUEUED", "PENDING", "RUNNING", "DONE", "FAILED"))


class OutboxEffect(LeasedWork, Base):
    """A side effect (a mail, later notifications, index updates, deliveries) recorded in the transaction
    that causes it and run by a worker after that transaction commits (processing/outbox.py)."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(f"state IN {EFFECT_STATES!r}", name="state"),
        Index("ix_outbox_state_next_run", "state", "next_run"),
        NEVER_REUSE_IDS,  # a stale bell names an id: it must never run someone else's later effect
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # which handler runs it: "mail"
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[str] = mapped_column(String(300), default="")  # for admins: never a secret
