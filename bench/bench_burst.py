"""A burst of uploads after a quiet spell: every upload accepted, processed, and stored once.

    python bench/bench_burst.py [--out bench/results/burst.json] [--rounds 3] [--uploads 50] [--people 5]
                                [--idle 5] [--workers 2]
                                [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

A real ``kiln serve --workers 2`` (gunicorn + uvicorn web processes and the processing worker on the
embedded queue) on a fresh PostgreSQL database ``kiln_bench_burst``, with five people, each with a
write API token. Then, ``--rounds`` times: nothing for ``--idle`` seconds (longer than the 5 s after
which a process re-reads its store assignments), then ``--uploads`` uploads at once, spread evenly over
the people, each a different small PNG, over one connection each (httpx, asyncio). For each round: how
many were accepted (202), any other answer (status and error code), and the upload latencies (p50,
p99, max). At the end: every accepted item must reach ``processed``, and the database must hold exactly
one item per upload sent (no duplicates, none missing). Issue 13, item 2: this answered 500 to 8-28
uploads per round, the others after 30-90 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "kiln_bench_burst"
PROCESSING_DEADLINE = 600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def database(server_url: str) -> Iterator[str]:
    """A fresh, migrated ``kiln_bench_burst`` on the server; dropped afterwards."""
    from sqlalchemy import create_engine, text

    from kiln.db.migrate import upgrade

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    url = server_url.rsplit("/", 1)[0] + "/" + DATABASE
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def kiln_serve(data: Path, db_url: str, workers: int, log: Path) -> Iterator[str]:
    """``kiln serve`` with its processing worker, in its own process group; stopped on exit."""
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("KILN_")}
    env.update({"KILN_DATABASE_URL": db_url, "KILN_BASE_URL": base, "KILN_PROCESSING__SWEEP_INTERVAL": "2"})
    command = [sys.executable, "-m", "kiln", "--data", str(data), "serve", "--port", str(port),
               "--workers", str(workers), "--verbose"]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/", timeout=5).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("kiln serve did not start:\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        time.sleep(1.0)  # every web process booted, not only the first to answer
        yield base
    except BaseException:
        print(f"--- the end of {log}:\n" + log.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(40)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def people(data: Path, db_url: str, count: int) -> list[str]:
    """``count`` verified people with write tokens; returns the tokens."""
    from kiln.accounts import services as accounts
    from kiln.config import load_settings
    from kiln.processing.dispatch import RecordingDispatcher
    from kiln.runtime import build_runtime

    rt = build_runtime(load_settings(data_dir=data, database_url=db_url), dispatcher=RecordingDispatcher())
    try:
        tokens = []
        with rt.sessions() as session:
            for n in range(count):
                user = accounts.create_user(session, f"burst{n}", f"burst{n}@example.org", "bench-password-1",
                                            verified=True)
                session.flush()
                tokens.append(accounts.create_api_token(session, user, "bench", "write"))
            session.commit()
        return tokens
    finally:
        rt.close()


def picture(number: int) -> bytes:
    """A small PNG that no other upload of the run has (its pixels carry the number)."""
    from PIL import Image

    image = Image.new("RGB", (96, 72), (number * 37 % 256, number * 91 % 256, 120))
    image.putpixel((number % 96, number // 96 % 72), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def burst(base: str, tokens: list[str], first: int, count: int) -> list[dict[str, Any]]:
    import httpx

    async def one(client: httpx.AsyncClient, number: int) -> dict[str, Any]:
        body = picture(number)
        started = time.perf_counter()
        try:
            response = await client.post(base + "/api/v1/media",
                                         headers={"Authorization": f"Bearer {tokens[number % len(tokens)]}"},
                                         files={"file": (f"burst-{number}.png", body, "image/png")},
                                         data={"title": f"Burst {number}"})
        except httpx.HTTPError as exc:
            return {"number": number, "status": 0, "error": type(exc).__name__,
                    "seconds": time.perf_counter() - started}
        row: dict[str, Any] = {"number": number, "status": response.status_code,
                               "seconds": time.perf_counter() - started}
        if response.status_code == 202:
            row["id"] = response.json()["id"]
        else:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                row["error"] = response.json()["error"]["code"]
            row["retry_after"] = response.headers.get("retry-after")
        return row

    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        return list(await asyncio.gather(*(one(client, first + n) for n in range(count))))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in rows]
    others = Counter(f"{r['status']} {r.get('error', '')}".strip() for r in rows if r["status"] != 202)
    return {"sent": len(rows), "accepted": sum(r["status"] == 202 for r in rows), "other_answers": dict(others),
            "p50_ms": round(statistics.median(seconds) * 1000, 1), "p99_ms": round(percentile(seconds, 0.99) * 1000, 1),
            "max_ms": round(max(seconds) * 1000, 1)}


def wait_processed(db_url: str, ids: list[int]) -> dict[str, Any]:
    """Wait until every accepted item is processed (or failed); then count what the database holds."""
    from sqlalchemy import create_engine, func, select

    from kiln.media.models import MediaEntry

    engine = create_engine(db_url)
    started = time.monotonic()
    try:
        while True:
            with engine.connect() as conn:
                states = dict(conn.execute(select(MediaEntry.state, func.count()).where(MediaEntry.id.in_(ids))
                                           .group_by(MediaEntry.state)).all())
            done = states.get("processed", 0) + states.get("failed", 0)
            if done == len(ids) or time.monotonic() - started > PROCESSING_DEADLINE:
                break
            time.sleep(1.0)
        with engine.connect() as conn:
            titles = conn.execute(select(MediaEntry.title, func.count()).group_by(MediaEntry.title)).all()
            rows = conn.scalar(select(func.count()).select_from(MediaEntry))
    finally:
        engine.dispose()
    return {"states": states, "processed": states.get("processed", 0),
            "seconds_until_all_processed": round(time.monotonic() - started, 1),
            "items_in_database": rows, "duplicated_titles": sum(1 for _t, n in titles if n > 1)}


def machine(server_url: str) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    info: dict[str, Any] = {"cpus": os.cpu_count(), "cpu": cpu, "machine": platform.machine(),
                            "python": platform.python_version()}
    engine = create_engine(server_url)
    with contextlib.suppress(Exception), engine.connect() as conn:
        info["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "burst.json")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=50, help="uploads sent at once per round")
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.5, help="seconds of quiet before each round")
    parser.add_argument("--workers", type=int, default=2, help="web processes of kiln serve")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    load_before = os.getloadavg()
    rounds: list[dict[str, Any]] = []
    uploads: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kiln-bench-burst-") as tmp, database(args.postgres_url) as db_url:
        data = Path(tmp) / "data"
        data.mkdir()
        tokens = people(data, db_url, args.people)
        with kiln_serve(data, db_url, args.workers, Path(tmp) / "serve.log") as base:
            for number in range(args.rounds):
                time.sleep(args.idle)
                load = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
                rows = asyncio.run(burst(base, tokens, number * args.uploads, args.uploads))
                uploads += rows
                summary = {"round": number + 1, "load_1m_before": load, **summarise(rows)}
                rounds.append(summary)
                print(json.dumps(summary), flush=True)
            ids = [r["id"] for r in uploads if "id" in r]
            processing = wait_processed(db_url, ids)
        log = (Path(tmp) / "serve.log").read_text(errors="replace")
        processing["server_log_tracebacks"] = log.count("Traceback (most recent call last)")
        print(json.dumps(processing), flush=True)

    sent = args.rounds * args.uploads
    accepted = sum(r["accepted"] for r in rounds)
    overall = summarise(uploads)
    checks = {
        "all_accepted": accepted == sent,
        "all_processed": processing["processed"] == accepted == sent,
        "none_duplicated": processing["items_in_database"] == accepted and processing["duplicated_titles"] == 0,
        "distinct_ids": len(set(ids)) == len(ids),
        "no_tracebacks_logged": processing["server_log_tracebacks"] == 0,
    }
    report = {
        "what": f"{args.rounds} rounds of {args.uploads} concurrent API uploads (small distinct PNGs) from "
                f"{args.people} people, each after {args.idle:g} s idle, to kiln serve --workers {args.workers} "
                "with its processing worker (embedded queue) on PostgreSQL, from 127.0.0.1",
        "machine": machine(args.postgres_url),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rounds": rounds,
        "overall": {key: overall[key] for key in ("sent", "accepted", "other_answers", "p50_ms", "p99_ms", "max_ms")},
        "processing": processing,
        "checks": checks,
        "pass": all(checks.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}: {'pass' if report['pass'] else 'FAIL'} {json.dumps(checks)}")


if __name__ == "__main__":
    main()
