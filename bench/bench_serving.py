"""Serving speed and upload memory: Kiln in production shape against Kiln in development shape.

    python bench/bench_serving.py [--out bench/results/serving.json] [--duration 10]
                                  [--databases sqlite,postgresql] [--quick]
                                  [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Needs wrk (Debian: ``apt-get install -y wrk``).

A site of 10,000 processed public images by 500 people with 300 tags is built with Kiln's own
models, migrations and stores: bulk inserts in batches, and per item a small original, a medium
and both thumbnails (real JPEGs made once with Pillow, saved per item through ``rt.stores``), the
rendition specs and fingerprints of the image kind, the processing ledger's finished steps, a
blurhash placeholder on most items. Items are skewed like a real site: one person holds ~1,500,
one tag is on a quarter of everything, publication dates spread over a year.

Then, for each database (SQLite file, a fresh PostgreSQL database ``kiln_bench``) and each shape,
a real ``kiln serve`` (gunicorn + uvicorn workers, web only) is started and driven by
``wrk -t2 -c{10,50} --latency`` from 127.0.0.1 with a browser's ``Accept-Encoding``:

  baseline     development shape: ``kiln serve --workers 1 --no-worker``, anonymous page cache off
               (``KILN_WEB__PAGE_CACHE_ENTRIES=0``)
  production   ``kiln serve --workers 2 --no-worker`` (one per core), default settings

on the front page, a busy user's gallery, a media page, a busy tag page, the site Atom feed and
GET /api/v1/media. Each endpoint is checked once (status 200), warmed for 2 s, then measured.
Socket errors, timeouts and non-2xx answers are counted and a run with any is marked, not hidden;
so is a stall (fewer answers than connections: wrk counts no error for a request still open at the end).

Upload memory (production shape, SQLite): 20 clients, each with its own API token, POST a 500 MiB
multipart body to /api/v1/media at ~5 MiB/s over raw sockets (zeros named .mp4: the content check
refuses them once received, which is fine, the server is measured while it receives). The summed
VmRSS of the server's whole process group is sampled every 0.5 s. Then an over-limit request:
headers announcing a body past the limit, the body sent slowly, and how far it got before the
server answered.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fixtures_images makes the pictures

SHAPES = {
    "baseline": {"workers": 1, "env": {"KILN_WEB__PAGE_CACHE_ENTRIES": "0"}},
    "production": {"workers": 2, "env": {}},
}
TARGET_RPS, TARGET_P99_MS, TARGET_CONNECTIONS = 400.0, 100.0, 50
MEMORY_TARGET_MIB = 64.0
# GNU MediaGoblin v0.15, one waitress process, SQLite, 140 media, same hardware class (external run).
MEDIAGOBLIN = {
    "what": "GNU MediaGoblin v0.15, one waitress process, SQLite, 140 media, same hardware class; "
            "measured outside this run, quoted for reference",
    "front": {"rps": 39.0, "p99_ms_10": 412.0, "p99_ms_50": 1580.0},
    "media": {"rps": 136.0},
    "feed": {"rps": 71.0},
}
PASSWORD = "bench-password-not-secret"
CHUNK = 256 * 1024
WARM_UPLOADS = 6


# The site ---------------------------------------------------------------------------------------
def make_pictures(directory: Path, variants: int) -> list[dict[str, Any]]:
    """A few real JPEGs (original, medium, thumbnail, thumbnail_2x) and their blurhash, made once."""
    from tests.fixtures_images import photo

    from kiln.mediatypes import placeholder

    sizes = {"original": (960, 720), "medium": (640, 480), "thumbnail": (180, 135), "thumbnail_2x": (360, 270)}
    pictures = []
    for seed in range(variants):
        files = {}
        for name, (w, h) in sizes.items():
            out = io.BytesIO()
            photo(w, h, seed=seed + 11).save(out, "JPEG", quality=82)
            files[name] = {"bytes": out.getvalue(), "width": w, "height": h}
        thumb = directory / f"thumb-{seed}.jpg"
        thumb.write_bytes(files["thumbnail"]["bytes"])
        pictures.append({"files": files, "blurhash": placeholder(thumb)})
    return pictures


def zipf_weights(count: int, exponent: float) -> list[float]:
    return [1.0 / (rank + 1) ** exponent for rank in range(count)]


def build_site(rt: Any, media_count: int, user_count: int, tag_count: int, workdir: Path) -> dict[str, Any]:
    """Fill an empty, migrated database and the stores with a processed site; return its facts."""
    from sqlalchemy import func, insert, select, text

    from kiln.accounts.models import User, UserPrivilege
    from kiln.accounts.services import hash_password
    from kiln.db import changes
    from kiln.media.licenses import LICENSES
    from kiln.media.models import MediaEntry, Rendition, Tag, media_tags, new_key_token
    from kiln.mediatypes.image import KIND
    from kiln.processing.models import ProcessingStep

    started = time.perf_counter()
    rng = random.Random(20240601)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pictures = make_pictures(workdir, 6)
    steps = KIND.steps(rt.settings)
    specs = {spec.name: spec for step in steps for spec in step.renditions}
    password_hash = hash_password(PASSWORD)  # one hash for all: argon2 per user would take minutes

    users = [{"id": i, "username": f"user{i:03}", "email": f"user{i:03}@example.org", "password_hash": password_hash,
              "display_name": f"Person {i}", "bio": "", "created": now - dt.timedelta(days=400)}
             for i in range(1, user_count + 1)]
    privileges = [{"user_id": u["id"], "name": name} for u in users
                  for name in ("uploader", "commenter", "reporter", "active")]
    tags = [{"id": i, "slug": f"tag{i:03}", "name": f"Tag {i}"} for i in range(1, tag_count + 1)]
    tags[0].update(slug="landscape", name="Landscape")
    owner_weights = zipf_weights(user_count, 0.9)
    owner_weights[0] = sum(owner_weights) * 0.18  # one prolific person: ~15% of the site
    tag_weights = zipf_weights(tag_count, 1.0)
    tag_ids = [t["id"] for t in tags]
    owners = rng.choices([u["id"] for u in users], weights=owner_weights, k=media_count)

    media, renditions, links, ledger = [], [], [], []
    files: list[tuple[str, list[str], bytes]] = []
    for index in range(media_count):
        media_id = index + 1
        picture = pictures[index % len(pictures)]
        published = now - dt.timedelta(seconds=rng.randrange(365 * 86400))
        token = new_key_token()
        entry = MediaEntry(id=media_id, key_token=token)  # only for rendition_key
        original = picture["files"]["original"]
        original_key = ["entries", str(media_id), "original.jpg"]
        media.append({
            "id": media_id, "owner_id": owners[index], "kind": "image", "state": "processed",
            "title": f"Photograph {media_id}", "description": f"A view, *number {media_id}*." if index % 3 else "",
            "license": LICENSES[index % len(LICENSES)].url, "visibility": "public", "key_token": token,
            "created": published - dt.timedelta(minutes=2), "updated": published, "published": published,
            "original_key": original_key, "original_store": "originals", "original_name": f"IMG_{media_id}.jpg",
            "mime_type": "image/jpeg", "size_bytes": len(original["bytes"]), "sha256": f"{media_id:064x}",
            "width": original["width"], "height": original["height"],
            "exif": {"Model": "Bench Camera", "ExposureTime": "1/250"} if index % 2 else None,
            "info": {"blurhash": picture["blurhash"]} if index % 5 else {},
        })
        files.append(("originals", original_key, original["bytes"]))
        for name in ("medium", "thumbnail", "thumbnail_2x"):
            spec, made = specs[name], picture["files"][name]
            key = entry.rendition_key(f"{name}-{spec.fingerprint()[:10]}.jpg")
            renditions.append({"media_id": media_id, "name": name, "key": key, "mime_type": "image/jpeg",
                               "width": made["width"], "height": made["height"], "size_bytes": len(made["bytes"]),
                               "spec_fingerprint": spec.fingerprint(), "spec": dict(spec.params),
                               "created": published})
            files.append(("public", key, made["bytes"]))
        for position, step in enumerate(steps):
            ledger.append({"media_id": media_id, "name": step.name, "position": position,
                           "fingerprint": step.fingerprint(), "state": "done", "attempts": 1, "progress": 1.0,
                           "started": published - dt.timedelta(seconds=5), "finished": published,
                           "created": published - dt.timedelta(minutes=2)})
        chosen = set(rng.choices(tag_ids, weights=tag_weights, k=rng.choice((0, 1, 1, 2, 2, 3, 4))))
        if index % 4 == 0:
            chosen.add(1)  # the busy tag
        links += [{"media_id": media_id, "tag_id": tag_id} for tag_id in sorted(chosen)]

    with rt.sessions() as session:
        for model, rows in ((User, users), (UserPrivilege, privileges), (Tag, tags), (MediaEntry, media),
                            (Rendition, renditions), (ProcessingStep, ledger)):
            for start in range(0, len(rows), 2000):
                session.execute(insert(model), rows[start:start + 2000])
        for start in range(0, len(links), 5000):
            session.execute(insert(media_tags), links[start:start + 5000])
        changes.bump(session.connection())  # the bulk inserts went round the ORM's change hook
        if rt.engine.dialect.name == "postgresql":  # ids were given: move the sequences past them
            for table in ("users", "user_privileges", "tags", "media", "renditions", "processing_steps"):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))"))
        session.commit()
    inserted = time.perf_counter()

    def save(item: tuple[str, list[str], bytes]) -> int:
        store, key, data = item
        return getattr(rt.stores, store).save(key, io.BytesIO(data))

    with ThreadPoolExecutor(8) as pool:  # the local store fsyncs each file; overlap the waits
        stored_bytes = sum(pool.map(save, files, chunksize=64))

    with rt.sessions() as session:
        busy_user = session.scalar(select(User.username).join(MediaEntry, MediaEntry.owner_id == User.id)
                                   .group_by(User.username).order_by(func.count().desc()).limit(1))
        busy_user_items = session.scalar(select(func.count()).select_from(MediaEntry)
                                         .join(User, User.id == MediaEntry.owner_id)
                                         .where(User.username == busy_user))
        busy_tag_items = session.scalar(select(func.count()).select_from(media_tags).where(media_tags.c.tag_id == 1))
        sample = session.scalar(select(MediaEntry.id).join(User, User.id == MediaEntry.owner_id)
                                .where(User.username == busy_user).order_by(MediaEntry.published.desc())
                                .offset(40).limit(1))
    return {
        "media": media_count, "users": user_count, "tags": tag_count, "tag_links": len(links),
        "renditions": len(renditions), "files_stored": len(files), "stored_mib": round(stored_bytes / 2**20, 1),
        "with_blurhash": sum(1 for m in media if m["info"]),
        "busy_user": busy_user, "busy_user_items": busy_user_items, "busy_tag": "landscape",
        "busy_tag_items": busy_tag_items, "sample_media_id": sample,
        "build_s": round(time.perf_counter() - started, 1), "insert_s": round(inserted - started, 1),
    }


@contextlib.contextmanager
def database(kind: str, folder: Path, server_url: str) -> Iterator[str]:
    """A new, migrated database: a SQLite file, or ``kiln_bench`` made afresh on the server."""
    from sqlalchemy import create_engine, text

    from kiln.db.migrate import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{folder / 'kiln.db'}"
        upgrade(url)
        yield url
        return
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "kiln_bench" WITH (FORCE)'))
        conn.execute(text('CREATE DATABASE "kiln_bench"'))
    url = server_url.rsplit("/", 1)[0] + "/kiln_bench"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text('DROP DATABASE IF EXISTS "kiln_bench" WITH (FORCE)'))
        admin.dispose()


# The server -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def kiln_server(data: Path, db_url: str, workers: int, env_extra: dict[str, str],
                log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``kiln serve`` (web only) in its own process group; stopped, and the group killed, on exit."""
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("KILN_")}
    env.update({"KILN_DATABASE_URL": db_url, "KILN_BASE_URL": base, **env_extra})
    command = [sys.executable, "-m", "kiln", "--data", str(data), "serve", "--port", str(port),
               "--workers", str(workers), "--no-worker"]
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
        time.sleep(1.0)  # let every worker finish booting, not only the first to answer
        yield base, proc
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


def group_rss_mib(session_id: int) -> float:
    """Summed VmRSS of every process in the server's session (the gunicorn master and its workers)."""
    total_kib = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) != session_id:  # field 6 of stat: session id
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total_kib / 1024


# wrk ---------------------------------------------------------------------------------------------
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, p50/p99 (ms) and every error wrk counts, from ``wrk --latency`` output."""
    def find(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, output, re.MULTILINE)

    rps, done = find(r"^Requests/sec:\s+([\d.]+)"), find(r"^\s+(\d+) requests in ([\d.]+)(\w+)")
    p50, p99 = find(r"^\s+50%\s+(\S+)"), find(r"^\s+99%\s+(\S+)")
    if not (rps and done and p50 and p99):
        raise SystemExit("could not read wrk's output:\n" + output)
    errors = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    bad = find(r"Non-2xx or 3xx responses: (\d+)")
    socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                             (int(n) for n in errors.groups()) if errors else (0, 0, 0, 0), strict=True))
    non_2xx = int(bad.group(1)) if bad else 0
    return {"rps": round(float(rps.group(1)), 1), "p50_ms": round(_ms(p50.group(1)), 2),
            "p99_ms": round(_ms(p99.group(1)), 2), "requests": int(done.group(1)), "non_2xx": non_2xx,
            "socket_errors": socket_errors, "clean": non_2xx == 0 and not any(socket_errors.values())}


def wrk(url: str, connections: int, seconds: float) -> dict[str, Any]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s",
               "-H", "Accept-Encoding: gzip, br", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def endpoints(site: dict[str, Any]) -> dict[str, str]:
    user = site["busy_user"]
    return {"front": "/", "gallery": f"/u/{user}", "media": f"/u/{user}/m/{site['sample_media_id']}",
            "tag": f"/tag/{site['busy_tag']}", "feed": "/feeds/atom", "api": "/api/v1/media"}


def measure_shape(base: str, paths: dict[str, str], seconds: float, warm_seconds: float,
                  log: Path) -> list[dict[str, Any]]:
    import httpx

    rows = []
    for name, path in paths.items():
        answer = httpx.get(base + path, headers={"Accept-Encoding": "gzip, br"}, timeout=30)
        if answer.status_code != 200:
            raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:500]}")
        wrk(base + path, 10, warm_seconds)
        for connections in (10, 50):
            load = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
            row = {"endpoint": name, "path": path, "connections": connections, "bytes": len(answer.content),
                   "encoding": answer.headers.get("content-encoding", ""), "load_1m_before": load,
                   **wrk(base + path, connections, seconds)}
            # wrk counts no error for a request still unanswered when the run ends: fewer answers than
            # connections means the server stalled, which must not read as a clean (if slow) row.
            row["stalled"] = row["requests"] < connections
            if row["stalled"] or not row["clean"]:
                row["clean"] = False
                row["server_log_tail"] = log.read_text(errors="replace")[-2000:]
            rows.append(row)
    return rows


# Upload memory ----------------------------------------------------------------------------------
def multipart_head(boundary: str, filename: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()


def slow_upload(port: int, token: str, size: int, rate: float, stop_after: int | None = None) -> dict[str, Any]:
    """POST a multipart body of ``size`` file bytes at ``rate`` bytes/s over a raw socket.

    Stops sending when the server answers (or after ``stop_after`` body bytes); returns the status,
    the body bytes sent before the answer came and the time taken.
    """
    boundary = "benchboundary" + os.urandom(8).hex()
    head, tail = multipart_head(boundary, "clip.mp4"), f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + size + len(tail)
    request = (f"POST /api/v1/media HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n"
               "Connection: close\r\n\r\n").encode()
    zeros = bytes(CHUNK)
    sent, started, answered = 0, time.monotonic(), False
    with socket.create_connection(("127.0.0.1", port), timeout=300) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)  # so "sent" is close to "read"
        try:
            sock.sendall(request + head)
            while sent < size and (stop_after is None or sent < stop_after):
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sock.recv(1, socket.MSG_PEEK)  # an answer, or the server closing: either way it stopped
                    answered = True
                    break
                sock.setblocking(True)
                piece = zeros[:min(CHUNK, size - sent)]
                sock.sendall(piece)
                sent += len(piece)
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            else:
                if sent >= size:
                    sock.sendall(tail)
        except (BrokenPipeError, ConnectionResetError):
            answered = True
        sock.setblocking(True)
        reply = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                reply += chunk
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else None
    body = reply.split(b"\r\n\r\n", 1)[1][:300].decode(errors="replace") if b"\r\n\r\n" in reply else ""
    return {"status": status, "sent_bytes": sent, "seconds": round(time.monotonic() - started, 1),
            "answered_early": answered and sent < size, "body": body}


def make_tokens(rt: Any, count: int) -> list[str]:
    from kiln.accounts import services as accounts

    tokens = []
    with rt.sessions() as session:
        for index in range(count):
            user = accounts.create_user(session, f"uploader{index:02}", f"uploader{index:02}@example.org",
                                        PASSWORD, verified=True)
            tokens.append(accounts.create_api_token(session, user, "bench", "write"))
        session.commit()
    return tokens


def upload_memory(rt: Any, data: Path, db_url: str, log: Path, clients: int, size: int, rate: float) -> dict[str, Any]:
    """Production shape on this database: RSS while ``clients`` upload ``size`` bytes each, then an over-limit try."""
    needed = clients * size * 2.5  # the spooled upload and the queue's copy, with room to spare
    free = min(shutil.disk_usage(data).free, shutil.disk_usage(tempfile.gettempdir()).free)
    scaled = ""
    if free < needed:
        size_was, size = size, int(free / (clients * 2.5)) // CHUNK * CHUNK
        scaled = f"not enough free disk for {clients} x {size_was / 2**20:.0f} MiB; scaled to {size / 2**20:.0f} MiB"
    limit = size + 16 * 2**20
    tokens = make_tokens(rt, clients + 1)
    env = {"KILN_MAX_UPLOAD_BYTES": str(limit)}
    with kiln_server(data, db_url, SHAPES["production"]["workers"], env, log) as (base, proc):
        port = int(base.rsplit(":", 1)[1])
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(group_rss_mib(proc.pid))
                stop.wait(0.5)

        cold = group_rss_mib(proc.pid)
        # Each worker imports the upload path's libraries on its first upload: a one-time cost, paid
        # here by a few small uploads (refused like the big ones) so the baseline is a warm server.
        with ThreadPoolExecutor(WARM_UPLOADS) as pool:
            warm = list(pool.map(lambda token: slow_upload(port, token, 2**20, 64 * 2**20), tokens[:WARM_UPLOADS]))
        time.sleep(1.0)
        before = statistics.median(group_rss_mib(proc.pid) for _ in range(5))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            with ThreadPoolExecutor(clients) as pool:
                results = list(pool.map(lambda token: slow_upload(port, token, size, rate), tokens[:clients]))
        finally:
            stop.set()
            sampler.join()
        after = group_rss_mib(proc.pid)
        over = slow_upload(port, tokens[clients], limit + 256 * 2**20, rate=8 * 2**20, stop_after=limit + 32 * 2**20)
    peak = max(samples, default=before)
    statuses: dict[str, int] = {}
    for result in results:
        statuses[str(result["status"])] = statuses.get(str(result["status"]), 0) + 1
    return {
        "database": "sqlite", "shape": "production", "clients": clients, "bytes_each": size,
        "mib_each": round(size / 2**20, 1), "rate_mib_s_each": round(rate / 2**20, 2), "scaled": scaled,
        "upload_limit_bytes": limit, "seconds": max(r["seconds"] for r in results),
        "statuses": statuses, "sample_reply": results[0]["body"],
        "warm_up": {"uploads": WARM_UPLOADS, "statuses": sorted({str(w["status"]) for w in warm}),
                    "rss_cold_mib": round(cold, 1)},
        "rss_before_mib": round(before, 1), "rss_peak_mib": round(peak, 1), "rss_after_mib": round(after, 1),
        "growth_mib": round(peak - before, 1), "growth_from_cold_mib": round(peak - cold, 1),
        "samples_mib": [round(x, 1) for x in samples],
        "pass": peak - before <= MEMORY_TARGET_MIB,
        "over_limit": {"announced_bytes": limit + 256 * 2**20, **over,
                       "sent_mib": round(over["sent_bytes"] / 2**20, 2),
                       "pass": over["status"] == 413 and over["answered_early"] and over["sent_bytes"] < limit},
    }


# The report -------------------------------------------------------------------------------------
def machine(server_url: str | None) -> dict[str, Any]:
    import sqlite3

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    info = {"cpus": os.cpu_count(), "cpu": cpu, "machine": platform.machine(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "wrk": (wrk_version.stdout or wrk_version.stderr).split("\n")[0].strip()}
    if server_url:
        from sqlalchemy import create_engine, text

        engine = create_engine(server_url)
        with contextlib.suppress(Exception), engine.connect() as conn:
            info["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
        engine.dispose()
    return info


def compare(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Production/baseline ratios per database, endpoint and connections; the targets' checks."""
    index = {(r["database"], r["shape"], r["endpoint"], r["connections"]): r for r in rows}
    ratios, checks = [], []
    for (db, shape, endpoint, connections), row in index.items():
        if shape != "production":
            continue
        base = index.get((db, "baseline", endpoint, connections))
        if base:
            ratios.append({"database": db, "endpoint": endpoint, "connections": connections,
                           "comparable": row["clean"] and base["clean"],  # a stalled or failing row is not
                           "rps_ratio": round(row["rps"] / base["rps"], 2) if base["rps"] else None,
                           "p99_ratio": round(row["p99_ms"] / base["p99_ms"], 2) if base["p99_ms"] else None})
        if connections == TARGET_CONNECTIONS:
            checks.append({"database": db, "endpoint": endpoint, "rps": row["rps"], "p99_ms": row["p99_ms"],
                           "clean": row["clean"],
                           "pass": row["rps"] >= TARGET_RPS and row["p99_ms"] <= TARGET_P99_MS and row["clean"]})
    return ratios, checks


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'db':<11}{'shape':<11}{'endpoint':<9}{'conn':>5}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}  errors")
    for r in rows:
        errors = "" if r["clean"] else (f"non-2xx {r['non_2xx']}, socket {r['socket_errors']}"
                                        + (", STALLED" if r.get("stalled") else ""))
        print(f"{r['database']:<11}{r['shape']:<11}{r['endpoint']:<9}{r['connections']:>5}{r['rps']:>9.1f}"
              f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}  {errors}")


def markdown(report: dict[str, Any]) -> str:
    """The tables docs/benchmarks.md quotes, from a results file."""
    rows = {(r["database"], r["shape"], r["endpoint"], r["connections"]): r for r in report["rows"]}
    ratios = {(r["database"], r["endpoint"], r["connections"]): r for r in report["ratios_production_over_baseline"]}
    lines = []
    for db in dict.fromkeys(r["database"] for r in report["rows"]):
        lines += [f"| {db} | conn | baseline req/s | p50 / p99 ms | **production req/s** | p50 / p99 ms "
                  "| req/s × | p99 × |", "|---|---|---|---|---|---|---|---|"]
        for endpoint in report["endpoints"]:
            for connections in (10, 50):
                base, prod = rows.get((db, "baseline", endpoint, connections)), rows.get((db, "production", endpoint,
                                                                                        connections))
                ratio = ratios.get((db, endpoint, connections))
                if not (base and prod and ratio):
                    continue
                flag = "".join(f" ({shape}: {'stalled' if row.get('stalled') else 'errors'})"
                               for shape, row in (("baseline", base), ("production", prod)) if not row["clean"])
                lines.append(f"| {endpoint}{flag} | {connections} | {base['rps']:.0f} | {base['p50_ms']:.0f} / "
                             f"{base['p99_ms']:.0f} | **{prod['rps']:.0f}** | {prod['p50_ms']:.1f} / "
                             f"{prod['p99_ms']:.0f} | " + (f"{ratio['rps_ratio']} | {ratio['p99_ratio']} |" if not flag
                                                            else "— | — |"))
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serving.json")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per endpoint and load")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--media", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--tags", type=int, default=300)
    parser.add_argument("--upload-clients", type=int, default=20)
    parser.add_argument("--upload-mib", type=float, default=500.0, help="size of each upload")
    parser.add_argument("--upload-rate", type=float, default=5.0, help="MiB/s each upload client sends")
    parser.add_argument("--no-uploads", action="store_true", help="skip the upload memory run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s loads, 20 MiB uploads")
    parser.add_argument("--markdown", action="store_true", help="print the tables of the --out file; run nothing")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed; on Debian: apt-get install -y wrk")
    if args.quick:
        args.duration, args.upload_mib = 2.0, 20.0
    databases = args.databases.split(",")
    unknown = set(databases) - {"sqlite", "postgresql"}
    if unknown:
        raise SystemExit(f"unknown database {', '.join(sorted(unknown))}: choose sqlite and/or postgresql")

    from kiln.config import load_settings
    from kiln.runtime import build_runtime

    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    sites: dict[str, dict[str, Any]] = {}
    memory: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="kiln-bench-serving-") as tmp:
        for db in databases:
            folder = Path(tmp) / db
            data = folder / "data"
            data.mkdir(parents=True)
            with database(db, folder, args.postgres_url) as db_url:
                rt = build_runtime(load_settings(data_dir=data, database_url=db_url))
                try:
                    print(f"{db}: building {args.media} media ...", flush=True)
                    site = sites[db] = build_site(rt, args.media, args.users, args.tags, folder)
                    print(f"{db}: built in {site['build_s']} s (inserts {site['insert_s']} s)", flush=True)
                    paths = endpoints(site)
                    for shape, spec in SHAPES.items():
                        log = folder / f"server-{shape}.log"
                        with kiln_server(data, db_url, spec["workers"], spec["env"], log) as (base, _):
                            measured = measure_shape(base, paths, args.duration, 1.0 if args.quick else 2.0, log)
                        shaped = [{"database": db, "shape": shape, **row} for row in measured]
                        print_rows(shaped)
                        rows += shaped
                    if db == "sqlite" and not args.no_uploads:
                        print(f"{db}: upload memory run ...", flush=True)
                        memory = upload_memory(rt, data, db_url, folder / "upload-server.log", args.upload_clients,
                                               int(args.upload_mib * 2**20), args.upload_rate * 2**20)
                        print(json.dumps(memory, indent=2), flush=True)
                finally:
                    rt.close()

    ratios, checks = compare(rows)
    report = {
        "what": "Kiln serving a site of processed images, wrk -t2 from 127.0.0.1 with Accept-Encoding: gzip, br; "
                "baseline = kiln serve --workers 1 --no-worker with the anonymous page cache off, "
                "production = kiln serve --workers 2 --no-worker",
        "duration_s": args.duration, "quick": args.quick,
        "machine": machine(args.postgres_url if "postgresql" in databases else None),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "shapes": {name: {"workers": s["workers"], "env": s["env"]} for name, s in SHAPES.items()},
        "datasets": sites, "endpoints": endpoints(next(iter(sites.values()))) if sites else {},
        "rows": rows, "ratios_production_over_baseline": ratios,
        "targets": {"rule": f"production at {TARGET_CONNECTIONS} connections: >= {TARGET_RPS:.0f} req/s, "
                            f"p99 <= {TARGET_P99_MS:.0f} ms, no errors; every endpoint",
                    "checks": checks, "pass": bool(checks) and all(c["pass"] for c in checks)},
        "mediagoblin_reference": MEDIAGOBLIN,
        "upload_memory": memory,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("production / baseline:")
    for r in ratios:
        print(f"  {r['database']:<11}{r['endpoint']:<9}{r['connections']:>4}  req/s x{r['rps_ratio']}  "
              f"p99 x{r['p99_ratio']}")
    print("targets:", "PASS" if report["targets"]["pass"] else "FAIL",
          [f"{c['database']}/{c['endpoint']}" for c in checks if not c["pass"]])
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
