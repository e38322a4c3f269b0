"""Chaos: 50 uploads while the worker is SIGKILLed mid-step, pool children and the main process,
once with each broker. Nothing may be lost, done twice or left behind.

Each step sleeps 0.15 s in the worker (see the ``sitecustomize`` in
``test_brokers.py``) so that there is always a step in flight to kill; every kill aims at a pool
process that is inside a step at that moment (it holds the step's lease).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import func, select

from kiln.processing.models import ProcessingStep
from tests.e2e.test_brokers import (
    ON_THIS_DATABASE,
    Site,
    check_stores,
    running_site,
    small_jpeg,
    upload_all,
    wait_settled,
)
from tests.fixtures_images import make_truncated_jpeg

pytestmark = [pytest.mark.slow, pytest.mark.db]

UPLOADS = 50
SETTLE_WITHIN = 120.0  # seconds from the last kill until every item is processed or failed


def busy_child(site: Site, killed: list[int], timeout: float = 30.0) -> int:
    """A pool process of the current worker that is in the middle of a step: it holds the step's
    lease and sleeps in the injected delay (so a kill never lands inside a file write, where it
    would leave a partly written file behind that the test cannot tell from an orphan)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = set(site.worker.children())
        asleep = {int(path.name.split("-")[1]) for path in site.flags.glob("asleep-*")}
        candidates = (asleep & children) - set(killed)
        if candidates:
            return min(candidates)
        time.sleep(0.02)
    raise AssertionError("no pool process was running a step:\n" + site.worker.tail())


@pytest.mark.parametrize("broker", list(ON_THIS_DATABASE.values()), ids=list(ON_THIS_DATABASE))
def test_sigkilled_workers_lose_nothing_and_duplicate_nothing(tmp_path, broker):
    folder = tmp_path / "uploads"
    folder.mkdir()
    files = [small_jpeg(folder, f"photo-{n:02}.jpg", seed=n, size=(480, 360)) for n in range(UPLOADS - 1)]
    corrupt = make_truncated_jpeg(folder)
    files.insert(UPLOADS // 2, corrupt)
    with running_site(tmp_path, broker, step_delay=0.15, backoff_base=2.0) as site:
        started = time.monotonic()
        ids = upload_all(site, files)
        killed = []
        for _ in range(3):  # a pool process, mid-step; the pool replaces it
            pid = busy_child(site, killed)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            time.sleep(1.0)
        busy_child(site, killed)  # the main process, while its pool is mid-step; then a new worker
        site.worker.kill_main()
        site.worker.start()
        site.worker.wait_ready()
        pid = busy_child(site, killed)  # and a pool process of the new worker
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        last_kill = time.monotonic()

        final = wait_settled(site, UPLOADS, timeout=SETTLE_WITHIN)
        settled = time.monotonic()

        assert len(set(killed)) == len(killed) == 4
        assert final[ids[corrupt.name]][:2] == ("failed", "corrupt")
        others = {name: final[media_id] for name, media_id in ids.items() if name != corrupt.name}
        assert {state for state, _code, _message in others.values()} == {"processed"}, others
        with site.rt.sessions() as session:
            retried = session.scalar(select(func.count()).where(ProcessingStep.attempts > 1))
        assert retried, "no step was cut off by a kill and run again"
        check_stores(site)
        print(f"\n{broker or 'embedded'}: {UPLOADS} uploads, {len(killed)} pool processes and the main "
              f"process killed; settled {settled - last_kill:.1f} s after the last kill, "
              f"{settled - started:.1f} s in all")
