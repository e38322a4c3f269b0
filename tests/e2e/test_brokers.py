"""The processing engine against every broker Kiln supports, with a real `kiln worker`.

The embedded default (kombu's filesystem transport, no server), Redis and RabbitMQ, each chosen by
``KILN_BROKER_URL``. Uploads go in through the media service, whose runtime rings the bell on the
same broker; a `kiln worker --processes 2` subprocess answers. The servers always run where the
suite runs (CI starts them): one that cannot be reached fails the test, it never skips.

Misbehaving steps are injected without a hook in Kiln's code: the worker runs with a PYTHONPATH
entry holding a ``sitecustomize.py`` (written here) that wraps the image kind's ``run_step`` in
every worker process (the prefork children inherit it). A file whose bytes carry a marker then
SIGKILLs its own process (poison), raises a transient failure once (flaky), or every step sleeps
a little (so that the chaos test's kills land mid-step). The helpers here are shared with
``test_chaos.py``.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kiln.accounts import services as accounts
from kiln.config import Settings
from kiln.media import services as media_service
from kiln.media.garbage import gc
from kiln.media.models import MediaEntry, Rendition
from kiln.processing import ledger
from kiln.processing.celery_app import lanes
from kiln.processing.outbox import QUEUE as OUTBOX_QUEUE
from kiln.runtime import Runtime, build_runtime
from tests.conftest import PG_URL, fresh_database, make_settings
from tests.fixtures_images import make_truncated_jpeg, photo

pytestmark = [pytest.mark.slow, pytest.mark.db]

BROKERS = {
    "embedded": None,
    "redis": "redis://127.0.0.1:6379/7",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
# Each broker meets one database, not every pair: the embedded queue runs with SQLite (the one-machine
# default), Redis and RabbitMQ with PostgreSQL (as several machines run), so the SQLite run of the suite
# takes the first and the PostgreSQL run the other two. What a broker carries is the same whatever the
# database; what the database does (the ledger, its locks) is met in each run.
ON_THIS_DATABASE = {name: url for name, url in BROKERS.items() if (name == "embedded") == (PG_URL is None)}
RENDITIONS = {"medium", "thumbnail", "thumbnail_2x"}
POISON = b"KILN-TEST-POISON"  # in a JPEG comment: the medium step SIGKILLs its own process
FLAKY = b"KILN-TEST-FLAKY"  # the thumbnail step fails once with a transient error

SITECUSTOMIZE = '''\
"""Test-only: wraps ImageKind.run_step in `kiln worker` processes started by Kiln's e2e tests."""
import importlib.abc
import importlib.machinery
import os
import sys
import time

DELAY = float(os.environ.get("KILN_E2E_STEP_DELAY") or 0)
FLAGS = os.environ.get("KILN_E2E_FLAGS", "")
POISON = {poison!r}
FLAKY = {flaky!r}


def _patch(module):
    from kiln.mediatypes.base import TransientFailure

    real = module.ImageKind.run_step

    def run_step(self, step, ctx):
        data = ctx.source.read_bytes()
        if step == "medium" and POISON in data:
            os.kill(os.getpid(), 9)
        if step == "thumbnail" and FLAKY in data:
            marker = os.path.join(FLAGS, "flaky-failed")
            if not os.path.exists(marker):
                with open(marker, "w") as fh:
                    fh.write(repr(time.time()))
                raise TransientFailure("Injected: the disk was full.", code="disk_full")
            with open(os.path.join(FLAGS, "flaky-retried"), "w") as fh:
                fh.write(repr(time.time()))
        if DELAY:  # the chaos test kills processes while they are here
            asleep = os.path.join(FLAGS, "asleep-%d" % os.getpid())
            open(asleep, "w").close()
            time.sleep(DELAY)
            os.unlink(asleep)
        return real(self, step, ctx)

    module.ImageKind.run_step = run_step


class _PatchImageKind(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "kiln.mediatypes.image":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _PatchImageKind())
'''.replace("{poison!r}", repr(POISON)).replace("{flaky!r}", repr(FLAKY))


# Brokers -----------------------------------------------------------------------------------------

@contextmanager
def exclusive_broker(url: str | None) -> Iterator[None]:
    """Hold the broker server for this test alone (other test runs on this machine wait), emptied of
    whatever earlier runs left in Kiln's lanes. An unreachable server fails the test."""
    if url is None:  # the embedded queue lives in the test's own data directory
        yield
        return
    with open("/tmp/kiln-e2e-brokers.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _empty(url)
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _empty(url: str) -> None:
    if url.startswith("redis://"):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            client.flushdb()
        except redis.RedisError as exc:
            pytest.fail(f"Redis is not reachable at {url}: {exc}")
        finally:
            client.close()
        return
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=2)
            channel = conn.channel()
            for name in [*lanes(), OUTBOX_QUEUE]:
                channel.queue_delete(name)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server fails the test
        pytest.fail(f"RabbitMQ is not reachable at {url}: {exc}")


# A real worker -----------------------------------------------------------------------------------

@dataclass
class WorkerProcess:
    """`kiln worker` in its own session, so every process it forks can be found and stopped."""

    data: Path
    env: dict[str, str]
    log: Path
    processes: int = 2
    proc: subprocess.Popen[bytes] | None = None
    groups: list[int] = field(default_factory=list)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kiln", "--data", str(self.data), "worker",
                 "--processes", str(self.processes), "--loglevel", "INFO"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.groups.append(self.proc.pid)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def children(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in found.split()]

    def wait_ready(self, timeout: float = 60) -> None:
        """Until this start of the worker has logged that it is ready (its pool is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "the worker exited:\n" + self.tail()
            if self.log.read_text(errors="replace").count(" ready.") >= len(self.groups):
                return
            time.sleep(0.1)
        raise AssertionError("the worker did not start:\n" + self.tail())

    def kill_main(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait()

    def stop(self) -> None:
        """Warm shutdown, then SIGKILL for everything left in any group this worker ever had."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        for group in self.groups:
            with suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.stray():
            time.sleep(0.1)

    def stray(self) -> list[str]:
        left = []
        for group in self.groups:
            found = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True).stdout
            left += found.split()
        return left

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


@dataclass
class Site:
    """A site's data directory and database, a runtime that rings bells on the broker, and its worker."""

    rt: Runtime
    worker: WorkerProcess
    flags: Path

    @property
    def settings(self) -> Settings:
        return self.rt.settings


@contextmanager
def running_site(tmp_path: Path, broker: str | None, step_delay: float = 0.0, backoff_base: float = 10.0,
                 processes: int = 2) -> Iterator[Site]:
    hooks, flags, data = tmp_path / "hooks", tmp_path / "flags", tmp_path / "data"
    for folder in (hooks, flags):
        folder.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    with fresh_database(tmp_path) as db_url, exclusive_broker(broker):
        env = {key: value for key, value in os.environ.items() if not key.startswith("KILN_")}
        env.update({
            "KILN_DATABASE_URL": db_url,
            "KILN_PROCESSING__SWEEP_INTERVAL": "1",
            "KILN_PROCESSING__LEASE_SECONDS": "6",
            "KILN_PROCESSING__BACKOFF_BASE": str(backoff_base),
            "KILN_E2E_STEP_DELAY": str(step_delay),
            "KILN_E2E_FLAGS": str(flags),
            "PYTHONPATH": os.pathsep.join([str(hooks), *filter(None, [os.environ.get("PYTHONPATH")])]),
        })
        if broker:
            env["KILN_BROKER_URL"] = broker
        settings = make_settings(data, db_url, broker_url=broker)
        worker = WorkerProcess(data, env, tmp_path / "worker.log", processes=processes)
        rt = build_runtime(settings)  # its dispatcher is Celery on the same broker
        try:
            worker.start()
            worker.wait_ready()
            yield Site(rt, worker, flags)
        finally:
            worker.stop()
            rt.close()
            assert not worker.stray(), f"worker processes left running: {worker.stray()}"


# Uploads -------------------------------------------------------------------------------------------

def small_jpeg(folder: Path, name: str, seed: int, size: tuple[int, int] = (400, 300),
               comment: bytes = b"") -> Path:
    path = folder / name
    options = {"comment": comment} if comment else {}
    photo(*size, seed=seed).save(path, quality=85, **options)
    return path


def upload_all(site: Site, files: list[Path]) -> dict[str, int]:
    """Submit each file as the test user, as the web upload does; returns media ids by file name."""
    ids = {}
    with site.rt.sessions() as session:
        user = accounts.create_user(session, "tess", "tess@example.com", "correct horse", verified=True)
        session.commit()
        for path in files:
            with path.open("rb") as fh:
                entry = media_service.submit(site.rt, session, user, fh, path.name, media_service.MediaFields())
            ids[path.name] = entry.id
    return ids


def states(rt: Runtime) -> dict[int, tuple[str, str | None, str | None]]:
    with rt.sessions() as session:
        rows = session.execute(select(MediaEntry.id, MediaEntry.state, MediaEntry.error_code,
                                      MediaEntry.error_message))
        return {row[0]: (row[1], row[2], row[3]) for row in rows}


def wait_settled(site: Site, count: int, timeout: float) -> dict[int, tuple[str, str | None, str | None]]:
    """Wait until every item is processed, or failed with a reason; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        now = states(site.rt)
        settled = {i: s for i, s in now.items() if s[0] == "processed" or (s[0] == "failed" and s[2])}
        if len(now) == count and len(settled) == count:
            return now
        if time.monotonic() > deadline:
            waiting = {i: s for i, s in now.items() if i not in settled}
            with site.rt.sessions() as session:
                detail = {i: [(s.name, s.state, s.attempts, s.lease_owner, s.next_run, s.error_code)
                              for s in ledger.steps_of(session, i)] for i in list(waiting)[:5]}
            raise AssertionError(f"{len(waiting)} of {count} items not settled after {timeout:.0f} s: "
                                 f"{detail}\n--- worker log ---\n{site.worker.tail()}")
        time.sleep(0.25)


def check_stores(site: Site) -> None:
    """Exactly one file per rendition row and one row per rendition; originals where they belong;
    nothing left behind in the public store, the queue store or the workbench."""
    rt = site.rt
    referenced = []
    with rt.sessions() as session:
        for media in session.scalars(select(MediaEntry)):
            if media.state == "processed":
                names = [r.name for r in media.renditions]
                assert sorted(names) == sorted(RENDITIONS), (media.id, names)
                assert media.original_store == "originals", media.id
                assert rt.stores.originals.exists(media.original_key), media.id
                assert not rt.stores.queue.exists(media.original_key), f"spare original of {media.id} in queue"
            else:
                assert media.state == "failed" and media.error_message, (media.id, media.state)
                assert rt.stores.by_name(media.original_store).exists(media.original_key), media.id
            for rendition in media.renditions:
                assert rt.stores.public.exists(rendition.key), (media.id, rendition.key)
                referenced.append(rendition.key)
        duplicates = session.execute(select(Rendition.media_id, Rendition.name, func.count())
                                     .group_by(Rendition.media_id, Rendition.name).having(func.count() > 1)).all()
    assert not duplicates, duplicates
    orphans = {tuple(key) for key in rt.stores.public.iter_keys()} - {tuple(key) for key in referenced}
    assert not orphans, f"public files no rendition refers to: {orphans}"
    # A save cut off by SIGKILL may leave a half-written `.part-` file: nothing refers to it, and
    # `kiln storage gc` deletes it (nothing writes now, so no grace is needed).
    swept = gc(rt.sessions, rt.stores, dry_run=False, grace=0)
    partial = [str(p) for p in rt.settings.media_dir.rglob(".part-*")]
    assert not partial, f"partly written files gc left: {partial} (it saw {swept.partial})"
    # A killed process's work directory is removed by the sweeper thread's next pass.
    deadline = time.monotonic() + 3 * rt.settings.processing.sweep_interval + 5
    while True:
        workbench = rt.settings.workbench_dir
        leftovers = [str(p) for p in workbench.rglob("*") if p.is_file() or p.name.startswith("media-")]
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not leftovers, f"left in the workbench: {leftovers}"


# The tests ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("broker", list(ON_THIS_DATABASE.values()), ids=list(ON_THIS_DATABASE))
def test_worker_processes_uploads_retries_a_transient_failure_and_gives_up_on_poison(tmp_path, broker):
    folder = tmp_path / "uploads"
    folder.mkdir()
    good = [small_jpeg(folder, f"good-{n}.jpg", seed=n) for n in range(8)]
    flaky = small_jpeg(folder, "flaky.jpg", seed=100, comment=FLAKY)
    poison = small_jpeg(folder, "poison.jpg", seed=101, comment=POISON)
    corrupt = make_truncated_jpeg(folder)
    backoff = 0.5
    with running_site(tmp_path, broker, backoff_base=backoff) as site:
        started = time.monotonic()
        ids = upload_all(site, [*good, flaky, poison, corrupt])
        final = wait_settled(site, len(ids), timeout=90)
        took = time.monotonic() - started

        for path in [*good, flaky]:
            assert final[ids[path.name]][0] == "processed", (path.name, final[ids[path.name]])

        state, code, message = final[ids[corrupt.name]]
        assert (state, code) == ("failed", "corrupt")
        assert message == "This JPEG file is damaged and cannot be read."

        # The transient failure: only the thumbnail ran again, after the backoff.
        with site.rt.sessions() as session:
            steps = {s.name: s for s in ledger.steps_of(session, ids[flaky.name])}
            assert {n: (s.state, s.attempts) for n, s in steps.items()} == {
                "medium": ("done", 1), "thumbnail": ("done", 2), "metadata": ("done", 1)}
        failed_at = float((site.flags / "flaky-failed").read_text())
        retried_at = float((site.flags / "flaky-retried").read_text())
        assert retried_at - failed_at >= backoff * 0.5

        # The poison file killed its worker process on every attempt, then failed for good.
        state, code, message = final[ids[poison.name]]
        limit = site.settings.processing.max_attempts
        assert (state, code) == ("failed", "worker_lost")
        # The sweeper ("Kiln tried 5 times and gave up.") or the next claim ("Processing this file stopped
        # the worker 5 times; Kiln gave up."), whichever sees the last lost attempt first.
        assert f"{limit} times" in message and "gave up" in message, message
        with site.rt.sessions() as session:
            steps = {s.name: s for s in ledger.steps_of(session, ids[poison.name])}
            assert (steps["medium"].state, steps["medium"].attempts) == ("failed", limit)
            # An image's steps are claimed and recorded together (processing/run.py): each death counts
            # against every step the worker held, so the thumbnail and metadata fail with the medium, are
            # done when a retry (their backoffs have jitter of their own) ran them without it, or still
            # wait for that retry when the medium's last attempt came first.
            others = {(s.state, s.error_code) for n, s in steps.items() if n != "medium"}
            assert others <= {("failed", "worker_lost"), ("done", None), ("pending", "worker_lost")}, others
        assert site.worker.proc is not None and site.worker.proc.poll() is None, "the worker itself died"
        check_stores(site)
        print(f"\n{broker or 'embedded'}: {len(ids)} uploads settled in {took:.1f} s")
