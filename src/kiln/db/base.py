"""Declarative base, naming convention and the column types every model shares."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CursorResult, DateTime, MetaData, Result, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Ids that appear in URLs are never handed out twice: on SQLite such a table is AUTOINCREMENT
# (a plain INTEGER PRIMARY KEY reuses the id of the newest row once it is deleted, and an old link
# would show someone else's upload). PostgreSQL's sequences never go back.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE run through ``Session.execute`` matched (typed as a plain Result,
    it is a CursorResult)."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def remember(session: Session, name: str, subject: Any, value: Any) -> None:
    """Keep ``value`` about ``subject`` for the rest of this session's request: something a query
    already read (with the login, with the item), so that asking it again costs no query."""
    session.info[name] = (subject, value)


def recall(session: Session, name: str, subject: Any, default: Any = None) -> Any:
    """What ``remember`` kept under ``name`` about ``subject``, or ``default``."""
    known = session.info.get(name)
    return known[1] if known is not None and known[0] == subject else default


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on every database (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


def import_all_models() -> type[Base]:
    """Import every model module so Base.metadata is complete (migrations, create_all)."""
    from kiln.accounts import models as _accounts  # noqa: F401
    from kiln.db import changes as _changes  # noqa: F401
    from kiln.federation import models as _federation  # noqa: F401
    from kiln.imports import models as _imports  # noqa: F401
    from kiln.media import models as _media  # noqa: F401
    from kiln.moderation import models as _moderation  # noqa: F401
    from kiln.processing import hosts as _hosts  # noqa: F401
    from kiln.processing import models as _processing  # noqa: F401
    from kiln.social import models as _social  # noqa: F401
    from kiln.storage import models as _storage  # noqa: F401

    return Base
