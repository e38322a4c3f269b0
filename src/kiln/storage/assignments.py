"""Reading and changing which backend holds each store (the `store_assignments` table)."""

from __future__ import annotations

import os
import threading

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kiln.db.session import Timeouts, make_engine
from kiln.storage import Assignment
from kiln.storage.models import StoreAssignment


class Loader:
    """Reads the assignments (``Stores`` calls it, one read at a time) on a connection of its own,
    never one of the pool's: a request that holds a pooled connection must not need a second one, and
    a full pool must not stop the read. The connection is opened on first use in each process."""

    def __init__(self, url: str, timeouts: Timeouts) -> None:
        self.url, self.timeouts = url, timeouts
        self._engine: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, Assignment]:
        with Session(self._engine_here()) as session:
            return {row.store: Assignment(row.backend, row.migrating_to)
                    for row in session.scalars(select(StoreAssignment))}

    def _engine_here(self) -> Engine:
        with self._lock:
            if self._engine is None or self._pid != os.getpid():
                if self._engine is not None:  # made before a fork: the parent's connection stays the parent's
                    self._engine.dispose(close=False)
                self._engine = make_engine(self.url, self.timeouts, pool_size=1, max_overflow=0)
                self._pid = os.getpid()
            return self._engine

    def close(self) -> None:
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                self._engine.dispose()
            self._engine = None


def loader(url: str, timeouts: Timeouts) -> Loader:
    return Loader(url, timeouts)


def assign(session: Session, store: str, backend: str, migrating_to: str | None) -> None:
    row = session.get(StoreAssignment, store)
    if row is None:
        session.add(StoreAssignment(store=store, backend=backend, migrating_to=migrating_to))
    else:
        row.backend, row.migrating_to = backend, migrating_to
