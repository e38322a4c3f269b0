"""The audit log: one append-only row per moderation or admin action; reports.

The row names its actor and target by id *and* by the name they had at the time, with no foreign keys:
deleting a person must not change (or cascade into) the record of what was done to them or by them.
The database refuses UPDATE and DELETE on the table (a trigger on SQLite and PostgreSQL, made by
migration 0014), so not even a bug in Kiln can rewrite history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiln.accounts.models import User
from kiln.db.base import NEVER_REUSE_IDS, Base, utcnow
from kiln.federation.models import RemoteActor

# Where an action came from.
AUDIT_VIA = ("web", "api", "cli", "system")


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_action_id", "action", "id"),
        Index("ix_audit_log_actor_id", "actor_id", "id"),
        Index("ix_audit_log_target", "target_type", "target_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # Who did it: a user id and the username they had (None and e.g. "cli:root@host" for a command).
    actor_id: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(String(200))
    # What was done: "ban", "unban", "privilege.revoke", "media.remove", "settings.change", ...
    action: Mapped[str] = mapped_column(String(40))
    # To what: "user", "media", "comment", "collection", "report", "site"; its id and a readable label
    # (a username, a title) as it was when the action was taken.
    target_type: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int | None]
    target_label: Mapped[str] = mapped_column(String(300), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    # Anything else worth keeping (days, privilege, old and new values), as JSON.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    via: Mapped[str] = mapped_column(String(10), default="web")


# What can be reported, why, and what became of a report.
REPORT_TARGETS = ("media", "comment", "collection", "user")
REPORT_CATEGORIES = ("spam", "harassment", "illegal", "copyright", "sensitive", "other")
REPORT_STATES = ("open", "resolved")
# How a report was resolved: dismissed, or the action the moderators took.
REPORT_OUTCOMES = ("dismissed", "removed", "warned", "revoked", "banned")
REPORT_TEXT_MAX = 2000


class Report(Base):
    """One person's report about one thing. Several people's open reports about the same target make
    one case in the moderation queue (grouped by ``target_type`` and ``target_id``); the same person
    reporting the same thing again while their report is open gets that report back.

    ``target_owner_id`` is the person the case is about (the target's owner, or the reported person),
    kept so their history reads quickly; ``snapshot`` holds what the target said when it was reported
    (a title, a comment's text), so a case still reads after the content changes or goes."""

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint(f"target_type IN {REPORT_TARGETS!r}", name="target_type"),
        CheckConstraint(f"category IN {REPORT_CATEGORIES!r}", name="category"),
        CheckConstraint(f"state IN {REPORT_STATES!r}", name="state"),
        Index("ix_reports_state_target", "state", "target_type", "target_id"),
        Index("ix_reports_reporter_id", "reporter_id", "id"),
        # One open report per person and target, even when the same report is sent twice at once.
        Index("uq_reports_open_per_reporter", "reporter_id", "target_type", "target_id", unique=True,
              sqlite_where=text("state = 'open'"), postgresql_where=text("state = 'open'")),
        Index("ix_reports_target_owner_id", "target_owner_id", "state"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # A report sent by another server (a ``Flag``): the actor that sent it; ``reporter_id`` is None.
    remote_reporter_id: Mapped[int | None] = mapped_column(ForeignKey("remote_actors.id", ondelete="SET NULL"))
    target_type: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int]
    target_owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    category: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text, default="")
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(10), default="open")
    outcome: Mapped[str | None] = mapped_column(String(20))
    resolution: Mapped[str] = mapped_column(Text, default="")  # the moderators' reason
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[dt.datetime | None]

    reporter: Mapped[User | None] = relationship(foreign_keys=[reporter_id], lazy="joined")
    remote_reporter: Mapped[RemoteActor | None] = relationship(lazy="joined")
    target_owner: Mapped[User | None] = relationship(foreign_keys=[target_owner_id], lazy="joined")
