"""The admin's people list (kiln.moderation.directory.page) on a site with 10,000 accounts.

    python bench/bench_people.py [--out bench/results/people.json] [--runs 21] [--people 10000]

A fresh migrated SQLite file gets ``--people`` accounts inserted in bulk (every one verified with the
default privileges; one in 50 banned, one in 40 with commenting taken away for a week, one in 100
unverified, 20 moderators), two media items each with two renditions. Each case reads one page of 50
the way /admin/users and GET /api/v1/admin/users do (the people, their privileges and two grouped sums
of file sizes), median of ``--runs`` after one warm-up, and counts the SQL statements of one page.

Target (issue 17): every case under 50 ms on a 2-core machine, and the same statement count for
every case (nothing per row).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def build(url: str, people: int) -> None:
    from sqlalchemy import create_engine, insert

    from kiln.accounts.models import User, UserPrivilege
    from kiln.db.base import utcnow
    from kiln.db.migrate import upgrade
    from kiln.media.models import MediaEntry, Rendition

    upgrade(url)
    engine = create_engine(url)
    now = utcnow()
    week = now + dt.timedelta(days=7)
    with engine.begin() as conn:
        conn.execute(insert(User), [
            {"id": n, "username": f"person{n:05d}", "email": f"person{n}@example.org", "password_hash": "x",
             "display_name": f"Person {n}", "created": now - dt.timedelta(minutes=n), "banned": n % 50 == 0,
             "ban_reason": "bench" if n % 50 == 0 else "", "last_seen": now if n % 3 else None,
             "links": [], "comments_enabled": True} for n in range(1, people + 1)])
        rows = []
        for n in range(1, people + 1):
            names = ["uploader", "commenter", "reporter"] + ([] if n % 100 == 0 else ["active"])
            names += ["moderator"] if n % (people // 20) == 0 else []
            rows += [{"user_id": n, "name": name, "suspended_until": week if name == "commenter" and n % 40 == 0
                      else None} for name in names]
        conn.execute(insert(UserPrivilege), rows)
        media = [{"id": m, "owner_id": (m + 1) // 2, "kind": "image", "state": "processed", "title": "t",
                  "original_key": ["o", str(m)], "size_bytes": 1_000_000 + m, "created": now, "updated": now,
                  "visibility": "public", "key_token": ""} for m in range(1, 2 * people + 1)]
        conn.execute(insert(MediaEntry), media)
        conn.execute(insert(Rendition), [
            {"media_id": m["id"], "name": name, "key": ["r", str(m["id"]), name], "mime_type": "image/jpeg",
             "size_bytes": 50_000, "spec_fingerprint": "x", "spec": {}, "created": now}
            for m in media for name in ("thumbnail", "medium")])
    engine.dispose()


def measure(url: str, runs: int) -> dict[str, Any]:
    from sqlalchemy import create_engine, event
    from sqlalchemy.orm import sessionmaker

    from kiln.moderation.directory import PeopleFilter, page

    engine = create_engine(url)
    sessions = sessionmaker(engine)
    cases = {"newest": (PeopleFilter(), None), "page_100": (PeopleFilter(), 5000),
             "search": (PeopleFilter(text="person07", by_email=True), None),
             "banned": (PeopleFilter(state="banned"), None), "suspended": (PeopleFilter(state="suspended"), None),
             "unverified": (PeopleFilter(state="unverified"), None),
             "moderators": (PeopleFilter(privilege="moderator"), None)}
    out: dict[str, Any] = {}
    for name, (where, before) in cases.items():
        statements = 0

        def count(*args: object) -> None:
            nonlocal statements
            statements += 1

        times = []
        for run in range(runs + 1):
            with sessions() as session:
                if run == runs:
                    event.listen(engine, "before_cursor_execute", count)
                start = time.perf_counter()
                result = page(session, where, before=before)
                elapsed = time.perf_counter() - start
                if run == runs:
                    event.remove(engine, "before_cursor_execute", count)
                elif run:
                    times.append(elapsed)
        out[name] = {"ms": round(statistics.median(times) * 1000, 2), "rows": len(result.rows),
                     "statements": statements}
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/people.json")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--people", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        build(url, args.people)
        results = measure(url, args.runs)
    with open("/proc/loadavg") as fh:
        load = float(fh.read().split()[0])
    report = {"people": args.people, "database": "sqlite", "load_average": load, "cases": results}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, figures in results.items():
        print(f"{name:12} {figures['ms']:8.2f} ms  {figures['rows']:3} rows  {figures['statements']} statements")


if __name__ == "__main__":
    main()
