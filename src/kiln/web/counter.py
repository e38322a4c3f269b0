"""The site's change counter (``kiln.db.changes``) as the page cache reads it: never blocking the event
loop, never from the app's pool (which requests hold), bounded in time, and once for many requests.

Requests that arrive while a read runs share the next one, which starts when it ends: fifty requests
cost two reads, and none of them can see a counter read before it arrived. On PostgreSQL the read runs
on the event loop itself over an asynchronous connection of its own (a thread would wait for the
interpreter lock behind the loop at every step, which under load adds tens of milliseconds); on SQLite
it runs on a thread of its own. A read that fails or takes too long gives None: the request then goes
to the app uncached, which answers 503 if it needs the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Protocol

import anyio
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import StaticPool

from kiln.db import changes
from kiln.db.health import Availability, availability_for
from kiln.db.session import Timeouts, bounded_classes, make_engine, postgresql_connect_args

log = logging.getLogger(__name__)
Counted = tuple[int, dt.datetime]


class _Source(Protocol):
    async def read(self) -> Counted: ...


class CounterReads:
    def __init__(self, db_url: str, timeouts: Timeouts) -> None:
        self.availability = availability_for(db_url)
        # Each read has its own timeouts, which end it sooner; this bounds a request's wait whatever happens.
        self.wait = timeouts.connect + (timeouts.answer or timeouts.pool) + 1
        self._source: _Source = (_OnTheLoop(db_url, timeouts, self.availability) if _async_postgresql(db_url)
                                 else _OnAThread(db_url, timeouts))
        self._next: asyncio.Future[Counted] | None = None
        self._runner: asyncio.Task[None] | None = None

    async def read(self) -> Counted | None:
        """The generation and when it moved, or None when the database is not answering."""
        if self.availability.down:
            return None
        try:
            async with asyncio.timeout(self.wait):
                return await asyncio.shield(self._join())
        except Exception as exc:  # a database that does not answer: serve uncached
            log.warning("change counter not read, serving uncached: %s", exc)
            return None

    def _join(self) -> asyncio.Future[Counted]:
        loop = asyncio.get_running_loop()
        if self._next is None or self._next.get_loop() is not loop:
            self._next = loop.create_future()
            self._next.add_done_callback(_retrieved)
            if self._runner is None or self._runner.done() or self._runner.get_loop() is not loop:
                self._runner = loop.create_task(self._run())
        return self._next

    async def _run(self) -> None:
        while self._next is not None:
            future, self._next = self._next, None  # who comes from now on waits for the next read
            try:
                result = await self._source.read()
            except Exception as exc:  # handed to every waiter
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)


def _retrieved(future: asyncio.Future[Counted]) -> None:
    if not future.cancelled():
        future.exception()  # read here, so a failure nobody waited for is not reported as unhandled


def _async_postgresql(db_url: str) -> bool:
    url = make_url(db_url)
    return url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg"


class _OnAThread:
    """``changes.CounterReader`` (one raw connection of its own) on a thread of its own."""

    def __init__(self, db_url: str, timeouts: Timeouts) -> None:
        self.reader = changes.CounterReader(make_engine(db_url, timeouts, poolclass=StaticPool))
        self._limiter = anyio.CapacityLimiter(1)

    async def read(self) -> Counted:
        return await anyio.to_thread.run_sync(self.reader.read, limiter=self._limiter)


class _OnTheLoop:
    """One psycopg AsyncConnection, in autocommit (each read sees every commit before it), with the
    same libpq parameters and timeouts as the app's connections; its answers are awaited at most
    ``timeouts.trivial`` seconds (a wait psycopg bounds itself: cancelling it would make psycopg send
    the server a cancel request, which a hung server would not answer either)."""

    QUERY = "SELECT generation, changed_at FROM site_changes WHERE id = 1"

    def __init__(self, db_url: str, timeouts: Timeouts, availability: Availability) -> None:
        engine = create_engine(db_url)  # only for the URL's parameters, as SQLAlchemy would pass them
        _args, params = engine.dialect.create_connect_args(engine.url)
        engine.dispose()
        self.params: dict[str, Any] = {**params, **postgresql_connect_args(db_url, timeouts)}
        self.timeouts, self.availability = timeouts, availability
        self._connection: Any = None

    async def read(self) -> Counted:

        try:
            connection = self._connection
            if connection is None or connection.closed:
                connection = self._connection = await self._connect()
            cursor = await connection.execute(self.QUERY, prepare=True)
            row = await cursor.fetchone()
        except BaseException:  # the connection may be mid-protocol: never reuse it
            await self._drop()
            raise
        if row is None:
            return 0, changes.EPOCH
        return int(row[0]), row[1].astimezone(dt.UTC)

    async def _connect(self) -> Any:
        import psycopg

        bounded = bounded_classes()[1] if self.timeouts.trivial is not None else None
        try:
            # Any: a bounded connection has the attributes set below, psycopg's own does not
            connection: Any = await (bounded or psycopg.AsyncConnection).connect(**self.params, autocommit=True)
        except psycopg.OperationalError as exc:
            self.availability.failed(f"change counter cannot connect: {exc}".strip().splitlines()[-1])
            raise
        if bounded is not None:
            connection.answer_timeout, connection.availability = self.timeouts.trivial, self.availability
        return connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            try:
                await connection.close()
            except Exception as exc:  # already broken
                log.debug("change counter connection not closed cleanly: %s", exc)
