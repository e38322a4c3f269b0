"""Which backend holds each store right now. The database is the truth, so a migration can switch
a store for every running process at once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, utcnow


class StoreAssignment(Base):
    __tablename__ = "store_assignments"

    store: Mapped[str] = mapped_column(String(20), primary_key=True)
    backend: Mapped[str] = mapped_column(String(50))
    # While set, every write goes to both backends (a migration is copying to this one).
    migrating_to: Mapped[str | None] = mapped_column(String(50))
    updated: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
