"""Logged-in pages on a community site: a media page with 50 comments and the Following timeline,
side by side with the anonymous media page, in one run.

    python bench/bench_social.py [--out bench/results/social.json] [--duration 10]
                                 [--databases sqlite,postgresql] [--quick]

Needs wrk (Debian: ``apt-get install -y wrk``).

The site is bench_serving's (10,000 processed public images by 500 people, 300 tags), plus what people
do together, inserted in bulk: every person follows 30 others; a reader follows 100 people including
the busiest; 20,000 comments spread over the site (a tenth of them replies) and exactly 50 on the
measured item (40 top-level, 10 replies); 30,000 favourites; 200 unread notifications for the reader
(the bell counts them on every page). Counts on media are set to match.

For each database (a SQLite file, a fresh PostgreSQL database ``kiln_bench``) a real ``kiln serve
--workers 2 --no-worker`` (production shape, default settings) is driven by ``wrk -t2 -c20 --latency``
from 127.0.0.1 with a browser's ``Accept-Encoding``; logged-in requests carry the reader's session
cookie (and the CSRF cookie a browser keeps), so they are rendered for the reader every time (the
anonymous page cache never serves them):

  media_anonymous   the measured item's page, no cookie (the baseline: the anonymous page cache)
  media_logged_in   the same page as the reader (50 comments, favourite button, bell)
  timeline          /timeline as the reader
  front_logged_in   / as the reader, for scale

Target (issue 16): media_logged_in and timeline >= 150 req/s with p99 <= 100 ms at 20 connections,
on both databases, no errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CONNECTIONS = 20
TARGET_RPS, TARGET_P99_MS = 150.0, 100.0
MEASURED = ("media_logged_in", "timeline")


def add_community(rt: Any, site: dict[str, Any], seed: int = 20261206) -> dict[str, Any]:
    """Follows, comments, favourites and notifications over a built site; returns the reader's login."""
    from sqlalchemy import func, insert, select, text, update

    from kiln.accounts import services as accounts
    from kiln.accounts.models import User, UserPrivilege
    from kiln.db import changes
    from kiln.media.models import MediaEntry
    from kiln.social.models import Comment, Favourite, Follow, Notification

    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with rt.sessions() as session:
        user_ids = list(session.scalars(select(User.id).order_by(User.id)))
        busy_id = session.scalar(select(User.id).where(User.username == site["busy_user"]))
        media_ids = list(session.scalars(select(MediaEntry.id)))
        reader = accounts.create_user(session, "reader", "reader@example.org", "bench-password-not-secret",
                                      verified=True)
        session.flush()
        reader_id = reader.id

        follows = set()
        for follower in user_ids:
            for followee in rng.sample(user_ids, 31):
                if followee != follower:
                    follows.add((follower, followee))
        reader_follows = {busy_id, *rng.sample([u for u in user_ids if u != busy_id], 99)}
        rows = [{"follower_id": a, "followee_id": b, "created": now} for a, b in sorted(follows)]
        rows += [{"follower_id": reader_id, "followee_id": b, "created": now} for b in sorted(reader_follows)]
        for start in range(0, len(rows), 5000):
            session.execute(insert(Follow), rows[start:start + 5000])

        sample = site["sample_media_id"]
        comments: list[dict[str, Any]] = []
        for index in range(20_000):
            media_id = rng.choice(media_ids)
            if media_id == sample:
                continue
            comments.append({"media_id": media_id, "author_id": rng.choice(user_ids),
                             "body": f"Comment {index}: *lovely* light, see <https://example.org/{index}>.",
                             "created": now - dt.timedelta(minutes=rng.randrange(500_000))})
        for start in range(0, len(comments), 5000):
            session.execute(insert(Comment), comments[start:start + 5000])
        # The measured item: 40 top-level comments, then 10 replies to some of them.
        for index in range(40):
            session.execute(insert(Comment), [{"media_id": sample, "author_id": rng.choice(user_ids),
                                               "body": f"Top-level comment {index} with **Markdown** and a "
                                                       f"[link](https://example.org/{index}).",
                                               "created": now - dt.timedelta(minutes=100 - index)}])
        tops = list(session.scalars(select(Comment.id).where(Comment.media_id == sample).order_by(Comment.id)))
        session.execute(insert(Comment), [{"media_id": sample, "author_id": rng.choice(user_ids),
                                           "parent_id": rng.choice(tops), "body": f"A reply, number {index}.",
                                           "created": now - dt.timedelta(minutes=50 - index)} for index in range(10)])

        favourites = {(rng.choice(user_ids), rng.choice(media_ids)) for _ in range(30_000)}
        rows = [{"user_id": u, "media_id": m, "created": now} for u, m in sorted(favourites)]
        for start in range(0, len(rows), 5000):
            session.execute(insert(Favourite), rows[start:start + 5000])

        unread = [{"user_id": reader_id, "type": "follow", "actor_id": rng.choice(user_ids),
                   "created": now - dt.timedelta(minutes=i), "mail": "none"} for i in range(200)]
        session.execute(insert(Notification), unread)
        # The counts the pages show, in one statement each.
        session.execute(update(MediaEntry).values(
            comment_count=select(func.count()).where(Comment.media_id == MediaEntry.id).scalar_subquery(),
            favourite_count=select(func.count()).where(Favourite.media_id == MediaEntry.id).scalar_subquery(),
            updated=MediaEntry.updated))
        if not session.scalar(select(func.count()).select_from(UserPrivilege)
                              .where(UserPrivilege.user_id == reader_id, UserPrivilege.name == "commenter")):
            session.add(UserPrivilege(user_id=reader_id, name="commenter"))
        changes.bump(session.connection())
        if rt.engine.dialect.name == "postgresql":
            for table in ("comments", "follows", "notifications"):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))"))
        session.commit()
        cookie = accounts.start_session(session, session.get(User, reader_id))
        session.commit()
        counted = session.scalar(select(func.count()).select_from(Comment).where(Comment.media_id == sample))
    return {"reader": "reader", "reader_follows": len(reader_follows), "follows": len(follows) + len(reader_follows),
            "comments": len(comments) + counted, "comments_on_measured_item": counted,
            "favourites": len(favourites), "reader_unread_notifications": 200, "cookie": cookie}


def analyse(rt: Any) -> None:
    """Give the planner its statistics, as autovacuum does on a live PostgreSQL site within a minute of
    a bulk load (without them it joins the timeline by scanning every item: 14 ms instead of 0.8)."""
    from sqlalchemy import text

    if rt.engine.dialect.name == "postgresql":
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


def wrk(url: str, seconds: float, headers: dict[str, str]) -> dict[str, Any]:
    from bench_serving import parse_wrk

    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s",
               "-H", "Accept-Encoding: gzip, br"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def measure(base: str, site: dict[str, Any], social: dict[str, Any], seconds: float, warm: float,
            log: Path) -> list[dict[str, Any]]:
    import httpx

    from kiln.web.deps import CSRF_COOKIE, SESSION_COOKIE

    media = f"/u/{site['busy_user']}/m/{site['sample_media_id']}"
    # A browser that has been here before also sends the CSRF cookie it was given (without it, every
    # page would make and set a new token, which no browser makes a site do twice).
    cookie = {"Cookie": f"{SESSION_COOKIE}={social['cookie']}; {CSRF_COOKIE}={'c' * 32}"}
    plan = {"media_anonymous": (media, {}), "media_logged_in": (media, cookie), "timeline": ("/timeline", cookie),
            "front_logged_in": ("/", cookie)}
    rows = []
    for name, (path, headers) in plan.items():
        answer = httpx.get(base + path, headers={"Accept-Encoding": "gzip, br", **headers}, timeout=30)
        if answer.status_code != 200:
            raise SystemExit(f"{name} {path} answered {answer.status_code}: {answer.text[:500]}")
        if headers and "reader" not in answer.text:
            raise SystemExit(f"{name}: the page is not rendered for the logged-in reader")
        wrk(base + path, warm, headers)
        row = {"endpoint": name, "path": path, "connections": CONNECTIONS, "bytes": len(answer.content),
               "load_1m_before": round(os.getloadavg()[0], 2), **wrk(base + path, seconds, headers)}
        row["stalled"] = row["requests"] < CONNECTIONS
        if row["stalled"] or not row["clean"]:
            row["clean"] = False
            row["server_log_tail"] = log.read_text(errors="replace")[-2000:]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "social.json")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--media", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 media, 2 s loads")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed; on Debian: apt-get install -y wrk")
    if args.quick:
        args.duration, args.media = 2.0, 2000

    from bench_serving import build_site, database, kiln_server, machine

    from kiln.config import load_settings
    from kiln.runtime import build_runtime

    rows: list[dict[str, Any]] = []
    datasets: dict[str, Any] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-social-") as tmp:
        for db in args.databases.split(","):
            folder = Path(tmp) / db
            data = folder / "data"
            data.mkdir(parents=True)
            with database(db, folder, args.postgres_url) as db_url:
                rt = build_runtime(load_settings(data_dir=data, database_url=db_url))
                try:
                    print(f"{db}: building {args.media} media and their community ...", flush=True)
                    site = build_site(rt, args.media, 500, 300, folder)
                    social = add_community(rt, site)
                    analyse(rt)
                    datasets[db] = {**site, **{k: v for k, v in social.items() if k != "cookie"}}
                    log = folder / "server.log"
                    with kiln_server(data, db_url, 2, {}, log) as (base, _):
                        measured = measure(base, site, social, args.duration, 1.0 if args.quick else 2.0, log)
                finally:
                    rt.close()
            for row in measured:
                row["database"] = db
                print(f"{db:<11}{row['endpoint']:<17}{row['rps']:>8} req/s  p50 {row['p50_ms']:>7} ms  "
                      f"p99 {row['p99_ms']:>7} ms  {'clean' if row['clean'] else 'ERRORS'}", flush=True)
            rows += measured

    checks = [{"database": r["database"], "endpoint": r["endpoint"], "rps": r["rps"], "p99_ms": r["p99_ms"],
               "pass": r["clean"] and r["rps"] >= TARGET_RPS and r["p99_ms"] <= TARGET_P99_MS}
              for r in rows if r["endpoint"] in MEASURED]
    baseline = {r["database"]: r for r in rows if r["endpoint"] == "media_anonymous"}
    ratios = [{"database": r["database"], "endpoint": r["endpoint"],
               "rps_over_anonymous_media": round(r["rps"] / baseline[r["database"]]["rps"], 3)}
              for r in rows if r["endpoint"] != "media_anonymous" and r["database"] in baseline]
    report = {
        "what": "Kiln serving logged-in pages of a community site: kiln serve --workers 2 --no-worker, "
                f"wrk -t2 -c{CONNECTIONS} from 127.0.0.1; the anonymous media page is the baseline",
        "duration_s": args.duration, "quick": args.quick,
        "machine": machine(args.postgres_url if "postgresql" in args.databases else None),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "datasets": datasets, "rows": rows, "ratios": ratios,
        "targets": {"rule": f"{', '.join(MEASURED)} at {CONNECTIONS} connections: >= {TARGET_RPS:.0f} req/s, "
                            f"p99 <= {TARGET_P99_MS:.0f} ms, no errors; both databases",
                    "checks": checks, "pass": bool(checks) and all(c["pass"] for c in checks)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("targets:", "PASS" if report["targets"]["pass"] else "FAIL")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
