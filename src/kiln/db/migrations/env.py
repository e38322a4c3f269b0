"""Alembic environment: runs migrations against the URL set by kiln.db.migrate."""

from __future__ import annotations

import warnings

from alembic import context
from sqlalchemy import pool
from sqlalchemy.exc import SAWarning

from kiln.db.base import import_all_models
from kiln.db.session import MAINTENANCE, make_engine

target_metadata = import_all_models().metadata
# SQLite's table rebuilds (batch mode) read the tables they touch and those they refer to; SQLite cannot
# describe an index on an expression (users' lower(username)), and SQLAlchemy says so on every run. The
# migration that rebuilds users itself makes that index again (0025).
warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index",
                        category=SAWarning)
config = context.config


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "", MAINTENANCE, poolclass=pool.NullPool)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch operation rebuilds a table (copy, drop the old one, rename): with foreign keys
            # on, dropping the old table would cascade deletes into every table that points at it.
            # The pragma only takes effect outside a transaction, so it is set before one begins.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows pointing at nothing: {broken[:5]}")
    engine.dispose()


if context.is_offline_mode():  # pragma: no cover
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
