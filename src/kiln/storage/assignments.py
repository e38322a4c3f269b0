"""Reading and changing which backend holds each store (the `store_assignments` table)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kiln.storage import Assignment
from kiln.storage.models import StoreAssignment


def loader(sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    def load() -> dict[str, Assignment]:
        with sessions() as session:
            return {row.store: Assignment(row.backend, row.migrating_to)
                    for row in session.scalars(select(StoreAssignment))}

    return load


def assign(session: Session, store: str, backend: str, migrating_to: str | None) -> None:
    row = session.get(StoreAssignment, store)
    if row is None:
        session.add(StoreAssignment(store=store, backend=backend, migrating_to=migrating_to))
    else:
        row.backend, row.migrating_to = backend, migrating_to
