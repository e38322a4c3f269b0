"""The models and the migrations describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from kiln.db.base import import_all_models


def test_models_and_migrations_do_not_drift(db_url):
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                import_all_models().metadata)
    engine.dispose()
    assert diff == [], f"models differ from migrations; run alembic revision --autogenerate: {diff}"
