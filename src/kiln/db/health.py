"""Whether the database can be used right now, and how many requests may use it at once.

Two guards keep a slow, hung or absent database from freezing a web process:

- ``Availability``: when a connection cannot be opened, or an open one stops answering within its
  timeout (``kiln.db.session.Timeouts``), the database is marked unavailable. For the next
  ``cooldown`` seconds every request that needs it is answered 503 at once (``DatabaseUnavailable``,
  with Retry-After) instead of each waiting out the timeout on a thread; then one request tries it
  again, and the first answer from the server marks it available. Static files, published renditions
  and anything else that does not need the database are served all along.
- ``RequestSlots``: a web request takes a slot before it gets a database session, waiting for one
  on the event loop (holding neither a thread nor a connection), and gives it back when its session
  closes. There are no more slots than the pool can always serve (each request may need a second
  connection, for a throttle counter), so a thread that runs database work never waits for a pooled
  connection, and a request never holds a connection while it waits for a thread. A request that
  finds no slot within ``wait`` seconds is answered 503 (``DatabaseBusy``, with Retry-After), never 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from kiln.errors import KilnError

log = logging.getLogger(__name__)
COOLDOWN = 5.0


class DatabaseUnavailable(KilnError):
    code = "database_unavailable"
    status = 503

    def __init__(self, retry_after: int = int(COOLDOWN)) -> None:
        super().__init__("The site cannot reach its database right now, so nothing was read or changed. "
                         "Try again in a few seconds.")
        self.retry_after = max(1, retry_after)


class DatabaseBusy(KilnError):
    code = "busy"
    status = 503

    def __init__(self, retry_after: int = 2) -> None:
        super().__init__("The site is too busy to answer right now, so nothing was changed. "
                         "Try again in a few seconds.")
        self.retry_after = retry_after


class Availability:
    """Whether one database (one URL) answered lately; shared by every engine of the process on it."""

    def __init__(self, cooldown: float = COOLDOWN) -> None:
        self.cooldown = cooldown
        self.down = False
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise ``DatabaseUnavailable`` while the database is known to be down, except for one
        caller per ``cooldown`` seconds, who may try it."""
        if not self.down:
            return
        with self._lock:
            now = time.monotonic()
            if not self.down:
                return
            if now >= self._retry_at:
                self._retry_at = now + self.cooldown  # this caller probes; the others keep failing fast
                return
            wait = self._retry_at - now
        raise DatabaseUnavailable(math.ceil(wait))

    def failed(self, reason: str) -> None:
        with self._lock:
            if not self.down:
                log.warning("database unavailable (%s): answering 503 for %g s at a time", reason, self.cooldown)
            self.down, self._retry_at = True, time.monotonic() + self.cooldown

    def succeeded(self) -> None:
        if self.down:
            with self._lock:
                if self.down:
                    log.warning("database answers again")
                self.down = False


_known: dict[str, Availability] = {}
_known_lock = threading.Lock()


def availability_for(url: str) -> Availability:
    with _known_lock:
        return _known.setdefault(url, Availability())


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


class RequestSlots:
    """At most ``slots`` requests hold a database session at once; the others wait their turn, in
    order, for up to ``wait`` seconds. Usable from any event loop (tests run several)."""

    def __init__(self, slots: int, wait: float, availability: Availability) -> None:
        self.slots, self.wait, self.availability = slots, wait, availability
        self._free = slots
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self.slots - self._free

    async def acquire(self) -> None:
        self.availability.check()
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            loop = asyncio.get_running_loop()
            waiter = _Waiter(loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.wait):
                await waiter.future
        except BaseException as exc:  # timed out or cancelled: give back a slot handed over meanwhile
            with self._lock:
                granted = waiter.granted
                if not granted:
                    self._waiters.remove(waiter)
            if granted:
                self.release()
            if isinstance(exc, TimeoutError):
                raise DatabaseBusy() from None
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                try:
                    waiter.loop.call_soon_threadsafe(_wake, waiter.future)
                except RuntimeError:  # its event loop has closed: nobody is waiting there
                    continue
                waiter.granted = True
                return
            self._free += 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
