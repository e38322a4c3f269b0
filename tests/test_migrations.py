"""The models and the migrations describe the same schema."""

from __future__ import annotations

import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from kiln.db.base import import_all_models


@pytest.mark.db
def test_models_and_migrations_do_not_drift(db_url):
    engine = create_engine(db_url)
    with engine.connect() as conn:
        # The search index is not a model (kiln.search.backends: an FTS5 table, or tsvectors).
        opts = {"compare_type": True,
                "include_name": lambda name, kind, _parent: not (kind == "table" and name.startswith("search_media"))}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), import_all_models().metadata)
    engine.dispose()
    assert diff == [], f"models differ from migrations; run alembic revision --autogenerate: {diff}"


def test_sqlite_tables_whose_ids_appear_in_urls_never_reuse_an_id(db_url):
    """What the models declare (NEVER_REUSE_IDS) is what the migrations built."""
    engine = create_engine(db_url)
    if engine.dialect.name != "sqlite":
        engine.dispose()
        return  # PostgreSQL's sequences never go back; nothing to compare
    declared = {t.name for t in import_all_models().metadata.tables.values()
                if t.dialect_options["sqlite"].get("autoincrement")}
    assert {"media", "users", "api_tokens"} <= declared
    with engine.connect() as conn:
        built = {name for name, sql in conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type='table'")
                 if "AUTOINCREMENT" in sql}
    engine.dispose()
    assert built == declared


def test_rebuilding_tables_keeps_every_row_of_an_existing_site(tmp_path):
    """0007 rebuilds users, tokens, tags and media on SQLite: no cascade may empty the tables that
    point at them, and ids continue after the largest one."""
    from alembic import command

    from kiln.db.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0006")
    engine = create_engine(url)
    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO users (id, username, email, password_hash, display_name, bio, "
                             f"default_license, created, banned) VALUES (1, 'ann', 'a@x', 'h', '', '', '', '{now}', 0)")
        for media_id in (1, 2):
            conn.exec_driver_sql(
                "INSERT INTO media (id, owner_id, kind, state, title, description, license, show_exif, created, "
                "updated, original_key, original_store, original_name, mime_type, size_bytes, sha256, visibility, "
                f"key_token) VALUES ({media_id}, 1, 'image', 'processed', 't', '', '', 0, '{now}', '{now}', '[]', "
                "'local', 'a.jpg', 'image/jpeg', 1, 'x', 'public', 'k')")
            conn.exec_driver_sql("INSERT INTO renditions (media_id, name, key, mime_type, size_bytes, "
                                 "spec_fingerprint, created) "
                                 f"VALUES ({media_id}, 'thumbnail', '[]', 'image/jpeg', 1, 'f', '{now}')")
    command.upgrade(alembic_config(url), "head")
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM renditions").scalar() == 2
        conn.exec_driver_sql("DELETE FROM media WHERE id = 2")
        conn.exec_driver_sql(
            "INSERT INTO media (owner_id, kind, state, title, description, license, show_exif, created, updated, "
            "original_key, original_store, original_name, mime_type, size_bytes, sha256, visibility, key_token) "
            f"VALUES (1, 'image', 'queued', 'n', '', '', 0, '{now}', '{now}', '[]', 'local', 'b.jpg', 'image/jpeg', "
            "1, 'y', 'public', 'k')")
        assert conn.exec_driver_sql("SELECT max(id) FROM media").scalar() == 3
    engine.dispose()


@pytest.mark.db
def test_every_index_the_models_declare_is_built_expressions_too(db_url):
    """Alembic's comparison skips indexes on expressions; a table rebuilt by a later migration (SQLite)
    must not lose one either."""
    from sqlalchemy import inspect

    engine = create_engine(db_url)
    declared = {index.name for table in import_all_models().metadata.tables.values() for index in table.indexes
                if not table.name.startswith("search_media")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Skipped unsupported reflection of expression-based index"
        inspector = inspect(engine)
        built = {index["name"] for name in inspector.get_table_names() for index in inspector.get_indexes(name)}
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            built |= {name for (name,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='index'")}
    engine.dispose()
    assert "ix_users_lower_username" in declared
    assert declared - built == set()
