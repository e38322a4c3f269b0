"""The processing ledger: one row per step of each media item. The database is the truth;
the queue only rings the bell."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, utcnow

# pending: waiting for next_run (a retry), queued: the bell was rung at enqueued,
# running: a worker holds the lease, done / failed / skipped: final.
STEP_STATES = ("pending", "queued", "running", "done", "failed", "skipped")


class ProcessingStep(Base):
    __tablename__ = "processing_steps"
    __table_args__ = (
        UniqueConstraint("media_id", "name"),
        CheckConstraint(f"state IN {STEP_STATES!r}", name="state"),
        Index("ix_processing_steps_state_next_run", "state", "next_run"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(default=0)
    fingerprint: Mapped[str] = mapped_column(String(32), default="")
    state: Mapped[str] = mapped_column(String(10), default="queued")
    reason: Mapped[str] = mapped_column(String(10), default="new")  # new, retry, reprocess
    attempts: Mapped[int] = mapped_column(default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    enqueued: Mapped[dt.datetime | None]
    next_run: Mapped[dt.datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires: Mapped[dt.datetime | None]
    started: Mapped[dt.datetime | None]
    finished: Mapped[dt.datetime | None]
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    error_class: Mapped[str | None] = mapped_column(String(100))
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(String(1000))


class Lock(Base):
    """A named, expiring lock held by one process (the sweeper: one active at a time)."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    expires: Mapped[dt.datetime]
