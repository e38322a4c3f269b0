"""The site's change counter: one row whose ``generation`` goes up whenever something a visitor can see
changes (media, renditions, tags, people's public names), in the same transaction as the change.

Caches of anonymous pages (``kiln.web.caching``) are keyed by it, so every web process, and every
processing worker that publishes an item, invalidates them all by committing; nothing has to be told.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Connection, event, select, text, update
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, sessionmaker

from kiln.db.base import Base, utcnow

# A change to these tables can show on a public page, feed or API listing.
WATCHED_TABLES = frozenset({"media", "renditions", "tags", "media_tags", "users"})
# Columns of watched tables that never show to visitors: writing only these does not invalidate.
QUIET_COLUMNS = frozenset({"users.password_hash", "users.email", "users.default_license",
                           "users.upload_limit_bytes"})


class SiteChange(Base):
    __tablename__ = "site_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def current(connection: Connection) -> tuple[int, dt.datetime]:
    """The generation and when it last moved (epoch 0 before the first change)."""
    row = connection.execute(select(SiteChange.generation, SiteChange.changed_at).where(SiteChange.id == 1)).first()
    if row is None:
        return 0, dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return int(row[0]), row[1]


def bump(connection: Connection) -> None:
    """Move the generation on, inside the caller's transaction (creating the row on first use)."""
    result = connection.execute(update(SiteChange).where(SiteChange.id == 1)
                                .values(generation=SiteChange.generation + 1, changed_at=utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        connection.execute(text("INSERT INTO site_changes (id, generation, changed_at) VALUES (1, 1, :now)"),
                           {"now": utcnow().replace(tzinfo=None) if connection.dialect.name == "sqlite"
                            else utcnow()})


def _touches_public(session: Session) -> bool:
    for obj in (*session.new, *session.deleted):
        if getattr(obj, "__tablename__", None) in WATCHED_TABLES:
            return True
    for obj in session.dirty:
        table = getattr(obj, "__tablename__", None)
        if table not in WATCHED_TABLES or not session.is_modified(obj, include_collections=True):
            continue
        if table != "users":
            return True
        state = obj._sa_instance_state  # type: ignore[attr-defined]
        for attr in state.attrs:
            if f"users.{attr.key}" not in QUIET_COLUMNS and attr.history.has_changes():
                return True
    return False


def install(factory: sessionmaker[Session]) -> None:
    """Bump on every flush or bulk statement of this factory's sessions that writes a watched table."""
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "do_orm_execute", _bulk_write)


def _before_flush(session: Session, flush_context: object, instances: object) -> None:
    if _touches_public(session):
        bump(session.connection())


def _bulk_write(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and table.name in WATCHED_TABLES:
        bump(state.session.connection())

