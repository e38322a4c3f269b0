"""The processing engine's own overhead: what a real `kiln worker` adds to the pixel work.

    python bench/bench_engine.py [--out bench/results/engine.json] [--count 200] [--runs 3]
                                 [--brokers embedded,redis] [--redis-url redis://127.0.0.1:6379/8]
                                 [--database-url postgresql+psycopg://...]

A batch of small JPEGs (``--count`` of them, 64x64) goes through the engine as an upload does:
``media.services.submit`` (hash, identify from content, store in the queue store, commit the item
and its steps, ring the bell) in this process, answered by a real ``kiln worker --processes 1``
subprocess (claim each step, copy the original to the workbench, run the step, store renditions,
renew the lease, the finishing check, move the original). The time runs from the first submit to
the moment the last item is ``processed`` (polled every 20 ms). The worker is started and warmed up
on a few items first; its start-up is not timed.

The pixel work is the same images through the image kind alone, in this process: identify, then
the ``medium``, ``thumbnail`` and ``metadata`` steps and the thumbnail's blurred placeholder, through
the function the worker calls (``run.pixel_work``). Overhead per item
is (engine time - pixel time) / count: the price of the ledger, the queue, the stores and the
checks, per item. One worker process, so the two are compared on one core each. The SQL statements
and commits of an item's submit and of its run in the worker are counted too, in this process
(``per_item``).

Each broker runs ``--runs`` times, interleaved; medians are reported, with the 1-minute load average
before and after each run (the machine is shared: read the ratios of one run). The database is a new SQLite
file per run (the default install), or a new database on the PostgreSQL server ``--database-url``
points at. With Redis, Kiln's lanes on ``--redis-url`` are emptied before each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fixtures_images makes the pictures

WARMUP = 5


# Images and the pixel work ---------------------------------------------------------------------
def make_images(directory: Path, count: int, size: int) -> list[Path]:
    from tests.fixtures_images import photo

    paths = []
    for index in range(count + WARMUP):
        path = directory / f"small-{index:04}.jpg"
        photo(size, size, seed=index).save(path, quality=85)
        paths.append(path)
    return paths


def pixel_seconds(paths: list[Path], workdir: Path) -> float:
    """The image kind's own work on each file, as the worker calls it: identify, then the medium,
    thumbnail and metadata steps with the blurred placeholder (``run.pixel_work``)."""
    from kiln.config import load_settings
    from kiln.mediatypes import identify
    from kiln.mediatypes.base import StepContext
    from kiln.mediatypes.image import KIND
    from kiln.processing.run import pixel_work

    settings = load_settings(data_dir=workdir / "data")

    def run(path: Path, folder: Path) -> None:
        folder.mkdir()
        ctx = StepContext(source=path, workdir=folder, settings=settings, identified=identify(path, settings))
        for step in ("medium", "thumbnail", "metadata"):
            pixel_work(KIND, step, ctx)

    for index, path in enumerate(paths[:WARMUP]):
        run(path, workdir / f"warm-{index}")
    started = time.perf_counter()
    for index, path in enumerate(paths[WARMUP:]):
        run(path, workdir / f"timed-{index}")
    return time.perf_counter() - started


# Statements and commits -------------------------------------------------------------------------
def statements_per_item(paths: list[Path], folder: Path) -> dict[str, float]:
    """SQL statements and commits per item, counted on the engine: the submit (as an upload does) and
    the worker's run of the item (``process_media`` with a worker's bell, so the search index of what
    it publishes is written here too, as in ``kiln worker``). SQLite, in this process."""
    from sqlalchemy import event

    from kiln.accounts import services as accounts
    from kiln.config import load_settings
    from kiln.media import services as media
    from kiln.processing.dispatch import RecordingDispatcher
    from kiln.processing.outbox import WorkerBell
    from kiln.processing.service import process_media
    from kiln.runtime import build_runtime

    with database(folder, None) as db_url:
        rt = build_runtime(load_settings(data_dir=folder / "data", database_url=db_url),
                           dispatcher=RecordingDispatcher())
        rt.effects = WorkerBell(rt, rt.effects)
        counts = {"statements": 0, "commits": 0}

        @event.listens_for(rt.engine, "before_cursor_execute")
        def _statement(*_args: object) -> None:
            counts["statements"] += 1

        @event.listens_for(rt.engine, "commit")
        def _commit(*_args: object) -> None:
            counts["commits"] += 1

        totals = {"submit_statements": 0, "submit_commits": 0, "worker_statements": 0, "worker_commits": 0}
        try:
            with rt.sessions() as session:
                user = accounts.create_user(session, "bench", "bench@example.com", "correct horse", verified=True)
                session.commit()
                for path in paths:
                    counts.update(statements=0, commits=0)
                    with path.open("rb") as fh:
                        entry = media.submit(rt, session, user, fh, path.name, media.MediaFields())
                    totals["submit_statements"] += counts["statements"]
                    totals["submit_commits"] += counts["commits"]
                    counts.update(statements=0, commits=0)
                    if process_media(rt, entry.id) != "processed":
                        raise SystemExit(f"{path.name} was not processed")
                    totals["worker_statements"] += counts["statements"]
                    totals["worker_commits"] += counts["commits"]
        finally:
            rt.close()
    return {name: round(value / len(paths), 1) for name, value in totals.items()}


# The engine -------------------------------------------------------------------------------------
@contextmanager
def database(folder: Path, server_url: str | None) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    from kiln.db.migrate import upgrade

    if server_url is None:
        url = f"sqlite:///{folder / 'kiln.db'}"
        upgrade(url)
        yield url
        return
    name = f"kiln_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server_url.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_lanes(broker: str) -> None:
    import redis

    from kiln.processing.celery_app import lanes

    client = redis.Redis.from_url(broker)
    client.delete(*lanes())
    client.close()


@contextmanager
def worker(data: Path, db_url: str, broker: str | None, log: Path, processes: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KILN_")}
    env["KILN_DATABASE_URL"] = db_url
    if broker:
        env["KILN_BROKER_URL"] = broker
    with log.open("wb") as out:
        command = [sys.executable, "-m", "kiln", "--data", str(data), "worker", "--processes", str(processes)]
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("kiln worker did not start:\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(20)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def engine_run(paths: list[Path], folder: Path, broker: str | None, server_url: str | None,
               processes: int) -> dict[str, float]:
    from sqlalchemy import func, select

    from kiln.accounts import services as accounts
    from kiln.config import load_settings
    from kiln.media import services as media
    from kiln.media.models import MediaEntry
    from kiln.runtime import build_runtime

    data = folder / "data"
    with database(folder, server_url) as db_url:
        if broker:
            empty_lanes(broker)
        settings = load_settings(data_dir=data, database_url=db_url, broker_url=broker)
        rt = build_runtime(settings)  # rings the bell on the same broker as the worker
        try:
            with worker(data, db_url, broker, folder / "worker.log", processes), rt.sessions() as session:
                user = accounts.create_user(session, "bench", "bench@example.com", "correct horse", verified=True)
                session.commit()

                def submit_all(batch: list[Path]) -> None:
                    for path in batch:
                        with path.open("rb") as fh:
                            media.submit(rt, session, user, fh, path.name, media.MediaFields())

                def wait_processed(count: int) -> None:
                    deadline = time.monotonic() + 600
                    query = select(func.count()).where(MediaEntry.state.in_(("processed", "failed")))
                    while session.scalar(query) < count:
                        session.rollback()  # a fresh snapshot on the next poll
                        if time.monotonic() > deadline:
                            raise SystemExit("the worker did not finish within 10 minutes")
                        time.sleep(0.02)

                submit_all(paths[:WARMUP])
                wait_processed(WARMUP)
                started = time.perf_counter()
                submit_all(paths[WARMUP:])
                submitted = time.perf_counter()
                wait_processed(len(paths))
                finished = time.perf_counter()
                processed = session.scalar(select(func.count()).where(MediaEntry.state == "processed"))
        finally:
            rt.close()
    if processed != len(paths):
        raise SystemExit(f"only {processed} of {len(paths)} items were processed; see {folder / 'worker.log'}")
    return {"engine_s": finished - started, "submit_s": submitted - started}


def versions(server_url: str | None) -> dict[str, str]:
    import celery
    import pyvips

    return {
        "python": platform.python_version(),
        "celery": celery.__version__,
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
        "database": "postgresql" if server_url else "sqlite",
        "cpus": str(os.cpu_count()),
        "machine": platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "engine.json")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=64, help="side of the square test images, px")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=1, help="worker processes (the pixel work uses one)")
    parser.add_argument("--brokers", default="embedded,redis")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (default: SQLite)")
    parser.add_argument("--statements-only", action="store_true",
                        help="only count the SQL statements and commits per item (quick; nothing written)")
    args = parser.parse_args()
    brokers = {name: (None if name == "embedded" else args.redis_url) for name in args.brokers.split(",")}

    with tempfile.TemporaryDirectory(prefix="kiln-bench-engine-") as tmp:
        directory = Path(tmp)
        (directory / "images").mkdir()
        paths = make_images(directory / "images", args.count, args.size)
        (directory / "count").mkdir()
        statements = statements_per_item(paths[:10], directory / "count")
        if args.statements_only:
            print("per item: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in statements.items()))
            return
        samples: dict[str, list[dict[str, float]]] = {"pixels": [], **{name: [] for name in brokers}}
        loads: dict[str, list[list[float]]] = {name: [] for name in samples}
        for index in range(args.runs):  # interleaved, so drift hits every case alike
            folder = directory / f"pixels-{index}"
            folder.mkdir()
            before = os.getloadavg()[0]
            samples["pixels"].append({"engine_s": pixel_seconds(paths, folder), "submit_s": 0.0})
            loads["pixels"].append([round(before, 2), round(os.getloadavg()[0], 2)])
            for name, broker in brokers.items():
                folder = directory / f"{name}-{index}"
                folder.mkdir()
                before = os.getloadavg()[0]
                samples[name].append(engine_run(paths, folder, broker, args.database_url, args.processes))
                loads[name].append([round(before, 2), round(os.getloadavg()[0], 2)])

    n = args.count
    pixel_s = statistics.median(r["engine_s"] for r in samples["pixels"])
    cases = {}
    for name in brokers:
        engine_s = statistics.median(r["engine_s"] for r in samples[name])
        submit_s = statistics.median(r["submit_s"] for r in samples[name])
        cases[name] = {
            "engine_s_median": round(engine_s, 3),
            "engine_s_runs": [round(r["engine_s"], 3) for r in samples[name]],
            "engine_ms_per_item": round(engine_s / n * 1000, 2),
            "items_per_s": round(n / engine_s, 1),
            "submit_ms_per_item": round(submit_s / n * 1000, 2),
            "overhead_ms_per_item": round((engine_s - pixel_s) / n * 1000, 2),
            "throughput_of_pixels": round(pixel_s / engine_s, 3),
            "load_average_runs": loads[name],
        }
    report = {
        "what": (f"{n} JPEGs of {args.size}x{args.size} px, first submit to last processed, through a real "
                 f"`kiln worker --processes {args.processes}`; "
                 "pixels = identify + medium + thumbnail (+ placeholder) + metadata in-process"),
        "count": n,
        "processes": args.processes,
        "runs": args.runs,
        "versions": versions(args.database_url),
        "pixels": {"s_median": round(pixel_s, 3), "ms_per_item": round(pixel_s / n * 1000, 2),
                   "s_runs": [round(r["engine_s"], 3) for r in samples["pixels"]],
                   "load_average_runs": loads["pixels"]},
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "brokers": cases,
        "per_item": statements,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"{n} images of {args.size}x{args.size} px, median of {args.runs} runs ({report['versions']['database']})")
    print(f"{'case':<12}{'total s':>9}{'ms/item':>9}{'items/s':>9}{'submit ms/item':>16}{'overhead ms/item':>18}"
          f"{'of pixels':>11}  load average (1 min) before/after each run")
    print(f"{'pixels':<12}{pixel_s:>9.2f}{pixel_s / n * 1000:>9.2f}{n / pixel_s:>9.1f}{'':>16}{'':>18}{'':>11}  "
          f"{loads['pixels']}")
    for name, r in cases.items():
        print(f"{name:<12}{r['engine_s_median']:>9.2f}{r['engine_ms_per_item']:>9.2f}{r['items_per_s']:>9.1f}"
              f"{r['submit_ms_per_item']:>16.2f}{r['overhead_ms_per_item']:>18.2f}{r['throughput_of_pixels']:>11.1%}  "
              f"{loads[name]}")
    print("per item: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in statements.items()))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
