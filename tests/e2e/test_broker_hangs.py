"""A Redis that stops answering on an open connection (hung, or cut off without the connection being
closed: what the multi-host rig's partitions look like) must not hold a bell, and the upload ringing it,
forever: the bell gives up within seconds and the ledger keeps the work for the sweeper."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kiln.processing.celery_app import make_celery
from kiln.processing.dispatch import CeleryDispatcher
from tests.conftest import make_settings
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.slow


def test_a_bell_on_a_hung_redis_gives_up_within_seconds(tmp_path: Path) -> None:
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                              "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        bell = CeleryDispatcher(make_celery(make_settings(tmp_path / "data", "sqlite://", broker_url=url)))
        deadline = time.monotonic() + 10
        while True:  # the server is up once a bell gets through
            try:
                bell.ring(1, "image")
                break
            except Exception:  # noqa: BLE001 - not listening yet
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
        os.kill(redis.pid, signal.SIGSTOP)
        outcome: list[BaseException | None] = []

        def ring() -> None:
            try:
                bell.ring(2, "image")
                outcome.append(None)
            except Exception as exc:  # noqa: BLE001 - what the bell says is checked below
                outcome.append(exc)

        started = time.monotonic()
        thread = threading.Thread(target=ring, daemon=True)
        thread.start()
        thread.join(30)
        assert outcome, "the bell still waits for a Redis that does not answer after 30 s"
        assert isinstance(outcome[0], Exception), "a bell got through to a stopped Redis"
        assert time.monotonic() - started < 15
    finally:
        os.kill(redis.pid, signal.SIGCONT)
        redis.kill()
        redis.wait(10)
