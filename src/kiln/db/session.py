"""Engines and sessions. One engine per process; sessions are short and explicit.

Every connection has timeouts fitting who waits on it (``Timeouts``): a web request, where a person
waits, gets short ones (``WEB``); workers and commands longer ones (``BACKGROUND``); migrations no
statement limit (``MAINTENANCE``). On PostgreSQL they bound opening a connection (``connect_timeout``),
any statement (``statement_timeout``, enforced by the server, which cancels it cleanly), and any wait
for the server's answer at all (enforced here: a server or network that goes silent mid-statement
cannot hold a thread for ever; TCP keepalives and ``tcp_user_timeout`` catch a peer that is gone).
On SQLite they bound the wait for another writer's lock. A connection that cannot be opened or stops
answering marks the database unavailable for a few seconds (``kiln.db.health``).
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from kiln.db.health import availability_for

# Connections each process may open: the web app sizes its request slots and threads from it.
POOL_SIZE = 20
# Web requests holding a database session at once: each may need a second connection (a throttle
# counter), so half the pool; the others wait for a slot (kiln.db.health.RequestSlots).
REQUEST_SLOTS = POOL_SIZE // 2


@dataclass(frozen=True)
class Timeouts:
    """Seconds a caller waits on the database before it is told no."""

    connect: float  # to open a connection (PostgreSQL counts whole seconds, at least 2)
    statement: float | None  # the longest statement the server runs for us (None: no limit)
    pool: float  # for a free pooled connection
    lock: float  # SQLite: for another writer to finish
    queue: float  # a web request, for a slot (kiln.db.health.RequestSlots)
    grace: float = 2.0  # past ``statement``, before a server that has not answered is given up on

    @property
    def answer(self) -> float | None:
        """The longest wait for any answer from the server on an open connection."""
        return None if self.statement is None else self.statement + self.grace

    @property
    def trivial(self) -> float | None:
        """The longest wait for the answer to a trivial statement: the pool's ping, the change counter."""
        return None if self.answer is None else min(self.answer, self.connect)


# A person is waiting: pages and API calls run statements of milliseconds; one that takes seconds is
# stuck (a lock, a hung server), and a quick 503 with Retry-After beats a spinner.
WEB = Timeouts(connect=3, statement=5, pool=5, lock=5, queue=10)
# Workers, the sweeper and commands: nobody is watching the clock, but nothing waits for ever.
BACKGROUND = Timeouts(connect=10, statement=300, pool=30, lock=30, queue=30)
# Migrations may rewrite big tables: no statement limit, the rest as for background work.
MAINTENANCE = Timeouts(connect=10, statement=None, pool=30, lock=60, queue=30)


def make_engine(url: str, timeouts: Timeouts = BACKGROUND, **kwargs: Any) -> Engine:
    if kwargs.get("poolclass") is None:
        kwargs.setdefault("pool_size", POOL_SIZE // 2)
        kwargs.setdefault("max_overflow", POOL_SIZE - POOL_SIZE // 2)
        kwargs.setdefault("pool_timeout", timeouts.pool)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, timeouts, **kwargs)
    if make_url(url).get_backend_name() == "postgresql":
        return _postgresql_engine(url, timeouts, **kwargs)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_engine(url: str, timeouts: Timeouts, **kwargs: Any) -> Engine:
    engine = create_engine(url, connect_args={"timeout": timeouts.lock, "check_same_thread": False}, **kwargs)
    busy_ms = int(timeouts.lock * 1000)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()

    return engine


def postgresql_connect_args(url: str, timeouts: Timeouts) -> dict[str, Any]:
    """libpq parameters for ``timeouts``, on top of those the URL gives."""
    args: dict[str, Any] = {"connect_timeout": max(2, math.ceil(timeouts.connect)), "keepalives": 1,
                            "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
    options = str(make_url(url).query.get("options") or "")
    if timeouts.statement is not None:
        options = f"{options} -c statement_timeout={int(timeouts.statement * 1000)}".strip()
    if options:
        args["options"] = options
    if timeouts.answer is not None:
        args["tcp_user_timeout"] = int(timeouts.answer * 1000)
    return args


def _postgresql_engine(url: str, timeouts: Timeouts, **kwargs: Any) -> Engine:
    args = {**postgresql_connect_args(url, timeouts), **kwargs.pop("connect_args", {})}
    psycopg = make_url(url).get_driver_name() == "psycopg"
    engine = create_engine(url, pool_pre_ping=not psycopg, connect_args=args, **kwargs)
    if psycopg:
        _bound_answers(engine, url, timeouts)
        _ping_when_idle(engine)
        _begin_before_writing(engine)
    return engine


# A pooled connection idle for longer than this is pinged before it is handed out (a server restart
# or a dropped link is then noticed before a request's first query). One in use a moment ago is not:
# pinging every checkout was a seventh of a busy page's round trips to the server. A connection that
# broke in between fails its first statement, which answers 503 and makes the pool drop every
# connection as old as it (SQLAlchemy invalidates the pool on a disconnect).
PING_WHEN_IDLE_FOR = 2.0


def _ping_when_idle(engine: Engine) -> None:
    from sqlalchemy.exc import DisconnectionError

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["kiln_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("kiln_idle_since")
        if since is None or time.monotonic() - since < PING_WHEN_IDLE_FOR:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure of the ping: the pool opens another connection
            raise DisconnectionError(f"the pooled connection did not answer a ping: {_last_line(exc)}") from exc
        if not alive:
            raise DisconnectionError("the pooled connection did not answer a ping")


# Reading pages (``reads_first``): the connection runs in autocommit, so a page that only reads costs
# no BEGIN and no ROLLBACK (two of its round trips), and its session closes without talking to the
# server. The first statement that is not a plain read (a write, a lock, a savepoint) starts a real
# transaction first, so what a reading request writes is still atomic and committed or rolled back as
# usual. Under READ COMMITTED, each statement of a transaction sees its own snapshot anyway, so reads
# outside one see nothing different.
READS_FIRST = "kiln_reads_first"
_PLAIN_READ = re.compile(r"\s*(SELECT|SHOW)\b", re.IGNORECASE)
_LOCKS_OR_CALLS = re.compile(r"\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b|pg_advisory|set_config|nextval"
                             r"|setval", re.IGNORECASE)
# Set by a reading request (kiln.web.deps): holds True once a transaction was started for it.
began_writing: ContextVar[list[bool] | None] = ContextVar("kiln_began_writing", default=None)


def _begin_before_writing(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        if not conn.get_execution_options().get(READS_FIRST):
            return
        if _plain_read(statement):
            return
        dbapi = cursor.connection
        if dbapi.info.transaction_status == 0:  # IDLE: no transaction yet
            dbapi.execute("BEGIN")
            if (flag := began_writing.get()) is not None:
                flag[0] = True


@functools.lru_cache(maxsize=2048)
def _plain_read(statement: str) -> bool:
    """Whether a statement only reads (asked of every statement a reading page sends: its few
    distinct texts are looked at once each)."""
    return bool(_PLAIN_READ.match(statement)) and not _LOCKS_OR_CALLS.search(statement)


def reads_first(engine: Engine) -> Engine | None:
    """``engine`` for reading requests (see READS_FIRST), or None where it does not apply (SQLite,
    other drivers)."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return None
    return engine.execution_options(isolation_level="AUTOCOMMIT", **{READS_FIRST: True})


def _bound_answers(engine: Engine, url: str, timeouts: Timeouts) -> None:
    """Open psycopg connections that give up on a silent server (``bounded_classes``), ping idle ones
    within ``timeouts.trivial``, and report to the database's Availability whether connecting works."""
    import psycopg

    availability = availability_for(url)
    bounded = bounded_classes()[0] if timeouts.answer is not None else None

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, _record, cargs, cparams):
        try:
            # Any: a bounded connection has the attributes set below, psycopg's own does not
            connection: Any = (bounded or psycopg.Connection).connect(*cargs, **cparams)
        except psycopg.OperationalError as exc:
            availability.failed(f"cannot connect: {_last_line(exc)}")
            raise
        if bounded is not None:
            connection.answer_timeout, connection.availability = timeouts.answer, availability
        availability.succeeded()
        return connection

    if bounded is not None:
        ping = engine.dialect.do_ping

        def do_ping(dbapi_connection: Any) -> bool:
            # The pool's check of an idle connection is trivial: no need to wait a statement's time.
            saved, dbapi_connection.answer_timeout = dbapi_connection.answer_timeout, timeouts.trivial
            try:
                return ping(dbapi_connection)
            finally:
                dbapi_connection.answer_timeout = saved

        engine.dialect.do_ping = do_ping  # type: ignore[method-assign]


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


# Subclasses of psycopg's Connection and AsyncConnection, made when first asked for (psycopg is imported lazily).
BoundedClasses = tuple[type[Any] | None, type[Any] | None]
_BOUNDED: BoundedClasses | None = None


def bounded_classes() -> BoundedClasses:
    """psycopg Connection and AsyncConnection classes whose every wait for the server (queries,
    commit, rollback, the pool's ping) ends after their ``answer_timeout`` seconds: the connection is
    then closed (the pool drops it), the database marked unavailable, and OperationalError raised.
    psycopg's own wait takes a timeout from 3.2 on; before that, (None, None): the keepalives and
    tcp_user_timeout above are then the only bound."""
    global _BOUNDED
    if _BOUNDED is not None:
        return _BOUNDED
    import psycopg

    found: type[Exception] | None = getattr(psycopg.errors, "_WaitTimeout", None)
    if found is None or "interval" not in inspect.signature(psycopg.Connection.wait).parameters:
        _BOUNDED = (None, None)
        return _BOUNDED
    wait_timeout: type[Exception] = found

    class Bounded:
        answer_timeout: float | None = None
        availability: Any = None

        def _bounded(self, kwargs: dict[str, Any], args: tuple[Any, ...]) -> None:
            if len(args) < 2 and kwargs.get("timeout") is None:
                kwargs["timeout"] = self.answer_timeout

        def _silent(self) -> Exception:
            if self.availability is not None:
                self.availability.failed(f"no answer in {self.answer_timeout:g} s")
            return psycopg.OperationalError(f"the database did not answer within {self.answer_timeout:g} s")

        def _watching(self) -> bool:
            return self.availability is not None and self.availability.down

        def _answered(self, heard: list[bool]) -> None:
            if heard[0] and self.availability is not None and self.availability.down:
                self.availability.succeeded()  # the server answered (a rollback of nothing does not count)

    class AnswerBoundedConnection(Bounded, psycopg.Connection[Any]):
        def wait(self, gen, *args, **kwargs):
            self._bounded(kwargs, args)
            # Whether the server answered matters only while the database is thought down; otherwise
            # psycopg's generator goes to its wait as it is (a generator around it costs every query).
            heard = [False] if self._watching() else None
            try:
                result = super().wait(gen if heard is None else _noting_io(gen, heard), *args, **kwargs)
            except wait_timeout:
                self.close()  # mid-protocol: the connection cannot be used again
                raise self._silent() from None
            if heard is not None:
                self._answered(heard)
            return result

    class AnswerBoundedAsyncConnection(Bounded, psycopg.AsyncConnection[Any]):
        async def wait(self, gen, *args, **kwargs):
            self._bounded(kwargs, args)
            heard = [False] if self._watching() else None
            try:
                result = await super().wait(gen if heard is None else _noting_io(gen, heard), *args, **kwargs)
            except wait_timeout:
                await self.close()
                raise self._silent() from None
            if heard is not None:
                self._answered(heard)
            return result

    _BOUNDED = (AnswerBoundedConnection, AnswerBoundedAsyncConnection)
    return _BOUNDED


def _noting_io(gen: Any, heard: list[bool]) -> Any:
    """psycopg's protocol generator, passed through; ``heard[0]`` becomes True once it waited on the socket."""
    try:
        state = next(gen)
        while True:
            heard[0] = True
            state = gen.send((yield state))
    except StopIteration as stop:
        return stop.value


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    from kiln.db import changes

    factory = sessionmaker(engine, expire_on_commit=False)
    changes.install(factory)
    return factory


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with factory() as session, session.begin():
        yield session
