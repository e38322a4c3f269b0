"""Query plans of Kiln's hot queries on PostgreSQL with a million media rows.

    python bench/bench_plans.py [--out bench/results/plans.json] [--media 1000000] [--users 20000]
                                [--server-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
                                [--runs 3] [--no-search] [--keep] [--contention-seconds 8]

A fresh database ``kiln_plans_<random>`` is made on the server, migrated with Kiln's own migrations,
filled in bulk on the server side (``INSERT ... SELECT ... generate_series``, one statement per
table), vacuumed and analysed, and dropped at the end (``--keep`` leaves it, and says its name).

The site (the defaults): 20,000 people (``user00001`` holds a tenth of everything, the rest a
power-law share), 2,000 tags (``landscape`` on a quarter of the items, the others power-law, the
last on ~200), one million media items over three years (85 % images, then video, audio, PDF, 3D,
text; 90 % public, 5 % unlisted, 5 % private; 0.1 % removed by moderators; 0.5 % failed; the newest
3,000 still queued or processing), each processed item with the renditions and the processing
ledger rows its kind's steps make (names, positions and fingerprints taken from the kinds
themselves), so every processed item has all its steps ``done``; the unfinished ones have ``queued``,
``running`` (leases held by six worker hosts, a few lapsed) and ``pending`` (retry) steps. The outbox
holds a ``search_index`` effect per published item (done rows are never deleted) and the mails of
sign-ups, a few still waiting. The search index holds one row per searchable item, its document built
in SQL with the same text search configuration and weights as ``kiln.search.backends`` (the words are
those kiln.search.text would give: lower-case letters and digits).

Each hot path is then run through Kiln's own code (the functions the pages, the worker, the sweeper and
the admin panel call) inside a transaction that is rolled back, and every statement it sends is caught
at the driver (``before_cursor_execute``) with its parameters and the Kiln function that sent it. Each
distinct statement is explained ``--runs`` times with ``EXPLAIN (ANALYZE, BUFFERS)`` (writes inside a
transaction rolled back afterwards, so every run sees the same rows); the plan of the last run and the
median execution time are kept. The SQL in the results is the statement with its parameters put in by
psycopg (``ClientCursor.mogrify``): what the server was asked, not a rewrite.

Then two things that are not Kiln as it is, to say what a fix would buy: ``what_if``, the slow ones
tried again with an index made inside a transaction that is rolled back, or written another way
(compiled by SQLAlchemy for PostgreSQL with literal parameters); and ``change_counter_contention``,
commits per second of a small two-UPDATE transaction from pgbench with 1 and 8 clients, without the
change counter's bump, with Kiln's bump (the statement caught above) on its one row, and with the same
bump on one of 16 rows (``--contention-seconds 0`` skips it; needs pgbench, Debian's postgresql-client).

The server is the machine's own, with its settings as they are (recorded in the results).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KILN_SRC = str(ROOT / "src" / "kiln")

PER_KIND = (  # (kind, share of items in percent, title word)
    ("image", 85, "Photograph"), ("video", 8, "Clip"), ("audio", 3, "Recording"),
    ("pdf", 2, "Document"), ("model3d", 1, "Model"), ("text", 1, "Note"),
)
WORDS = ("harbour", "mountain", "market", "forest", "river", "street", "portrait", "sunset")
OPTIONAL_RENDITIONS = {"animated"}  # made only for some inputs (an animated GIF)
PDF_PAGES = 3  # page renditions kept per PDF (the kind makes up to 50)
WORKER_HOSTS = 6


# The site -----------------------------------------------------------------------------------------

def kind_tables(settings: Any) -> tuple[list[tuple[str, str, int, str]], list[tuple[str, str]]]:
    """(kind, step, position, fingerprint) and (kind, rendition) rows, from the kinds' own steps."""
    from kiln.mediatypes import kinds

    steps, renditions = [], []
    for name, kind in kinds().items():
        for position, step in enumerate(kind.steps(settings)):
            steps.append((name, step.name, position, step.fingerprint()))
            for spec in step.renditions:
                page = re.fullmatch(r"page-(\d+)", spec.name)
                if spec.name in OPTIONAL_RENDITIONS or (page and int(page.group(1)) > PDF_PAGES):
                    continue
                renditions.append((name, spec.name))
    return steps, renditions


def _values(rows: list[tuple[Any, ...]]) -> str:
    def lit(value: Any) -> str:
        return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"

    return ", ".join("(" + ", ".join(lit(v) for v in row) + ")" for row in rows)


def build_site(url: str, settings: Any, media: int, users: int, tags: int, search: bool) -> dict[str, Any]:
    """Fill the migrated database on the server side; return the timings and the facts."""
    from sqlalchemy import create_engine

    from kiln.media.licenses import LICENSES

    steps, renditions = kind_tables(settings)
    kinds_case = "CASE " + " ".join(
        f"WHEN m.id % 100 < {sum(share for _, share, _ in PER_KIND[:i + 1])} THEN '{name}'"
        for i, (name, _, _) in enumerate(PER_KIND[:-1])) + f" ELSE '{PER_KIND[-1][0]}' END"
    titles = "CASE kind " + " ".join(f"WHEN '{name}' THEN '{word}'" for name, _, word in PER_KIND) + " END"
    licenses = "(ARRAY[" + ", ".join("'" + lic.url + "'" for lic in LICENSES) + "])"
    words = "(ARRAY[" + ", ".join(f"'{w}'" for w in WORDS) + "])"
    unfinished = min(3000, media // 100)
    queued_from = media - unfinished * 2 // 3 + 1  # the newest two thirds of the unfinished: queued
    processing_from = media - unfinished + 1  # the third before them: processing
    statements: list[tuple[str, str]] = [
        ("users", f"""
            INSERT INTO users (id, username, email, password_hash, display_name, bio, default_license, created,
                               banned, last_seen)
            SELECT i, 'user' || lpad(i::text, 5, '0'), 'user' || i || '@example.org', '!', 'Person ' || i, '', '',
                   now() - interval '4 years' + i * interval '90 minutes', i % 500 = 7,
                   now() - random() * interval '30 days'
            FROM generate_series(1, {users}) AS i"""),
        ("user_privileges", """
            INSERT INTO user_privileges (user_id, name)
            SELECT u.id, p.name FROM users u
            CROSS JOIN (VALUES ('uploader'), ('commenter'), ('reporter'), ('active')) AS p(name)"""),
        ("tags", f"""
            INSERT INTO tags (id, slug, name)
            SELECT i, CASE i WHEN 1 THEN 'landscape' ELSE 'tag' || lpad(i::text, 4, '0') END,
                   CASE i WHEN 1 THEN 'Landscape' ELSE 'Topic ' || i END
            FROM generate_series(1, {tags}) AS i"""),
        # Ids in upload order over three years; published a few minutes after the upload. The owner:
        # user 1 for a tenth, otherwise a power law (a few people hold most, most people a few).
        ("media", f"""
            INSERT INTO media (id, owner_id, kind, state, title, description, license, show_exif, created, updated,
                               published, original_key, original_store, original_name, mime_type, size_bytes,
                               sha256, width, height, info, visibility, key_token, alt_text, favourite_count,
                               removed, removed_reason, error_code, error_message)
            SELECT m.id, m.owner_id, m.kind, m.state, {titles} || ' ' || m.id,
                   CASE WHEN m.id % 3 = 0 THEN ''
                        ELSE 'A view of the ' || {words}[1 + m.id % 8] || ', number ' || m.id || '.' END,
                   {licenses}[1 + m.id % {len(LICENSES)}], true, m.created, m.created,
                   CASE WHEN m.state = 'processed' THEN m.created + random() * interval '10 minutes' END,
                   json_build_array('entries', m.id::text, 'original'), 'originals', 'IMG_' || m.id || '.jpg',
                   'image/jpeg', 2000000 + (m.id::bigint * 7919) % 6000000, md5(m.id::text) || md5((m.id + 1)::text),
                   6000, 4000,
                   CASE WHEN m.id % 5 = 0 THEN '{{}}'::json
                        ELSE json_build_object('blurhash', 'LEHV6nWB2yk8pyo0adR*.7kCMdnj') END,
                   CASE m.id % 20 WHEN 3 THEN 'unlisted' WHEN 4 THEN 'private' ELSE 'public' END,
                   md5('token' || m.id), '', floor(power(random(), 8) * 60)::int,
                   CASE WHEN m.id % 1000 = 500 THEN now() - random() * interval '5 days' END,
                   CASE WHEN m.id % 1000 = 500 THEN 'Spam' ELSE '' END,
                   CASE WHEN m.state = 'failed' THEN 'decode_error' END,
                   CASE WHEN m.state = 'failed' THEN 'The file could not be read.' END
            FROM (
                SELECT s.id,
                       CASE WHEN random() < 0.10 THEN 1 ELSE 1 + floor(power(random(), 3) * {users})::int END
                           AS owner_id,
                       {kinds_case.replace('m.id', 's.id')} AS kind,
                       CASE WHEN s.id >= {queued_from} THEN 'queued' WHEN s.id >= {processing_from} THEN 'processing'
                            WHEN s.id % 200 = 7 THEN 'failed' ELSE 'processed' END AS state,
                       CASE WHEN s.id >= {processing_from}
                            THEN now() - ({media} - s.id) * interval '60 milliseconds'
                            ELSE now() - interval '3 years' + s.id * (interval '3 years' / {media}) END AS created
                FROM generate_series(1, {media}) AS s(id)
            ) AS m"""),
        ("renditions", f"""
            INSERT INTO renditions (media_id, name, key, mime_type, width, height, size_bytes, spec_fingerprint,
                                    created, spec)
            SELECT m.id, r.name, json_build_array('entries', m.id::text, m.key_token, r.name || '-0123456789.jpg'),
                   'image/jpeg', 1280, 853, 40000 + (m.id * 31) % 200000, md5(r.name), m.published,
                   '{{"quality": 82}}'::json
            FROM media m JOIN (VALUES {_values(renditions)}) AS r(kind, name) ON r.kind = m.kind
            WHERE m.state = 'processed'"""),
        # Every processed item: all its steps done. Failed: the last step failed for good. Processing:
        # the first step running (a few leases lapsed), one in ten retrying (pending), the rest queued.
        ("processing_steps", f"""
            INSERT INTO processing_steps (media_id, name, position, fingerprint, state, reason, attempts, progress,
                                          enqueued, next_run, lease_owner, lease_expires, started, finished,
                                          created, error_class, error_code, error_message)
            SELECT x.id, x.name, x.position, x.fingerprint, x.st, 'new',
                   CASE WHEN x.st IN ('done', 'running') THEN 1 WHEN x.st IN ('failed') THEN 3
                        WHEN x.st = 'pending' THEN 1 ELSE 0 END,
                   CASE WHEN x.st = 'done' THEN 1.0 WHEN x.st = 'running' THEN 0.4 ELSE 0.0 END,
                   x.created, CASE WHEN x.st = 'pending' THEN now() + (x.id % 7 - 3) * interval '20 seconds' END,
                   CASE WHEN x.st = 'running' THEN 'worker-' || (x.id % {WORKER_HOSTS}) || ':' || (1000 + x.id % 2) END,
                   CASE WHEN x.st = 'running' THEN now() + CASE WHEN x.id % 97 = 0 THEN interval '-30 seconds'
                                                              ELSE interval '50 seconds' END END,
                   CASE WHEN x.st IN ('done', 'failed', 'running') THEN x.created + interval '1 second' END,
                   CASE WHEN x.st IN ('done', 'failed') THEN coalesce(x.published, x.created + interval '9 seconds')
                        END,
                   x.created,
                   CASE WHEN x.st IN ('failed', 'pending') THEN 'DecodeError' END,
                   CASE WHEN x.st IN ('failed', 'pending') THEN 'decode_error' END,
                   CASE WHEN x.st IN ('failed', 'pending') THEN 'The file could not be read.' END
            FROM (
                SELECT m.id, m.created, m.published, s.name, s.position, s.fingerprint,
                       CASE WHEN m.state = 'processed' THEN 'done'
                            WHEN m.state = 'failed' THEN CASE WHEN s.position = s.last THEN 'failed' ELSE 'done' END
                            WHEN m.state = 'queued' THEN 'queued'
                            WHEN s.position = 0 THEN CASE WHEN m.id % 10 = 0 THEN 'pending' ELSE 'running' END
                            ELSE 'queued' END AS st
                FROM media m
                JOIN (SELECT v.*, max(v.position) OVER (PARTITION BY v.kind) AS last
                      FROM (VALUES {_values(steps)}) AS v(kind, name, position, fingerprint)) AS s ON s.kind = m.kind
            ) AS x"""),
        # A quarter of everything is a landscape; 0-3 more tags each, most often the first ones.
        ("media_tags", f"""
            INSERT INTO media_tags (media_id, tag_id)
            SELECT DISTINCT m.id, t.tag_id FROM media m
            CROSS JOIN LATERAL (
                SELECT 1 AS tag_id WHERE m.id % 4 = 0
                UNION ALL
                SELECT 2 + floor(power(random(), 4) * {tags - 1})::int FROM generate_series(1, m.id % 4)
            ) AS t"""),
        # One search_index effect per published item (done rows stay), and the mails of sign-ups.
        ("outbox", f"""
            INSERT INTO outbox (kind, payload, summary, state, attempts, enqueued, started, finished, created)
            SELECT 'search_index', json_build_object('media', json_build_array(m.id)), 'search index: 1 media',
                   'done', 1, m.published, m.published, m.published, m.published
            FROM media m WHERE m.state = 'processed' ORDER BY m.published;
            INSERT INTO outbox (kind, payload, summary, state, attempts, enqueued, next_run, lease_owner,
                                lease_expires, started, finished, created, error_code, error_message)
            SELECT 'mail', json_build_object('to', u.email, 'subject', 'Confirm your address'),
                   'Confirm your address → ' || u.email,
                   CASE WHEN u.id > {users} - 40 THEN 'queued' WHEN u.id > {users} - 50 THEN 'pending'
                        WHEN u.id % 1000 = 3 THEN 'failed' WHEN u.id = {users} - 50 THEN 'running' ELSE 'done' END,
                   CASE WHEN u.id > {users} - 50 OR u.id % 1000 = 3 THEN 2 ELSE 1 END,
                   u.created, CASE WHEN u.id > {users} - 50 AND u.id <= {users} - 40 THEN now() END,
                   CASE WHEN u.id = {users} - 50 THEN 'worker-1:1000' END,
                   CASE WHEN u.id = {users} - 50 THEN now() + interval '100 seconds' END,
                   u.created, CASE WHEN u.id <= {users} - 50 THEN u.created END, u.created,
                   CASE WHEN u.id % 1000 = 3 THEN 'unreachable' END,
                   CASE WHEN u.id % 1000 = 3 THEN 'The mail server could not be reached.' END
            FROM users u"""),
        ("worker_hosts", f"""
            INSERT INTO worker_hosts (id, host, started, last_beat, lanes, processes, running, broker, stores)
            SELECT 'worker-' || h || ':' || (1000 + p), 'worker-' || h, now() - interval '2 days',
                   now() - interval '4 seconds', '["image.new", "video.new", "image.retry"]'::json, 2, 2,
                   'redis://services:6379/0', '{{"queue": "s3", "originals": "s3", "public": "s3"}}'::json
            FROM generate_series(0, {WORKER_HOSTS - 1}) AS h, generate_series(0, 1) AS p"""),
        ("site_changes", "INSERT INTO site_changes (id, generation, changed_at) VALUES (1, 4242, now())"),
        ("locks", "INSERT INTO locks (name, owner, expires) VALUES ('sweeper', 'worker-0:999', now() + "
                  "interval '40 seconds')"),
    ]
    if search:
        # The document of every searchable item (published, not removed), built as kiln.search.backends
        # builds it: title A, tags B, the owner's names C, the description D.
        statements.append(("search_media", """
            INSERT INTO search_media (media_id, document)
            SELECT m.id,
                   setweight(to_tsvector('kiln_english', lower(m.title)), 'A') ||
                   setweight(to_tsvector('kiln_english', coalesce(t.names, '')), 'B') ||
                   setweight(to_tsvector('kiln_english', lower(u.username || ' ' || u.display_name)), 'C') ||
                   setweight(to_tsvector('kiln_english', lower(regexp_replace(m.description, '[^[:alnum:]]+', ' ',
                                                                              'g'))), 'D')
            FROM media m JOIN users u ON u.id = m.owner_id
            LEFT JOIN (SELECT mt.media_id, string_agg(lower(tg.name), ' ') AS names
                       FROM media_tags mt JOIN tags tg ON tg.id = mt.tag_id GROUP BY mt.media_id) AS t
                   ON t.media_id = m.id
            WHERE m.state = 'processed' AND m.removed IS NULL"""))
    statements.append(("sequences", "; ".join(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        for table in ("users", "user_privileges", "tags", "media", "renditions", "processing_steps", "outbox"))))

    analysed = {"users", "tags", "media", "media_tags"}
    engine = create_engine(url)
    timings: dict[str, float] = {}
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection  # psycopg's own: no parameters, '%' is an operator
            driver.execute("SET synchronous_commit = off")
            driver.execute("SELECT setseed(0.42)")
            driver.commit()
            for name, sql in statements:
                started = time.perf_counter()
                for part in sql.split(";\n"):
                    driver.execute(part)
                driver.commit()
                if name in analysed:  # statistics for the statements that read this table next
                    driver.execute(f"ANALYZE {name}")
                    driver.commit()
                timings[name] = round(time.perf_counter() - started, 1)
                print(f"  {name}: {timings[name]} s", flush=True)
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)")  # what autovacuum leaves a settled site with
        timings["vacuum_analyze"] = round(time.perf_counter() - started, 1)
        print(f"  vacuum + analyze: {timings['vacuum_analyze']} s", flush=True)
        with engine.connect() as conn:
            counts = {table: conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
                      for table in ("users", "tags", "media", "media_tags", "renditions", "processing_steps",
                                    "outbox", *(("search_media",) if search else ()))}
            states = dict(conn.exec_driver_sql("SELECT state, count(*) FROM media GROUP BY state").all())
            step_states = dict(conn.exec_driver_sql(
                "SELECT state, count(*) FROM processing_steps GROUP BY state").all())
            size = conn.exec_driver_sql("SELECT pg_size_pretty(pg_database_size(current_database()))").scalar()
    finally:
        engine.dispose()
    return {"rows": counts, "media_states": states, "step_states": step_states, "database_size": size,
            "build_s": timings}


# Catching statements --------------------------------------------------------------------------------

@dataclasses.dataclass
class Caught:
    statement: str
    parameters: Any
    caller: str
    many: bool
    times: int = 1


def _caller() -> str:
    """The innermost frames of Kiln's own code on the stack (not SQLAlchemy's, not this file's)."""
    frame = sys._getframe(2)
    found: list[str] = []
    while frame is not None and len(found) < 3:
        name = frame.f_code.co_filename
        if name.startswith(KILN_SRC):
            module = name[len(KILN_SRC) - len("kiln"):].removesuffix(".py").replace(os.sep, ".")
            found.append(f"{module}.{frame.f_code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    return " < ".join(found) or NOTE[0]


NOTE = ["bench"]  # what sends a statement from the paths below when no Kiln frame is on the stack


def note(where: str) -> None:
    NOTE[0] = where


SKIP = re.compile(r"^\s*(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT|BEGIN|COMMIT|ROLLBACK)\b", re.I)


@contextlib.contextmanager
def catching(rt: Any) -> Iterator[tuple[Any, list[Caught]]]:
    """A copy of ``rt`` whose sessions run inside one transaction that is rolled back at the end (each
    session's own commits become savepoints), and the list of every statement they send."""
    from sqlalchemy import event
    from sqlalchemy.orm import sessionmaker

    from kiln.db import changes
    from kiln.processing import outbox
    from kiln.processing.outbox import RecordingBell
    from kiln.search.upkeep import install as install_search

    caught: list[Caught] = []
    seen: dict[str, Caught] = {}

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if SKIP.match(statement):
            return
        if statement in seen:
            seen[statement].times += 1
            return
        params = parameters[0] if executemany and parameters else parameters
        seen[statement] = Caught(statement, params, _caller(), executemany)
        caught.append(seen[statement])

    with rt.engine.connect() as conn:
        outer = conn.begin()
        factory = sessionmaker(bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint")
        changes.install(factory)
        bell = RecordingBell()
        outbox.install(factory, bell.ring)
        install_search(factory)
        copy = dataclasses.replace(rt, sessions=factory)
        copy.effects = bell
        event.listen(conn, "before_cursor_execute", before)
        try:
            yield copy, caught
        finally:
            event.remove(conn, "before_cursor_execute", before)
            outer.rollback()


# Explaining ------------------------------------------------------------------------------------------

_NODE = re.compile(r"(Seq Scan|Parallel Seq Scan|Index Scan Backward|Index Scan|Index Only Scan Backward|"
                   r"Index Only Scan|Bitmap Heap Scan|Bitmap Index Scan|Sort|Incremental Sort|Top-N|"
                   r"Hash Join|Nested Loop|Merge Join|HashAggregate|GroupAggregate|Aggregate|Hash|"
                   r"LockRows|Update|Insert|Delete|WindowAgg|Unique|Limit|SubPlan|Materialize|Gather)"
                   r"(?: using (\S+))?(?: on (\S+))?.*?\(actual time=[\d.]+\.\.([\d.]+) rows=(\d+) loops=(\d+)\)")


def scans(plan: list[str]) -> list[str]:
    """The plan's scans and sorts, one line each: what decides whether it scales."""
    out = []
    for line in plan:
        text = line.strip().removeprefix("->").strip()
        if not re.match(r"(Parallel )?(Seq Scan|Index|Bitmap|Sort|Incremental Sort)", text):
            continue
        found = _NODE.search(text)
        if found is None:
            continue
        node, index, table, _ms, rows, loops = found.groups()
        what = node + (f" using {index}" if index else "") + (f" on {table}" if table else "")
        out.append(f"{what} (rows={rows} loops={loops})")
        if node in ("Sort", "Incremental Sort"):
            method = next((ln.strip() for ln in plan[plan.index(line) + 1:plan.index(line) + 3]
                           if "Sort Method" in ln), "")
            if method:
                out[-1] += f" [{method}]"
    for line in plan:
        removed = re.search(r"Rows Removed by Filter: (\d+)", line)
        if removed and int(removed.group(1)) >= 10000:
            out.append(f"filter discarded {removed.group(1)} rows")
    return out


def explain(rt: Any, caught: Caught, runs: int) -> dict[str, Any]:
    import psycopg

    raw = rt.engine.raw_connection()
    try:
        driver = raw.driver_connection
        sql = psycopg.ClientCursor(driver).mogrify(caught.statement, caught.parameters)
        times, planning, plan = [], [], []
        for _ in range(runs):
            cursor = raw.cursor()
            try:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + caught.statement, caught.parameters)
                plan = [row[0] for row in cursor.fetchall()]
            finally:
                cursor.close()
                raw.rollback()  # a write explained is undone: every run sees the same rows
            times.append(float(next(re.search(r"([\d.]+) ms", ln).group(1) for ln in plan
                                    if ln.startswith("Execution Time"))))
            planning.append(float(next(re.search(r"([\d.]+) ms", ln).group(1) for ln in plan
                                       if ln.startswith("Planning Time"))))
    finally:
        raw.close()
    return {"sql": sql, "execution_ms": round(statistics.median(times), 3),
            "execution_ms_runs": [round(t, 3) for t in times], "planning_ms": round(statistics.median(planning), 3),
            "shape": scans(plan), "plan": plan}


# The hot paths ---------------------------------------------------------------------------------------

def facts(rt: Any, media: int) -> dict[str, Any]:
    """The ids and names the paths below ask for, chosen from the generated site."""
    from kiln.media import services as media_service

    deep_offset = min(1000 * rt.settings.per_page, media // 3)  # page 1,000 of the front page
    with rt.engine.connect() as conn:
        # The clock has moved on since the rows were made: the six worker hosts beat a moment ago, their
        # leases run (one in 97 lapsed), and the bells of the queued work were rung within the last
        # minute, as on a site at work (otherwise the sweeper would take it all back as lost).
        conn.exec_driver_sql("UPDATE worker_hosts SET last_beat = now() - interval '4 seconds'")
        conn.exec_driver_sql("UPDATE processing_steps SET lease_expires = now() + CASE WHEN media_id %% 97 = 0 "
                             "THEN interval '-30 seconds' ELSE interval '50 seconds' END WHERE state = 'running'")
        conn.exec_driver_sql("UPDATE processing_steps SET enqueued = now() - random() * interval '50 seconds' "
                             "WHERE state = 'queued'")
        conn.commit()
        q = conn.exec_driver_sql
        busy_user = q("SELECT u.username FROM users u JOIN media m ON m.owner_id = u.id GROUP BY u.username "
                      "ORDER BY count(*) DESC LIMIT 1").scalar()
        typical = q("SELECT username, n FROM (SELECT u.username, count(*) AS n FROM users u JOIN media m "
                    "ON m.owner_id = u.id GROUP BY u.username) AS c ORDER BY n LIMIT 1 OFFSET "
                    "(SELECT count(DISTINCT owner_id) / 2 FROM media)").first()
        rare = q("SELECT t.slug, count(*) FROM tags t JOIN media_tags mt ON mt.tag_id = t.id GROUP BY t.slug "
                 "ORDER BY count(*) LIMIT 1").first()
        busy_tag = q("SELECT count(*) FROM media_tags WHERE tag_id = 1").scalar()
        media_id = q("SELECT id FROM media WHERE state = 'processed' AND visibility = 'public' AND removed IS NULL "
                     "AND id >= (SELECT max(id) / 2 FROM media) ORDER BY id LIMIT 1").scalar()
        deep = q("SELECT published, id FROM media WHERE state = 'processed' AND visibility = 'public' AND removed "
                 "IS NULL ORDER BY published DESC, id DESC OFFSET %s LIMIT 1", (deep_offset,)).first()
        queued_media = q("SELECT max(media_id) FROM processing_steps WHERE state = 'queued'").scalar()
        busy_count = q("SELECT count(*) FROM media m JOIN users u ON u.id = m.owner_id WHERE u.username = %s",
                       (busy_user,)).scalar()
    return {"busy_user": busy_user, "busy_user_items": busy_count, "typical_user": typical[0],
            "typical_user_items": typical[1], "busy_tag": "landscape", "busy_tag_items": busy_tag,
            "rare_tag": rare[0], "rare_tag_items": rare[1], "media_id": media_id,
            "rare_words": f"{WORDS[media_id % len(WORDS)]} {media_id}",  # its description's words
            "deep_cursor": media_service._cursor(deep[0], deep[1]), "deep_cursor_offset": deep_offset,
            "queued_media_id": queued_media}


def paths(f: dict[str, Any]) -> list[tuple[str, str, Callable[[Any], Any]]]:
    """(name, what, run(rt)): each calls the code the page, the worker or the sweeper calls."""
    from sqlalchemy import select

    from kiln.db import changes
    from kiln.media import services as media_service
    from kiln.media.models import MediaEntry, Tag
    from kiln.processing import hosts, ledger, stats
    from kiln.processing.celery_app import lanes
    from kiln.processing.limits import lease_owner
    from kiln.processing.sweeper import acquire_lock, sweep
    from kiln.search import service as search_service
    from kiln.social import blocks
    from kiln.web.pages import ONLY_THE_ROW

    def grid(rt: Any, query_of: Callable[[Any], Any], cursor: str | None = None) -> None:
        with rt.sessions() as session:
            query = blocks.leave_out(session, None, query_of(session), MediaEntry.owner_id)
            page = media_service.page(session, query, cursor, rt.settings.per_page, grid=True)
            _ = page.items  # the cards' rows, for a grid not kept yet (kiln.web.fragments)

    def front(rt: Any) -> None:
        grid(rt, lambda s: media_service.published_query())

    def front_deep(rt: Any) -> None:
        grid(rt, lambda s: media_service.published_query(), f["deep_cursor"])

    def gallery(username: str) -> Callable[[Any], None]:
        def run(rt: Any) -> None:
            with rt.sessions() as session:
                owner = blocks.get_person(session, username, None)
            grid(rt, lambda s: media_service.published_query(owner_id=owner.id))
        return run

    def tag_page(slug: str) -> Callable[[Any], None]:
        def run(rt: Any) -> None:
            with rt.sessions() as session:
                note("kiln.web.pages.tag_page: session.scalar(select(Tag).where(Tag.slug == slug))")
                session.scalar(select(Tag).where(Tag.slug == slug))
            grid(rt, lambda s: media_service.published_query(tag=slug))
        return run

    def media_page(rt: Any) -> None:
        with rt.sessions() as session:
            note("kiln.web.pages.media_page: session.get(MediaEntry, media_id, options=ONLY_THE_ROW)")
            media = session.get(MediaEntry, f["media_id"], options=ONLY_THE_ROW)
            media.rendition("medium")  # its renditions, read to make the page's body
            media_service.neighbours(session, media)

    def due_and_claim(rt: Any) -> None:
        with rt.sessions() as session:
            due = ledger.due_steps(session, f["queued_media_id"])
            ledger.claim(session, due[0].id, lease_owner(), rt.settings.processing.lease_seconds)

    def sweeper(rt: Any) -> None:
        acquire_lock(rt, "worker-0:999", seconds=45)
        sweep(rt)

    def heartbeat(rt: Any) -> None:
        hosts.beat(rt, hosts.worker_id(), ["image.new", "image.retry"], 2)

    def counter(rt: Any) -> None:
        with rt.sessions() as session:
            note("kiln.db.changes.current (the generation's ORM read)")
            session.execute(select(changes.SiteChange.generation).where(changes.SiteChange.id == 1))
            changes.bump(session.connection())

    def admin_panel(rt: Any) -> None:
        with rt.sessions() as session:  # what /admin/processing reads (kiln.web.panels.admin_processing)
            stats.overview(session, rt.settings.processing.lease_seconds, None, lanes())
            hosts.listing(session, rt.settings)
            stats.failed_media_ids(session)

    def owner_panel(rt: Any) -> None:
        from kiln.accounts.services import find_user
        from kiln.web.panels import _panel_items

        with rt.sessions() as session:  # what /panel.json reads, polled while the owner's items are unfinished
            note("kiln.web.deps (the logged-in person's row)")
            user = find_user(session, f["busy_user"])
            items = _panel_items(session, user, None)
            stats.item_statuses(session, items)
            stats.media_state_counts(session, owner_id=user.id)

    def search(**asked: Any) -> Callable[[Any], None]:
        def run(rt: Any) -> None:
            with rt.sessions() as session:
                search_service.find(rt, session, None, search_service.make_search(**asked), None,
                                    rt.settings.per_page)
        return run

    return [
        ("front_page", "the front page (/): newest public items, a keyset page of ids, then the cards' rows and "
                       "thumbnails", front),
        ("front_page_deep", f"the front page {f['deep_cursor_offset']:,} items down (?before=cursor)", front_deep),
        ("gallery_busy_user", f"/u/{f['busy_user']} ({f['busy_user_items']} items)", gallery(f["busy_user"])),
        ("gallery_typical_user", f"/u/{f['typical_user']} ({f['typical_user_items']} items)",
         gallery(f["typical_user"])),
        ("tag_busy", f"/tag/landscape ({f['busy_tag_items']} items)", tag_page("landscape")),
        ("tag_rare", f"/tag/{f['rare_tag']} ({f['rare_tag_items']} items)", tag_page(f["rare_tag"])),
        ("media_page", f"/u/…/m/{f['media_id']}: the row, its renditions, the owner's newer and older items",
         media_page),
        ("ledger_due_and_claim", "a worker answering a bell: ledger.due_steps, then ledger.claim", due_and_claim),
        ("sweeper_pass", "the sweeper's lock, then one sweeper.sweep (running steps, unsettled items, ring_due, "
                         "outbox.sweep, digests, purges, the search index check)", sweeper),
        ("heartbeat", "hosts.beat: a worker's heartbeat, each sweep interval", heartbeat),
        ("change_counter", "the change counter: read (the ORM form of CounterReader.QUERY) and bumped", counter),
        ("admin_processing_panel", "/admin/processing: stats.overview (counts, failures, lanes, stuck items, "
                                   "latest failures, outbox), hosts.listing, stats.failed_media_ids", admin_panel),
        ("owner_panel_poll", f"/panel.json for {f['busy_user']} (polled every few seconds while an upload is "
                             "unfinished): the newest 200 items, their steps and queue places, the state counts",
         owner_panel),
        ("search_common_word", "search 'view' (two thirds of the items), by relevance", search(q="view")),
        ("search_rare_words", f"search '{f['rare_words']}' (one item)", search(q=f["rare_words"])),
        ("search_prefix", "search 'lands' as typed (prefix of landscape)", search(q="lands")),
        ("search_word_newest", "search 'sunset' (1 in 12 items), newest first", search(q="sunset", sort="newest")),
    ]


def counter_reads() -> list[Caught]:
    """The page cache's reads of the counter: plain SQL strings in the code (kiln.web.counter reads with
    the second on PostgreSQL, as a prepared statement; CounterReader is the thread's reader)."""
    from kiln.db.changes import CounterReader
    from kiln.web.counter import _OnTheLoop

    return [Caught(_OnTheLoop.QUERY, None, "kiln.web.counter._OnTheLoop.read (prepare=True)", False),
            Caught(CounterReader.QUERY, None, "kiln.db.changes.CounterReader._generation", False)]


# What would fix the ones that do not scale ------------------------------------------------------------

def what_ifs(f: dict[str, Any], caught_sql: dict[str, str]) -> list[dict[str, Any]]:
    """Fixes tried on the same rows: an index made inside a transaction that is rolled back, or the same
    query written another way (compiled by SQLAlchemy for PostgreSQL with literal parameters). None of
    this is in Kiln; it says what a fix would buy."""
    from sqlalchemy import exists, select, tuple_
    from sqlalchemy.dialects import postgresql

    from kiln.media.models import MediaEntry, MediaState, media_tags
    from kiln.media.services import decode_cursor
    from kiln.processing.models import ProcessingStep, WorkState

    def sql(statement: Any) -> str:
        return str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))

    listed = (MediaEntry.state == MediaState.PROCESSED, MediaEntry.visibility == "public",
              MediaEntry.removed.is_(None))
    newest = (MediaEntry.published.desc(), MediaEntry.id.desc())

    def tag_by_id(tag_id: int) -> str:
        return sql(select(MediaEntry.id, MediaEntry.published).join(media_tags, media_tags.c.media_id == MediaEntry.id)
                   .where(*listed, media_tags.c.tag_id == tag_id).order_by(*newest).limit(31))

    when, last_id = decode_cursor(f["deep_cursor"])  # type: ignore[misc]
    rare_tag_id = int(f["rare_tag"].removeprefix("tag"))
    not_final = (WorkState.PENDING, WorkState.QUEUED, WorkState.RUNNING)
    unsettled = sql(select(MediaEntry.id, MediaEntry.kind)
                    .where(MediaEntry.state.in_((MediaState.QUEUED, MediaState.PROCESSING)))
                    .where(~exists().where(ProcessingStep.media_id == MediaEntry.id,
                                           ProcessingStep.state.in_(not_final))))
    return [
        {"name": "tag_busy_by_id", "for": "tag_busy",
         "what": "the tag page's listing with the tag's id (the page has already read the Tag row) instead of a "
                 "join on its slug: the planner then sees how common the tag is",
         "setup": [], "sql": tag_by_id(1)},
        {"name": "tag_rare_by_id", "for": "tag_rare", "what": "the same for a rare tag (it must stay quick)",
         "setup": [], "sql": tag_by_id(rare_tag_id)},
        {"name": "front_page_deep_row_value", "for": "front_page_deep",
         "what": "the keyset condition as a row comparison, (published, id) < (cursor): the index scan starts at "
                 "the cursor instead of filtering every newer row",
         "setup": [], "sql": sql(select(MediaEntry.id, MediaEntry.published)
                                 .where(*listed, tuple_(MediaEntry.published, MediaEntry.id) < tuple_(when, last_id))
                                 .order_by(*newest).limit(31))},
        {"name": "sweeper_unsettled_not_exists",
         "for": "sweeper_pass (kiln.processing.sweeper.sweep, unsettled items)",
         "what": "NOT EXISTS a step in a non-final state, instead of NOT IN the steps not in a final state: one "
                 "index probe per unfinished item instead of reading every step",
         "setup": [], "sql": unsettled},
        {"name": "removal_due_partial_index", "for": "sweeper_pass (kiln.moderation.removal.due)",
         "what": "a partial index on media.removed where it is set",
         "setup": ["CREATE INDEX ix_media_removed ON media (removed) WHERE removed IS NOT NULL"],
         "sql": caught_sql["removal_due"]},
        {"name": "stuck_items_partial_index", "for": "admin_processing_panel (stats.stuck_items)",
         "what": "a partial index on the unfinished steps, in the order the panel lists them",
         "setup": ["CREATE INDEX ix_steps_unfinished ON processing_steps (media_id, position) "
                   "WHERE state IN ('queued', 'pending', 'running')"],
         "sql": caught_sql["stuck_items"]},
        {"name": "find_user_lower_index", "for": "gallery_* (kiln.accounts.services.find_user)",
         "what": "an index on lower(username), the expression find_user compares",
         "setup": ["CREATE INDEX ix_users_lower_username ON users (lower(username))", "ANALYZE users"],
         "sql": caught_sql["find_user"]},
    ]


def explain_what_if(rt: Any, trial: dict[str, Any], runs: int) -> dict[str, Any]:
    raw = rt.engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            for ddl in trial["setup"]:
                cursor.execute(ddl)
            times, plan = [], []
            for _ in range(runs):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + trial["sql"])
                plan = [row[0] for row in cursor.fetchall()]
                times.append(float(next(re.search(r"([\d.]+) ms", ln).group(1) for ln in plan
                                        if ln.startswith("Execution Time"))))
        finally:
            cursor.close()
            raw.rollback()  # the index goes again
    finally:
        raw.close()
    return {**trial, "execution_ms": round(statistics.median(times), 3), "execution_ms_runs": times,
            "shape": scans(plan), "plan": plan}


# The change counter under concurrent commits ---------------------------------------------------------

CONTENTION_SCRIPTS = {
    # A transaction's own work, as a publishing commit has some: two row updates on different items.
    "no_counter": "",
    # Kiln's bump (the statement caught above), first, as the session's before_flush hook sends it: the
    # row stays locked until the commit, so every such transaction waits for the one before it.
    "one_counter_row": "{bump}",
    # The same bump on one of 16 rows chosen at random (not what Kiln does: what a fix could do).
    "sixteen_counter_rows": "{bump_shard}",
}
WORK = ("UPDATE media SET updated = now() WHERE id = :id;\n"
        "UPDATE processing_steps SET finished = now() WHERE media_id = :id AND position = 0;\n")


def counter_contention(url: str, bump_sql: str, seconds: float, clients: tuple[int, ...],
                       rounds: int) -> dict[str, Any]:
    """Commits per second of a small writing transaction, with and without the change counter's bump,
    driven by pgbench (-n -j 2, ``synchronous_commit`` as the server has it): ``rounds`` rounds, the
    three scripts one after the other in each (the machine's drift hits them alike); the median per
    script and number of clients."""
    import shutil
    import subprocess

    from sqlalchemy import create_engine, make_url

    if shutil.which("pgbench") is None:
        return {"skipped": "pgbench is not installed (Debian: postgresql-client)"}
    parsed = make_url(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        top = conn.exec_driver_sql("SELECT max(id) FROM media").scalar()
        conn.exec_driver_sql("INSERT INTO site_changes (id, generation, changed_at) "
                             "SELECT i, 0, now() FROM generate_series(2, 16) AS i ON CONFLICT DO NOTHING")
        conn.commit()
    engine.dispose()
    # The time as now(): pgbench would read the literal's ":MM" as a variable.
    bump_sql = re.sub(r"changed_at\s*=\s*'[^']*'(::\w+)?", "changed_at=now()", bump_sql)
    shard = re.sub(r"WHERE site_changes\.id = 1\b", "WHERE site_changes.id = :shard", bump_sql)
    out: dict[str, Any] = {"bump_sql": bump_sql, "work_sql": WORK.strip(), "seconds": seconds, "runs": []}
    with tempfile.TemporaryDirectory(prefix="kiln-bench-pgbench-") as tmp:
        for count, round_ in ((c, r) for c in clients for r in range(rounds)):
            for name, extra in CONTENTION_SCRIPTS.items():
                script = Path(tmp) / f"{name}.sql"
                script.write_text("\\set id random(1, :maxid)\n\\set shard random(1, 16)\nBEGIN;\n"
                                  + (extra.format(bump=bump_sql, bump_shard=shard) + ";\n" if extra else "")
                                  + WORK + "COMMIT;\n")
                command = ["pgbench", "-n", "-c", str(count), "-j", str(min(count, 2)), "-T", str(int(seconds)),
                           "-D", f"maxid={top}", "-f", str(script), "-h", parsed.host or "127.0.0.1",
                           "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres", parsed.database or ""]
                for _attempt in range(12):  # the server may be full for a while (other work on the machine)
                    done = subprocess.run(command, capture_output=True, text=True, check=False)
                    if "too many clients" not in done.stderr:
                        break
                    time.sleep(10)
                tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
                latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
                row = {"script": name, "clients": count, "round": round_,
                       "tps": float(tps.group(1)) if tps else None,
                       "latency_ms": float(latency.group(1)) if latency else None}
                if tps is None:
                    row["error"] = (done.stderr or done.stdout)[-500:]
                out["runs"].append(row)
                print(f"  counter contention: {name:<22} {count:>3} clients  {row['tps']} commits/s  "
                      f"{row['latency_ms']} ms", flush=True)
    out["median_commits_per_s"] = {
        f"{name}, {count} clients": round(statistics.median(r["tps"] for r in out["runs"] if r["script"] == name
                                                            and r["clients"] == count and r["tps"] is not None), 1)
        for count in clients for name in CONTENTION_SCRIPTS
        if any(r["tps"] is not None for r in out["runs"] if r["script"] == name and r["clients"] == count)}
    return out


# The run ---------------------------------------------------------------------------------------------

def machine(url: str) -> dict[str, Any]:
    from sqlalchemy import create_engine

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    info: dict[str, Any] = {"cpus": os.cpu_count(), "cpu": cpu, "machine": platform.machine(),
                            "python": platform.python_version()}
    engine = create_engine(url)
    with engine.connect() as conn:
        info["postgresql"] = conn.exec_driver_sql("SHOW server_version").scalar()
        info["postgresql_settings"] = {name: conn.exec_driver_sql(f"SHOW {name}").scalar() for name in (
            "shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit", "max_connections")}
    engine.dispose()
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "plans.json")
    parser.add_argument("--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--media", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--tags", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3, help="EXPLAIN ANALYZE runs per statement")
    parser.add_argument("--no-search", action="store_true", help="leave the search index empty, skip searches")
    parser.add_argument("--keep", action="store_true", help="leave the database for a look afterwards")
    parser.add_argument("--contention-seconds", type=float, default=8.0,
                        help="seconds of pgbench per change counter case (0: skip)")
    parser.add_argument("--contention-rounds", type=int, default=3)
    args = parser.parse_args()

    from sqlalchemy import create_engine

    from kiln.config import load_settings
    from kiln.db.migrate import upgrade
    from kiln.processing.dispatch import RecordingDispatcher
    from kiln.runtime import build_runtime

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the database is still dropped
    started = time.perf_counter()
    load_before = os.getloadavg()
    name = f"kiln_plans_{secrets.token_hex(4)}"
    url = args.server_url.rsplit("/", 1)[0] + "/" + name
    admin = create_engine(args.server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    print(f"database {name}", flush=True)
    results: list[dict[str, Any]] = []
    try:
        t = time.perf_counter()
        upgrade(url)
        migrate_s = round(time.perf_counter() - t, 1)
        with tempfile.TemporaryDirectory(prefix="kiln-bench-plans-") as tmp:
            settings = load_settings(data_dir=Path(tmp), database_url=url)
            print(f"building {args.media:,} media ...", flush=True)
            site = build_site(url, settings, args.media, args.users, args.tags, not args.no_search)
            site["build_s"]["migrate"] = migrate_s
            rt = build_runtime(settings, dispatcher=RecordingDispatcher())
            try:
                chosen = facts(rt, args.media)
                print(json.dumps(chosen), flush=True)
                for path, what, run in paths(chosen):
                    if path.startswith("search") and args.no_search:
                        continue
                    note("bench")
                    with catching(rt) as (copy, caught):
                        t = time.perf_counter()
                        run(copy)
                        path_ms = round((time.perf_counter() - t) * 1000, 1)
                    if path == "change_counter":
                        caught[:0] = counter_reads()
                    statements = []
                    for one in caught:
                        explained = explain(rt, one, args.runs)
                        statements.append({"caller": one.caller, "sent_times": one.times,
                                           "executemany": one.many, **explained})
                        print(f"  {path:<24} {explained['execution_ms']:>10.3f} ms  {one.caller.split(' < ')[0]}  "
                              f"{'; '.join(explained['shape'][:3])}", flush=True)
                    results.append({"name": path, "what": what, "path_ms_in_process": path_ms,
                                    "statements": statements})
                def caught_from(name: str, caller: str) -> str:
                    return next(st["sql"] for q in results if q["name"] == name for st in q["statements"]
                                if st["caller"].startswith(caller))

                tried = []
                for trial in what_ifs(chosen, {
                        "removal_due": caught_from("sweeper_pass", "kiln.moderation.removal.due"),
                        "stuck_items": caught_from("admin_processing_panel", "kiln.processing.stats.stuck_items"),
                        "find_user": caught_from("gallery_busy_user", "kiln.accounts.services.find_user")}):
                    one = explain_what_if(rt, trial, args.runs)
                    tried.append(one)
                    print(f"  what if {one['name']:<30} {one['execution_ms']:>10.3f} ms  {'; '.join(one['shape'][:3])}",
                          flush=True)
                contention: dict[str, Any] | None = None
                if args.contention_seconds > 0:
                    bump = next(s["sql"] for q in results if q["name"] == "change_counter"
                                for s in q["statements"] if s["caller"].startswith("kiln.db.changes.bump"))
                    try:
                        contention = counter_contention(url, bump, args.contention_seconds, (1, 8),
                                                        args.contention_rounds)
                    except Exception as exc:  # a server full of other work's connections: keep the plans
                        contention = {"skipped": f"{type(exc).__name__}: {exc}"[:500]}
            finally:
                rt.close()
    finally:
        if args.keep:
            print(f"kept database {name}: {url}")
        else:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    report = {
        "what": "EXPLAIN (ANALYZE, BUFFERS) of every statement Kiln's hot paths send, on PostgreSQL with "
                f"{args.media:,} generated media rows; the paths run through Kiln's own code in a rolled-back "
                f"transaction, each statement caught at the driver and explained {args.runs} times (median "
                "execution time; the plan is the last run's, with a warm cache)",
        "when": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "machine": machine(args.server_url),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "site": site, "facts": chosen, "queries": results, "what_if": tried,
        "change_counter_contention": contention,
        "total_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"-> {args.out} ({report['total_s']} s)")


if __name__ == "__main__":
    main()
