"""Full-text search: the index of media items (kiln.search.backends).

SQLite: an FTS5 table. PostgreSQL: a table of tsvectors with a GIN index, and the text search
configuration kiln_english (unaccent, then an English Snowball stemmer without stop words). The
index starts empty; ``kiln dbupdate`` is followed by ``kiln search reindex`` on a site with media
(the upgrade notes say so), and from then on every change keeps it current.

Revision ID: 0021
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE search_media USING fts5(title, tags, people, body, "
                   "tokenize = 'porter unicode61 remove_diacritics 2')")
        return
    from kiln.search.backends import ensure_configuration

    ensure_configuration(bind, "english")
    op.execute("CREATE TABLE search_media (media_id integer PRIMARY KEY REFERENCES media (id) ON DELETE CASCADE, "
               "document tsvector NOT NULL)")
    op.execute("CREATE INDEX ix_search_media_document ON search_media USING gin (document)")


def downgrade() -> None:
    op.execute("DROP TABLE search_media")
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS kiln_english")
        op.execute("DROP TEXT SEARCH DICTIONARY IF EXISTS kiln_english_stem")
