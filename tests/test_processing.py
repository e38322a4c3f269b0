"""The processing ledger: split steps, retries with backoff, leases and the sweeper."""

from __future__ import annotations

import datetime as dt
import random
import re

import pytest

from kiln.accounts import services as accounts
from kiln.config import ProcessingSettings
from kiln.db.base import utcnow
from kiln.errors import KilnError
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.mediatypes import get_kind
from kiln.mediatypes.base import TransientFailure
from kiln.processing import ledger
from kiln.processing.models import ProcessingStep
from kiln.processing.service import process_media
from kiln.processing.sweeper import sweep

pytestmark = pytest.mark.db


@pytest.fixture
def submitted(queued_rt, images):  # type: ignore[no-untyped-def]
    """One image uploaded, its bell recorded but not yet answered."""
    with queued_rt.sessions() as session:
        user = accounts.create_user(session, "alice", "a@example.com", "correct horse", verified=True)
        session.commit()
        with images["plain"].open("rb") as fh:
            entry = media_service.submit(queued_rt, session, user, fh, "p.jpg", media_service.MediaFields())
    return entry.id


def steps(rt, media_id):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        return {s.name: s for s in ledger.steps_of(session, media_id)}


def test_upload_rings_the_lane_after_commit_and_is_queued(queued_rt, submitted):
    assert queued_rt.dispatcher.rung == [(submitted, "image", "new")]
    assert {s.state for s in steps(queued_rt, submitted).values()} == {"queued"}
    with queued_rt.sessions() as session:
        key = session.get(MediaEntry, submitted).original_key
    assert key[0] == "uploads" and key[-1] == "original.jpg"  # stored under a key made before the row
    assert queued_rt.stores.queue.exists(key)


def test_running_twice_does_no_work_twice(queued_rt, submitted):
    assert process_media(queued_rt, submitted) == "processed"
    before = {n: (s.attempts, s.finished) for n, s in steps(queued_rt, submitted).items()}
    assert process_media(queued_rt, submitted) == "processed"
    assert {n: (s.attempts, s.finished) for n, s in steps(queued_rt, submitted).items()} == before
    with queued_rt.sessions() as session:
        entry = session.get(MediaEntry, submitted)
        assert entry.original_store == "originals"
        assert queued_rt.stores.originals.exists(entry.original_key)
        assert not queued_rt.stores.queue.exists(entry.original_key)


def test_transient_failure_retries_only_that_step_with_backoff(queued_rt, submitted, monkeypatch):
    kind = get_kind("image")
    real = kind.run_step
    calls: list[str] = []
    failures = []

    def flaky(step, ctx):  # type: ignore[no-untyped-def]
        calls.append(step)
        if step == "thumbnail" and not failures:
            failures.append(step)
            raise TransientFailure("The disk was full.", code="disk_full")
        return real(step, ctx)

    monkeypatch.setattr(kind, "run_step", flaky)
    assert process_media(queued_rt, submitted) == "processing"
    state = steps(queued_rt, submitted)
    assert state["medium"].state == "done" and state["metadata"].state == "done"
    thumb = state["thumbnail"]
    assert thumb.state == "pending" and thumb.error_code == "disk_full" and thumb.attempts == 1
    wait = (thumb.next_run - utcnow()).total_seconds()
    base = queued_rt.settings.processing.backoff_base
    assert base * 0.5 - 1 <= wait <= base
    # Not due yet: a bell now does nothing.
    assert process_media(queued_rt, submitted) == "processing"
    # Time passes; the sweeper rings the retry lane, and only the thumbnail runs again.
    with queued_rt.sessions() as session:
        session.get(ProcessingStep, thumb.id).next_run = utcnow() - dt.timedelta(seconds=1)
        session.commit()
    assert sweep(queued_rt) == 1
    assert queued_rt.dispatcher.rung[-1] == (submitted, "image", "retry")
    calls.clear()
    assert process_media(queued_rt, submitted) == "processed"
    assert calls == ["thumbnail"]


def test_a_step_that_always_crashes_ends_failed_after_the_attempt_limit(queued_rt, submitted, monkeypatch):
    kind = get_kind("image")
    monkeypatch.setattr(kind, "run_step", lambda step, ctx: 1 / 0)
    limit = queued_rt.settings.processing.max_attempts
    for _ in range(limit):
        with queued_rt.sessions() as session:
            for step in ledger.steps_of(session, submitted):
                if step.state == "pending":
                    step.next_run = utcnow()
            session.commit()
        process_media(queued_rt, submitted)
    state = steps(queued_rt, submitted)
    assert all(s.state == "failed" and s.attempts == limit for s in state.values())
    with queued_rt.sessions() as session:
        entry = session.get(MediaEntry, submitted)
        assert entry.state == "failed" and "gave up" in entry.error_message


def test_sweeper_takes_back_a_step_whose_worker_died(queued_rt, submitted):
    with queued_rt.sessions() as session:
        step = ledger.steps_of(session, submitted)[0]
        assert ledger.claim(session, step.id, "dead-worker", lease_seconds=60)
    # Another worker cannot take it while the lease holds.
    with queued_rt.sessions() as session:
        assert not ledger.claim(session, step.id, "other", lease_seconds=60)
        session.get(ProcessingStep, step.id).lease_expires = utcnow() - dt.timedelta(seconds=1)
        session.commit()
    sweep(queued_rt)
    medium = steps(queued_rt, submitted)["medium"]
    assert medium.state == "pending" and medium.error_code == "worker_lost" and medium.attempts == 1


def test_a_silent_hosts_steps_are_taken_back_before_their_leases_lapse(queued_rt, submitted):
    from kiln.processing.hosts import SILENT_AFTER, WorkerHost

    interval = queued_rt.settings.processing.sweep_interval
    with queued_rt.sessions() as session:
        first, second = ledger.steps_of(session, submitted)[:2]
        assert ledger.claim(session, first.id, "rack2:55:1", lease_seconds=3600)
        assert ledger.claim(session, second.id, "rack3:56:1", lease_seconds=3600)
        long_ago = utcnow() - dt.timedelta(seconds=interval * (SILENT_AFTER + 1))
        session.add_all([WorkerHost(id="rack2:50", host="rack2", last_beat=long_ago),  # both of rack2's workers
                         WorkerHost(id="rack2:51", host="rack2", last_beat=long_ago),  # are silent: it is gone
                         WorkerHost(id="rack3:52", host="rack3", last_beat=long_ago),  # one of rack3's is not
                         WorkerHost(id="rack3:53", host="rack3", last_beat=utcnow())])
        session.commit()
        names = first.name, second.name
    sweep(queued_rt)
    state = steps(queued_rt, submitted)
    assert state[names[0]].state == "pending" and state[names[0]].error_code == "worker_lost"
    assert state[names[1]].state == "running" and state[names[1]].lease_owner == "rack3:56:1"


def test_a_bell_a_silent_host_may_have_taken_is_rung_again_without_waiting(queued_rt, submitted):
    """The host took the item's message and went silent before it began: the bell is rung again at
    the next sweep, not a minute or more later (a bell too many finds nothing to claim)."""
    from kiln.processing.hosts import SILENT_AFTER, WorkerHost

    interval = queued_rt.settings.processing.sweep_interval
    silent_since = utcnow() - dt.timedelta(seconds=interval * (SILENT_AFTER + 1))
    with queued_rt.sessions() as session:
        for step in ledger.steps_of(session, submitted):  # rung while the host was still at work
            step.enqueued = silent_since - dt.timedelta(seconds=1)
        session.commit()
    queued_rt.dispatcher.rung.clear()
    sweep(queued_rt)
    assert queued_rt.dispatcher.rung == []  # no host is silent: the bell is not a minute old yet
    with queued_rt.sessions() as session:
        session.add(WorkerHost(id="rack2:50", host="rack2", last_beat=silent_since))
        session.commit()
    sweep(queued_rt)
    assert queued_rt.dispatcher.rung == [(submitted, "image", "new")]
    sweep(queued_rt)  # once: its bell is now younger than the silence
    assert queued_rt.dispatcher.rung == [(submitted, "image", "new")]
    assert process_media(queued_rt, submitted) == "processed"


def test_a_step_taken_back_while_it_ran_leaves_nothing_of_that_run(queued_rt, submitted, monkeypatch):
    """Its host seemed gone, so the sweeper took the step back for another worker: this worker's late
    outcome is dropped (no rendition row, no stored file), so no step is done twice. The item's other
    steps, claimed and run with it in one group, are dropped too and given back, due at once."""
    kind = get_kind("image")
    real = kind.run_step
    ran: list[str] = []

    def run_then_lose_the_lease(step, ctx):  # type: ignore[no-untyped-def]
        result = real(step, ctx)
        ran.append(step)
        if len(ran) > 1:
            return result
        with queued_rt.sessions() as session:  # the sweeper, meanwhile
            row = next(s for s in ledger.steps_of(session, submitted) if s.name == step)
            ledger.schedule_retry(row, queued_rt.settings.processing, "WorkerLost", "worker_lost",
                                  KilnError("The worker processing this file stopped unexpectedly."))
            session.commit()
        return result

    monkeypatch.setattr(kind, "run_step", run_then_lose_the_lease)
    before = set(map(tuple, queued_rt.stores.public.iter_keys()))
    process_media(queued_rt, submitted)
    state = steps(queued_rt, submitted)
    assert state[ran[0]].state == "pending" and state[ran[0]].error_code == "worker_lost"
    for name in ran[1:]:  # given back: nothing of theirs recorded, due again now, the attempt counted
        assert state[name].state == "pending" and state[name].lease_owner is None and state[name].attempts == 1
        assert state[name].next_run <= utcnow() and state[name].finished is None
    with queued_rt.sessions() as session:
        assert not session.get(MediaEntry, submitted).renditions
    assert set(map(tuple, queued_rt.stores.public.iter_keys())) == before
    monkeypatch.setattr(kind, "run_step", real)  # the worker it was given to finishes it
    with queued_rt.sessions() as session:
        for step in ledger.steps_of(session, submitted):
            step.next_run = utcnow()
        session.commit()
    assert process_media(queued_rt, submitted) == "processed"


def test_backoff_grows_exponentially_and_is_capped():
    policy = ProcessingSettings(backoff_base=10, backoff_cap=86_400)
    rng = random.Random(1)
    delays = [ledger.backoff_delay(n, policy, rng) for n in range(1, 20)]
    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20 and 20 <= delays[2] <= 40
    assert max(delays) <= 86_400 and delays[-1] >= 43_200


def test_lost_bells_are_rung_again(queued_rt, submitted):
    with queued_rt.sessions() as session:
        for step in ledger.steps_of(session, submitted):
            step.enqueued = utcnow() - dt.timedelta(hours=1)
        session.commit()
    queued_rt.dispatcher.rung.clear()
    assert sweep(queued_rt) == 1
    assert queued_rt.dispatcher.rung == [(submitted, "image", "new")]


def test_the_unfinished_steps_index_names_exactly_the_states_that_are_not_final():
    """The partial index (and the sweeper's and admin panel's queries that repeat its words) must list
    every state a step can still leave, and no final one."""
    from kiln.processing import ledger
    from kiln.processing.models import UNFINISHED_STEPS, WorkState

    named = set(re.findall(r"'([a-z]+)'", UNFINISHED_STEPS))
    assert named == {state.value for state in WorkState} - {state.value for state in ledger.FINAL}


def _worker_killed_before_the_thumbnail(settings, media_id):  # type: ignore[no-untyped-def]
    """A worker process (spawned: a fork of the test process may inherit a lock another thread held)
    that runs the item and is SIGKILLed as its thumbnail step starts."""
    import os
    import signal

    from kiln.processing.dispatch import RecordingDispatcher
    from kiln.runtime import build_runtime

    rt = build_runtime(settings, dispatcher=RecordingDispatcher())
    kind = get_kind("image")
    real = kind.run_step

    def die_before_the_thumbnail(step, ctx):  # type: ignore[no-untyped-def]
        if step == "thumbnail":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(step, ctx)

    kind.run_step = die_before_the_thumbnail  # type: ignore[method-assign]
    process_media(rt, media_id)


def test_a_worker_killed_between_two_steps_of_one_group_leaves_the_item_to_be_run_again(queued_rt, submitted):
    """An image's steps are claimed together and their outcomes committed together. A worker SIGKILLed
    after the medium step and before the thumbnail leaves all three running under its dead lease,
    nothing of them recorded or stored; the next bell takes them back (the attempt counted) and their
    retry finishes the item."""
    import multiprocessing
    import signal

    child = multiprocessing.get_context("spawn").Process(target=_worker_killed_before_the_thumbnail,
                                                         args=(queued_rt.settings, submitted))
    child.start()
    child.join(60)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == -signal.SIGKILL
    state = steps(queued_rt, submitted)
    assert {(s.state, s.attempts) for s in state.values()} == {("running", 1)}
    with queued_rt.sessions() as session:
        entry = session.get(MediaEntry, submitted)
        assert entry.state == "processing" and not entry.renditions and entry.original_store == "queue"
    assert list(queued_rt.stores.public.iter_keys()) == []
    assert process_media(queued_rt, submitted) == "processing"  # the next bell: the dead worker's steps back
    state = steps(queued_rt, submitted)
    assert {(s.state, s.error_code) for s in state.values()} == {("pending", "worker_lost")}
    with queued_rt.sessions() as session:
        for step in ledger.steps_of(session, submitted):
            step.next_run = utcnow()  # their retry is due
        session.commit()
    assert process_media(queued_rt, submitted) == "processed"
    assert {(s.state, s.attempts) for s in steps(queued_rt, submitted).values()} == {("done", 2)}
    with queued_rt.sessions() as session:
        entry = session.get(MediaEntry, submitted)
        assert {r.name for r in entry.renditions} >= {"medium", "thumbnail", "thumbnail_2x"}
        assert queued_rt.stores.originals.exists(entry.original_key)
