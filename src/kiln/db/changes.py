"""The site's change counter: one row whose ``generation`` goes up whenever something a visitor can see
changes (media, renditions, tags, people's public names), in the same transaction as the change, so the
caches see it move exactly when the change commits. Changes nobody without an account can see (an
upload still processing, a step claimed, a private item edited, a password) leave it alone.

Caches of anonymous pages (``kiln.web.caching``) are keyed by it, so every web process, and every
processing worker that publishes an item, invalidates them all by committing; nothing has to be told.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from typing import Any, cast

from sqlalchemy import BigInteger, Connection, Engine, Table, Update, bindparam, event, inspect, select, text, update
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, sessionmaker

from kiln.db.base import Base, utcnow

# A change to these tables can show on a public page, feed or API listing.
WATCHED_TABLES = frozenset({"media", "renditions", "tags", "media_tags", "users", "collections", "collection_items",
                            "collection_collaborators", "share_links", "comments", "favourites", "follows",
                            "remote_reactions"})
# Columns of watched tables that never show to visitors: writing only these does not invalidate.
QUIET_COLUMNS = frozenset({"users.password_hash", "users.email", "users.default_license",
                           "users.upload_limit_bytes", "users.locale", "users.notify_mail",
                           "users.digest_sent", "users.last_seen",
                           "users.hiding"})  # what one logged-in viewer sees (kiln.social.blocks): never kept


# An execution option for a bulk statement on a watched table whose change no visitor can see (an
# upload moving from queued to processing): ``.execution_options(**{QUIET: True})``.
QUIET = "kiln_unseen"

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# The transaction of a connection that has already moved the generation (``bump``).
_MOVED_IN = "kiln.changes.moved_in"


class SiteChange(Base):
    __tablename__ = "site_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def current(connection: Connection) -> tuple[int, dt.datetime]:
    """The generation and when it last moved (epoch 0 before the first change)."""
    row = connection.execute(select(SiteChange.generation, SiteChange.changed_at).where(SiteChange.id == 1)).first()
    if row is None:
        return 0, EPOCH
    return int(row[0]), row[1]


class CounterReader:
    """Reads the counter as cheaply as it can be read, for a hot path (every cached page request): one
    raw DB-API connection of its own and a prepared one-column query; the time of the change is looked
    up only when the generation has moved."""

    QUERY = "SELECT generation FROM site_changes WHERE id = 1"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._raw: Any = None
        self._known: tuple[int, dt.datetime] = (-1, EPOCH)

    def read(self) -> tuple[int, dt.datetime]:
        try:
            generation = self._generation()
        except Exception:  # the connection broke (a database restart): one fresh try
            self.close()
            generation = self._generation()
        if generation != self._known[0]:
            with self.engine.connect() as connection:
                self._known = current(connection)
        return self._known

    def _generation(self) -> int:
        if self._raw is None:
            self._raw = self.engine.raw_connection()
        cursor = self._raw.cursor()
        try:
            cursor.execute(self.QUERY)
            row = cursor.fetchone()
        finally:
            cursor.close()
        self._raw.rollback()  # end the read's transaction: the next read must see new commits
        return int(row[0]) if row else 0

    def close(self) -> None:
        if self._raw is not None:
            with contextlib.suppress(Exception):  # already gone
                self._raw.invalidate()
            self._raw = None


def bump(connection: Connection) -> None:
    """Move the generation on, inside the caller's transaction (creating the row on first use). Once a
    transaction: caches see the generation move when it commits, whatever it changed (a publication
    changes the item, its renditions and its search entry); a move made inside a savepoint is not
    counted, since the savepoint may be rolled back."""
    transaction = connection.get_transaction()
    if transaction is not None and connection.info.get(_MOVED_IN) is transaction:
        return
    result = connection.execute(_bump_statement(), {"moved_at": utcnow()})
    if result.rowcount == 0:
        connection.execute(text("INSERT INTO site_changes (id, generation, changed_at) VALUES (1, 1, :now)"),
                           {"now": utcnow().replace(tzinfo=None) if connection.dialect.name == "sqlite"
                            else utcnow()})
    if transaction is not None and not connection.in_nested_transaction():
        connection.info[_MOVED_IN] = transaction


@functools.cache
def _bump_statement() -> Update:
    """Built once: this runs in every transaction that changes what visitors see."""
    table = cast(Table, SiteChange.__table__)
    return (update(table).where(table.c.id == 1)
            .values(generation=table.c.generation + 1, changed_at=bindparam("moved_at", type_=table.c.changed_at.type)))


def _history_values(obj: object, key: str) -> set[Any]:
    """The attribute's value now and, within this flush, before."""
    history = inspect(obj).attrs[key].history
    values = {*history.added, *history.unchanged, *history.deleted}
    return values or {getattr(obj, key, None)}


def _seen_by_visitors(obj: object) -> bool:
    """A media item that anyone without an account can see now, or could before this flush: a change
    to anything else (an upload still processing, a step's progress, a private item) leaves every cached
    anonymous page as it is."""
    states, visibilities = _history_values(obj, "state"), _history_values(obj, "visibility")
    return "processed" in states and bool(visibilities - {"private"})


def _media_of(session: Session, obj: object) -> object | None:
    with session.no_autoflush:
        media = getattr(obj, "media", None)  # set in memory when appended; else one primary-key load
        media_id = getattr(obj, "media_id", None)
        if media is None and media_id is not None:  # a new row made with the id alone: not loaded by itself
            media = session.get(inspect(obj).mapper.relationships["media"].mapper.class_, media_id)
        return media


def _touches_public(session: Session) -> bool:
    for obj in (*session.new, *session.deleted, *session.dirty):
        table = getattr(obj, "__tablename__", None)
        if table not in WATCHED_TABLES:
            continue
        if obj in session.dirty and not session.is_modified(obj, include_collections=True):
            continue
        if table == "media":
            if _seen_by_visitors(obj):
                return True
        elif table == "renditions":
            media = _media_of(session, obj)
            if media is None or _seen_by_visitors(media):
                return True
        elif table == "users" and obj in session.dirty:
            state = obj._sa_instance_state
            for attr in state.attrs:
                if f"users.{attr.key}" not in QUIET_COLUMNS and attr.history.has_changes():
                    return True
        else:
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
    if not (state.is_update or state.is_delete) or state.execution_options.get(QUIET):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and table.name in WATCHED_TABLES:
        bump(state.session.connection())

