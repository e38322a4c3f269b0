"""Recording and reading the audit log (``kiln.moderation.models.AuditEntry``).

``record`` adds the entry to the caller's session, so it commits (or rolls back) with the action it
describes: an action is never done without its entry, nor recorded without being done.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.moderation.models import AUDIT_VIA, AuditEntry


def command_actor() -> str:
    """How a ``kiln`` command run on the server is named as an actor: ``cli:USER@HOST``."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return f"cli:{who}@{socket.gethostname()}"


def record(session: Session, actor: User | None, action: str, target_type: str, target_id: int | None,
           *, target_label: str = "", reason: str = "", details: dict[str, Any] | None = None,
           via: str = "web") -> AuditEntry:
    """Add one entry for an action taken by ``actor`` (None: a ``kiln`` command or Kiln itself)."""
    if via not in AUDIT_VIA:
        raise ValueError(f"unknown via {via!r}")
    if actor is not None:
        actor_id, actor_name = actor.id, actor.username
    else:
        actor_id, actor_name = None, command_actor() if via == "cli" else "kiln"
    entry = AuditEntry(actor_id=actor_id, actor_name=actor_name, action=action, target_type=target_type,
                       target_id=target_id, target_label=target_label[:300], reason=reason,
                       details=details or {}, via=via)
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditFilter:
    """What the admin page and API narrow the log by; every field optional."""

    action: str | None = None
    actor: str | None = None  # an actor name ("ada", "cli:root@host")
    target_type: str | None = None
    target_id: int | None = None
    target_label: str | None = None  # the name or title the target had (a deleted account's username)
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def apply(self, query: Select[tuple[AuditEntry]]) -> Select[tuple[AuditEntry]]:
        if self.action:
            # "ban" matches "ban" only; "privilege" matches "privilege.revoke" and "privilege.grant".
            query = query.where((AuditEntry.action == self.action)
                                | AuditEntry.action.startswith(self.action + ".", autoescape=True))
        if self.actor:
            query = query.where(AuditEntry.actor_name == self.actor)
        if self.target_type:
            query = query.where(AuditEntry.target_type == self.target_type)
        if self.target_id is not None:
            query = query.where(AuditEntry.target_id == self.target_id)
        if self.target_label is not None:
            query = query.where(AuditEntry.target_label == self.target_label)
        if self.since is not None:
            query = query.where(AuditEntry.created >= self.since)
        if self.until is not None:
            query = query.where(AuditEntry.created < self.until)
        return query


def page(session: Session, where: AuditFilter, *, before: int | None = None,
         limit: int = 50) -> list[AuditEntry]:
    """Newest first, keyset-paginated on the id (``before``: the last id of the previous page)."""
    query = where.apply(select(AuditEntry))
    if before is not None:
        query = query.where(AuditEntry.id < before)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))


def as_json(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "created": entry.created.isoformat(), "actor_id": entry.actor_id,
            "actor": entry.actor_name, "action": entry.action, "target_type": entry.target_type,
            "target_id": entry.target_id, "target": entry.target_label, "reason": entry.reason,
            "details": entry.details, "via": entry.via}


def json_lines(session: Session, where: AuditFilter, batch: int = 500) -> Iterator[str]:
    """Every matching entry, oldest first, one JSON object per line; read in batches so a long log is
    never held in memory."""
    after = 0
    query = where.apply(select(AuditEntry))
    while True:
        rows: list[AuditEntry] = list(session.scalars(query.where(AuditEntry.id > after)
                                                      .order_by(AuditEntry.id).limit(batch)))
        if not rows:
            return
        for entry in rows:
            yield json.dumps(as_json(entry), ensure_ascii=False) + "\n"
        after = rows[-1].id
