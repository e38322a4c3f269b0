"""Time and memory limits: external programs are SIGKILLed on overrun, worker processes are capped,
and a step that overruns inside a worker process is recorded as a timeout and its process killed."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from kiln.accounts import services as accounts
from kiln.config import load_settings
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.mediatypes import get_kind
from kiln.mediatypes.base import MediaRejected, TransientFailure
from kiln.mediatypes.external import run_external
from kiln.processing import ledger
from kiln.processing.dispatch import RecordingDispatcher
from kiln.processing.limits import lease_owner, owner_is_dead
from kiln.processing.service import process_media
from kiln.runtime import build_runtime


def test_external_program_is_killed_when_it_overruns(tmp_path):
    marker = tmp_path / "still-running"
    script = f"import time, pathlib; time.sleep(3); pathlib.Path({str(marker)!r}).write_text('x')"
    started = time.monotonic()
    with pytest.raises(MediaRejected) as caught:
        run_external([sys.executable, "-c", script], timeout=0.5, memory_mb=0, what="The test program")
    assert time.monotonic() - started < 2.5
    assert caught.value.code == "timeout" and "took longer than 0.5 s" in caught.value.message
    time.sleep(3)
    assert not marker.exists(), "the program kept running after its time limit"


def test_external_program_memory_cap(tmp_path):
    hog = "x = bytearray(600 * 1024 * 1024); print(len(x))"
    with pytest.raises((MediaRejected, TransientFailure)):
        run_external([sys.executable, "-c", hog], timeout=30, memory_mb=256, what="The test program")
    ok = run_external([sys.executable, "-c", "print('fine')"], timeout=30, memory_mb=256)
    assert ok.stdout.strip() == b"fine"


def test_bad_input_to_external_program_is_a_readable_rejection():
    with pytest.raises(MediaRejected) as caught:
        run_external([sys.executable, "-c", "import sys; sys.exit('cannot parse header')"], timeout=10,
                     memory_mb=0, what="The decoder")
    assert caught.value.code == "corrupt" and "cannot parse header" in caught.value.message


ALLOCATE_UNDER_LIMIT = """
import os
from kiln.processing.limits import apply_memory_limit
apply_memory_limit(768)
small = bytearray(64 * 1024 * 1024)  # well under the limit: fine
try:
    bytearray(1024 * 1024 * 1024)
except MemoryError:
    os._exit(42 if small else 1)
os._exit(0)
"""


def test_worker_memory_limit_turns_a_huge_allocation_into_memory_error():
    # A fresh interpreter, so the cap is measured against a small process, not the test runner.
    result = subprocess.run([sys.executable, "-c", ALLOCATE_UNDER_LIMIT], timeout=60)
    assert result.returncode == 42, "a 1 GiB allocation under a 768 MiB cap did not raise MemoryError"


def test_dead_owners_are_recognised():
    assert not owner_is_dead(lease_owner())
    proc = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    proc.start()
    proc.join()
    host = lease_owner().split(":")[0]
    assert owner_is_dead(f"{host}:{proc.pid}:1")
    assert not owner_is_dead(f"another-host:{proc.pid}:1")  # cannot tell for other machines
    assert not owner_is_dead(None)


def _run_in_worker(data_dir: str, db_url: str, media_id: int) -> None:
    settings = load_settings(data_dir=data_dir, database_url=db_url,
                             processing={"step_time_limit": 1, "lease_seconds": 2})
    kind = get_kind("image")
    real = kind.run_step

    def stuck(step, ctx):  # type: ignore[no-untyped-def]
        if step == "thumbnail":
            time.sleep(60)
        return real(step, ctx)

    kind.run_step = stuck  # type: ignore[method-assign]
    rt = build_runtime(settings, dispatcher=RecordingDispatcher())
    rt.enforce_limits = True
    process_media(rt, media_id)


@pytest.mark.db
def test_a_step_that_overruns_in_a_worker_is_recorded_as_timeout_and_killed(queued_rt, images):
    with queued_rt.sessions() as session:
        user = accounts.create_user(session, "alice", "a@example.com", "correct horse", verified=True)
        session.commit()
        with images["plain"].open("rb") as fh:
            media_id = media_service.submit(queued_rt, session, user, fh, "p.jpg", media_service.MediaFields()).id
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_run_in_worker,
                       args=(str(queued_rt.settings.data_dir), queued_rt.settings.db_url, media_id))
    started = time.monotonic()
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL, "the overrunning process was not killed"
    assert time.monotonic() - started < 20
    with queued_rt.sessions() as session:
        steps = {s.name: s for s in ledger.steps_of(session, media_id)}
        # The image's steps run as one group whose outcomes commit together: the medium step's result
        # went with the killed process (its row stays under the dead lease until the sweeper takes it).
        assert steps["medium"].state in ("done", "running")
        assert steps["thumbnail"].state == "failed" and steps["thumbnail"].error_code == "timeout"
        assert "longer than the 1 s limit" in steps["thumbnail"].error_message
    # The next bell settles the item as failed with the reason, without running anything again.
    assert process_media(queued_rt, media_id) == "failed"
    with queued_rt.sessions() as session:
        assert session.get(MediaEntry, media_id).error_code == "timeout"
