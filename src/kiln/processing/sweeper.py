"""The sweeper: takes back work (processing steps, outbox effects) from dead workers and re-rings
bells the queue lost.

The broker cannot be trusted to redeliver (the filesystem and SQLite transports never redeliver
a message whose worker was SIGKILLed; Redis waits an hour), so the ledger is swept instead. Every
`kiln worker` runs one, in a process of its own; a lock in the database lets only one sweep at a time.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import signal
import threading

from sqlalchemy import or_, select, text, update
from sqlalchemy.exc import IntegrityError

from kiln.config import Settings
from kiln.db.base import rowcount, utcnow
from kiln.errors import KilnError
from kiln.media.models import MediaEntry, MediaState
from kiln.processing import hosts, ledger, outbox, queue_files
from kiln.processing.admission import ring_bells, ring_due
from kiln.processing.limits import lease_owner
from kiln.processing.models import UNFINISHED_STEPS, Lock, ProcessingStep, WorkState
from kiln.processing.service import clean_workbench
from kiln.runtime import Runtime, build_runtime
from kiln.social.notify_mail import digests_due

log = logging.getLogger(__name__)
LOCK = "sweeper"


def acquire_lock(rt: Runtime, owner: str, seconds: float, name: str = LOCK) -> bool:
    """Take or renew a named lock that expires by itself if its holder dies."""
    now = utcnow()
    expires = now + dt.timedelta(seconds=seconds)
    with rt.sessions() as session:
        result = session.execute(
            update(Lock).where(Lock.name == name, or_(Lock.owner == owner, Lock.expires < now))
            .values(owner=owner, expires=expires))
        if rowcount(result) == 1:
            session.commit()
            return True
        if session.get(Lock, name) is not None:
            return False
        session.add(Lock(name=name, owner=owner, expires=expires))
        try:
            session.commit()
        except IntegrityError:  # another process created it first
            return False
        return True


def sweep(rt: Runtime) -> int:
    """One pass. Returns how many media items had their bell rung."""
    now = utcnow()
    settings = rt.settings.processing
    with rt.sessions() as session:
        # Running steps whose worker died: its lease lapsed, its process is gone from this host, or
        # its host has stopped beating.
        silent = hosts.silent_hosts(session, rt.settings)
        for step, kind in session.execute(
            select(ProcessingStep, MediaEntry.kind).join(MediaEntry, MediaEntry.id == ProcessingStep.media_id)
            .where(ProcessingStep.state == WorkState.RUNNING)
            .with_for_update(of=ProcessingStep, skip_locked=True)  # not one a worker is finishing now
        ):
            if step.lease_expires is not None and step.lease_expires < now or hosts.lost(step.lease_owner, silent):
                ledger.schedule_retry(step, settings.policy(kind), "WorkerLost", "worker_lost",
                                      KilnError("The worker processing this file stopped unexpectedly."))
        session.commit()
        # Items whose steps are all final but whose state was never settled (a crash mid-check).
        unsettled = {
            media_id: (kind, "retry")
            for media_id, kind in session.execute(
                select(MediaEntry.id, MediaEntry.kind)
                .where(MediaEntry.state.in_((MediaState.QUEUED, MediaState.PROCESSING)))
                # NOT EXISTS, one index probe per unsettled item; NOT IN read every step (400 ms at a
                # million items, every pass: docs/scaling.md)
                .where(~select(ProcessingStep.id).where(ProcessingStep.media_id == MediaEntry.id,
                                                        text("processing_steps." + UNFINISHED_STEPS)).exists())
            )
        }
    rung = ring_due(rt, lost_after=dt.timedelta(seconds=max(60.0, settings.lease_seconds * 2)),
                    held_before=max(silent.values(), default=None))
    ring_bells(rt, unsettled)
    swept = outbox.sweep(rt)
    digests_due(rt)  # the daily notification digests: each one an outbox effect, rung after its commit
    from kiln.moderation.removal import purge_due  # moderation builds on processing, not the reverse

    purge_due(rt)  # what the moderators removed, once its grace period is over
    from kiln.federation.inbox import prune

    prune(rt)  # activities received from other servers, once processed and old enough
    from kiln.search.upkeep import fill_if_empty

    fill_if_empty(rt)  # a site just upgraded to a version with search: its index is built once
    return rung + len(unsettled) + swept


class Sweeper(threading.Thread):
    def __init__(self, rt: Runtime, parent: int | None = None, beat: tuple[list[str], int] | None = None) -> None:
        super().__init__(daemon=True, name="kiln-sweeper")
        self.rt = rt
        self.owner = lease_owner()
        self.stopping = threading.Event()
        self.parent = parent  # stop when this process is gone (a SIGKILLed worker leaves no orphan)
        self.beat = beat  # (lanes, processes) of the worker this sweeper belongs to: its heartbeat

    def run(self) -> None:
        interval = self.rt.settings.processing.sweep_interval
        while True:
            if self.beat is not None:  # first at once: the admin panel lists a worker as it starts
                try:
                    hosts.beat(self.rt, hosts.worker_id(self.parent), *self.beat)
                except Exception:
                    log.exception("heartbeat failed")
            if self.stopping.wait(interval):
                return
            if self.parent is not None and os.getppid() != self.parent:
                return
            try:
                clean_workbench(self.rt)  # this host's own leftovers: not behind the site-wide lock
                if self.rt.settings.embedded_queue:
                    queue_files.clean_taken(self.rt.settings.queue_dir)
                if acquire_lock(self.rt, self.owner, seconds=interval * 3):
                    sweep(self.rt)
            except Exception:
                log.exception("sweep failed")

    def stop(self) -> None:
        self.stopping.set()


def start_sweeper_process(settings: Settings, beat: tuple[list[str], int] | None = None,
                          ) -> multiprocessing.process.BaseProcess:
    """Run the sweeper in a process of its own, forked before the worker starts its pool.

    Not a thread of the worker's main process: that process forks pool children (and replaces each
    one that dies), and a fork copies whatever lock another thread holds at that instant. A child
    forked while the sweeper was inside SQLite inherited its allocator mutex locked and hung on
    its first query, holding its message and a prefetch slot until the worker was killed.
    """
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_sweeper_main, args=(settings, os.getpid(), beat), name="kiln-sweeper",
                              daemon=True)
    process.start()
    return process


def _sweeper_main(settings: Settings, parent: int, beat: tuple[list[str], int] | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the worker stops us
    rt = build_runtime(settings)
    try:
        Sweeper(rt, parent=parent, beat=beat).run()
    finally:
        rt.close()
