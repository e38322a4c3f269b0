"""Two search backends behind one small interface: SQLite FTS5 and PostgreSQL full-text search.

Each keeps one row per searchable media item (the item's id) with four weighted fields: title, tags,
people (the owner's names, and the titles of public collections it is in) and body (description, alt
text, the text extracted from a PDF or text file, comments). Each turns parsed terms
(``kiln.search.text``) into its own query language and ranks matches; the caller joins the matches to
the live media table, so who may see an item is always decided by the item's current state, never
by what the index holds.

* SQLite: an FTS5 table ``search_media`` (rowid = media id) with the ``porter`` stemmer (English), ranked
  by BM25 with the fields weighted 8, 4, 2, 1.
* PostgreSQL: a table ``search_media`` (media id, ``tsvector``) with a GIN index, built with the text
  search configuration ``kiln_LANGUAGE`` (``search.language``, default English): ``unaccent`` then a
  Snowball stemmer with no stop words (so "the pier" is a phrase on both backends), ranked by
  ``ts_rank`` with the fields weighted A to D.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, Connection, Double, Select, column, func, literal_column, table, text
from sqlalchemy.orm import Session

from kiln.search.text import Term

log = logging.getLogger(__name__)

# Languages PostgreSQL's Snowball stemmers know (search.language).
LANGUAGES = ("arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "finnish", "french",
             "german", "greek", "hindi", "hungarian", "indonesian", "irish", "italian", "lithuanian", "nepali",
             "norwegian", "portuguese", "romanian", "russian", "serbian", "spanish", "swedish", "tamil",
             "turkish", "yiddish")
BODY_CHARS = 200_000  # of a document's body: more adds nothing findable and slows indexing


@dataclass(frozen=True)
class Document:
    """One media item's text, each field already ``prepare``d."""

    title: str
    tags: str
    people: str
    body: str


class Backend(Protocol):
    def put(self, session: Session, media_id: int, document: Document) -> None: ...

    def remove(self, session: Session, media_ids: list[int]) -> None: ...

    def clear(self, session: Session) -> None: ...

    def matching(self, query: Select, terms: list[Term]) -> tuple[Select, ColumnElement[float]]:
        """``query`` (over media) narrowed to the items matching every term, and a score: higher is
        a better match."""
        ...

    def indexed_ids(self, session: Session) -> set[int]: ...


# SQLite FTS5 ---------------------------------------------------------------------------------------

_FTS = table("search_media", column("rowid"))
# Written once per published item: parsed once, not per call.
_FTS_DELETE = text("DELETE FROM search_media WHERE rowid = :id")
# FTS5 replaces a row with the same rowid (its old words leave the index): one statement per write.
_FTS_PUT = text("INSERT OR REPLACE INTO search_media (rowid, title, tags, people, body) "
                "VALUES (:id, :title, :tags, :people, :body)")


def _fts_quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def fts5_query(terms: list[Term]) -> str:
    parts = []
    for term in terms:
        quoted = _fts_quote(" ".join(term.words))
        parts.append(quoted + "*" if term.prefix else quoted)
    return " ".join(parts)


class SQLiteBackend:
    def put(self, session: Session, media_id: int, document: Document) -> None:
        session.execute(_FTS_PUT, {"id": media_id, "title": document.title, "tags": document.tags,
                                   "people": document.people, "body": document.body[:BODY_CHARS]})

    def remove(self, session: Session, media_ids: list[int]) -> None:
        for media_id in media_ids:
            session.execute(_FTS_DELETE, {"id": media_id})

    def clear(self, session: Session) -> None:
        session.execute(text("DELETE FROM search_media"))

    def matching(self, query: Select, terms: list[Term]) -> tuple[Select, ColumnElement[float]]:
        from kiln.media.models import MediaEntry

        fts: ColumnElement[str] = literal_column("search_media")
        narrowed = query.join(_FTS, _FTS.c.rowid == MediaEntry.id).where(fts.op("MATCH")(fts5_query(terms)))
        return narrowed, -func.bm25(fts, 8.0, 4.0, 2.0, 1.0)

    def indexed_ids(self, session: Session) -> set[int]:
        return set(session.scalars(text("SELECT rowid FROM search_media")))


# PostgreSQL ----------------------------------------------------------------------------------------

_PG = table("search_media", column("media_id"), column("document"))


def tsquery(terms: list[Term]) -> str:
    def word(w: str, prefix: bool = False) -> str:
        return "'" + w.replace("'", "''").replace("\\", "\\\\") + "'" + (":*" if prefix else "")

    parts = []
    for term in terms:
        if len(term.words) == 1:
            parts.append(word(term.words[0], term.prefix))
        else:
            parts.append("(" + " <-> ".join(word(w) for w in term.words) + ")")
    return " & ".join(parts)


def configuration_name(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"search.language must be one of {', '.join(LANGUAGES)}")
    return f"kiln_{language}"


def ensure_configuration(connection: Connection, language: str) -> str:
    """Create the text search configuration for ``language`` if this database lacks it (the
    migration makes the English one; another language is made by ``kiln search reindex``)."""
    name = configuration_name(language)
    if connection.scalar(text("SELECT 1 FROM pg_ts_config WHERE cfgname = :n"), {"n": name}):
        return name
    connection.execute(text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    connection.execute(text(f"CREATE TEXT SEARCH DICTIONARY {name}_stem (TEMPLATE = snowball, Language = {language})"))
    connection.execute(text(f"CREATE TEXT SEARCH CONFIGURATION {name} (COPY = simple)"))
    connection.execute(text(f"ALTER TEXT SEARCH CONFIGURATION {name} ALTER MAPPING FOR asciiword, asciihword, "
                            f"hword_asciipart, word, hword, hword_part WITH unaccent, {name}_stem"))
    return name


class PostgreSQLBackend:
    def __init__(self, language: str) -> None:
        self.configuration = configuration_name(language)

    def put(self, session: Session, media_id: int, document: Document) -> None:
        session.execute(text(
            "INSERT INTO search_media (media_id, document) VALUES (:id, "
            "setweight(to_tsvector(CAST(:cfg AS regconfig), :title), 'A') || "
            "setweight(to_tsvector(CAST(:cfg AS regconfig), :tags), 'B') || "
            "setweight(to_tsvector(CAST(:cfg AS regconfig), :people), 'C') || "
            "setweight(to_tsvector(CAST(:cfg AS regconfig), :body), 'D')) "
            "ON CONFLICT (media_id) DO UPDATE SET document = EXCLUDED.document"),
            {"id": media_id, "cfg": self.configuration, "title": document.title, "tags": document.tags,
             "people": document.people, "body": document.body[:BODY_CHARS]})

    def remove(self, session: Session, media_ids: list[int]) -> None:
        if media_ids:
            session.execute(text("DELETE FROM search_media WHERE media_id = ANY(:ids)"), {"ids": media_ids})

    def clear(self, session: Session) -> None:
        session.execute(text("DELETE FROM search_media"))

    def matching(self, query: Select, terms: list[Term]) -> tuple[Select, ColumnElement[float]]:
        from kiln.media.models import MediaEntry

        parsed = func.to_tsquery(literal_column(f"'{self.configuration}'::regconfig"), tsquery(terms))
        narrowed = query.join(_PG, _PG.c.media_id == MediaEntry.id).where(_PG.c.document.op("@@")(parsed))
        # float8: the score goes into page cursors and must compare equal when it comes back
        return narrowed, func.ts_rank(_PG.c.document, parsed).cast(Double())

    def indexed_ids(self, session: Session) -> set[int]:
        return set(session.scalars(text("SELECT media_id FROM search_media")))


def backend_for(session_or_dialect: str, language: str = "english") -> Backend:
    if session_or_dialect == "postgresql":
        return PostgreSQLBackend(language)
    if session_or_dialect == "sqlite":
        return SQLiteBackend()
    raise ValueError(f"search needs SQLite or PostgreSQL, not {session_or_dialect}")
