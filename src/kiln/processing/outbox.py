"""The outbox: "when this transaction commits, do X", durably.

A service records an effect (``record``, ``record_mail``) in the same transaction as the change that
causes it. When that transaction commits, a session hook rings the effect's bell (``install``); a
rolled-back transaction leaves neither row nor bell. A worker runs the effect (``run_effect``, the
Celery task ``kiln.run_effect``): it claims the row with a lease exactly as a processing step is
claimed, calls the kind's handler outside any transaction, and marks it done, or schedules a retry
with the processing ledger's backoff (``[outbox]`` retry policy). The sweeper (``sweep``) takes back
effects whose worker died, and re-rings effects that are due or whose bell was lost.

Delivery is at least once: a worker killed after the SMTP server accepted a mail and before the row
was marked done sends it again. Without a worker (tests, ``InlineBell``) an effect runs in the
committing thread right after the commit.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session, sessionmaker

from kiln.db.base import utcnow
from kiln.errors import KilnError
from kiln.processing.models import OutboxEffect, WorkState

if TYPE_CHECKING:
    from kiln.config import RetryPolicy
    from kiln.runtime import Runtime

log = logging.getLogger(__name__)
QUEUE = "outbox"  # the Celery queue every `kiln worker` consumes besides its lanes
_RING = "kiln.outbox.ring"  # session.info key: effect ids to ring after the commit


# Recording -------------------------------------------------------------------------------------

def record(session: Session, kind: str, payload: dict[str, Any], summary: str = "") -> OutboxEffect:
    """Add an effect to the session's transaction; it runs after the commit, or never if rolled back.
    ``summary`` is what admins see: never a secret (a mail's body holds one-time links)."""
    from kiln.processing import ledger

    if kind not in HANDLERS and kind not in LOCAL_HANDLERS:
        raise ValueError(f"no outbox handler for {kind!r}")
    effect = ledger.new_effect(kind, payload, summary)
    session.add(effect)
    return effect


def record_mail(session: Session, to: str, subject: str, body: str,
                headers: dict[str, str] | None = None) -> OutboxEffect:
    payload: dict[str, Any] = {"to": to, "subject": subject, "body": body}
    if headers:
        payload["headers"] = headers
    return record(session, "mail", payload, summary=f"{subject} → {to}")


def ring_after_commit(session: Session, ids: Iterable[int]) -> None:
    """Ring these effects' bells once the session's transaction commits (e.g. after a retry)."""
    session.info.setdefault(_RING, []).extend(ids)


def install(factory: sessionmaker[Session], ring: Callable[[list[int]], None]) -> None:
    """Make sessions from ``factory`` ring the bells of the effects they commit (and only those)."""

    @event.listens_for(factory, "after_flush")
    def _collect(session: Session, _context: object) -> None:
        new = [obj.id for obj in session.new if isinstance(obj, OutboxEffect)]
        if new:
            ring_after_commit(session, new)

    @event.listens_for(factory, "after_commit")
    def _ring(session: Session) -> None:
        ids = session.info.pop(_RING, None)
        if ids:
            try:
                ring(list(dict.fromkeys(ids)))
            except Exception:  # the rows are committed: the sweeper rings them
                log.exception("could not ring outbox bells %s; the sweeper will", ids)

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_RING, None)


# Bells -----------------------------------------------------------------------------------------

class Bell(Protocol):
    def ring(self, ids: list[int]) -> None: ...


class InlineBell:
    """Runs each effect in the committing thread (tests, and processes with no worker)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def ring(self, ids: list[int]) -> None:
        for effect_id in ids:
            run_effect(self.rt, effect_id)


class RecordingBell:
    """Remembers the bells (tests that play the worker by hand)."""

    def __init__(self) -> None:
        self.rung: list[int] = []

    def ring(self, ids: list[int]) -> None:
        self.rung.extend(ids)


class CeleryBell:
    """Sends one ``kiln.run_effect`` task per effect, from a thread of its own: the request that
    committed never waits on the broker (which may be down or hung; the sweeper re-rings)."""

    def __init__(self, app, time_limit: float) -> None:
        self.app, self.time_limit = app, time_limit
        self._lock = threading.Lock()
        self._pid = -1
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()

    def ring(self, ids: list[int]) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: threads do not survive a fork
                self._pid, self._queue = os.getpid(), queue.SimpleQueue()
                thread = threading.Thread(target=self._send_forever, args=(self._queue,), daemon=True,
                                          name="kiln-outbox-bell")
                thread.start()
                atexit.register(self._drain, self._queue, thread)
        for effect_id in ids:
            self._queue.put(effect_id)

    def _send_forever(self, pending: queue.SimpleQueue[int | None]) -> None:
        while (effect_id := pending.get()) is not None:
            try:
                self.app.send_task("kiln.run_effect", args=[effect_id], queue=QUEUE, time_limit=self.time_limit)
            except Exception as exc:
                log.warning("could not ring the bell for outbox effect %s (%s); the sweeper will", effect_id, exc)

    @staticmethod
    def _drain(pending: queue.SimpleQueue[int | None], thread: threading.Thread) -> None:
        """At exit (a CLI command), give the bells a moment to leave; the sweeper rings any left."""
        pending.put(None)
        thread.join(5)


class WorkerBell:
    """The bell of a processing worker's own process: effects that only touch the database (those
    with a local handler, such as the search index of an item just published) run right here after
    the commit that recorded them, as the worker it would have reached through the broker would run
    them; the others are rung through ``fallback``. An item's publication then costs one task, not two."""

    def __init__(self, rt: Runtime, fallback: Bell) -> None:
        self.rt, self.fallback = rt, fallback

    def ring(self, ids: list[int]) -> None:
        rest = list(ids)
        try:
            with self.rt.sessions() as session:
                local = set(session.scalars(select(OutboxEffect.id).where(
                    OutboxEffect.id.in_(ids), OutboxEffect.kind.in_(list(LOCAL_HANDLERS)))))
            for effect_id in ids:
                if effect_id in local:
                    run_effect(self.rt, effect_id)
                    rest.remove(effect_id)
        except Exception:  # the database failed us: the rest go through the broker, as from anywhere
            log.exception("running outbox effects %s here failed; ringing them", ids)
        if rest:
            self.fallback.ring(rest)


def make_bell(rt: Runtime) -> Bell:
    from kiln.processing.dispatch import CeleryDispatcher

    if isinstance(rt.dispatcher, CeleryDispatcher):
        return CeleryBell(rt.dispatcher.app, time_limit=rt.settings.outbox.step_time_limit + 30)
    return InlineBell(rt)


# Running ---------------------------------------------------------------------------------------

def _send_mail(rt: Runtime, payload: dict[str, Any]) -> None:
    if payload.get("headers"):
        rt.mailer.send(payload["to"], payload["subject"], payload["body"], payload["headers"])
    else:
        rt.mailer.send(payload["to"], payload["subject"], payload["body"])


Handler = Callable[["Runtime", dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {"mail": _send_mail}


def register_handler(kind: str, handler: Handler) -> None:
    """Say what runs an effect of this kind (the module that records it registers it at import)."""
    HANDLERS[kind] = handler


LocalHandler = Callable[["Runtime", Session, dict[str, Any]], None]
# Effects whose work is only writes to Kiln's own database, and that are safe to run twice.
LOCAL_HANDLERS: dict[str, LocalHandler] = {}


def register_local_handler(kind: str, handler: LocalHandler) -> None:
    """Say what runs an effect of this kind whose work is only writes to Kiln's own database, safe to
    run twice (the search index). Its claim, its writes and its done mark are one transaction (one
    commit instead of three); a crash rolls all of it back and the sweeper rings it again. The handler
    writes through the session it is given and may commit it to end a long job in pieces."""
    LOCAL_HANDLERS[kind] = handler

class Postponed(Exception):
    """Raised by a handler: not now but at ``until``, and this try does not count as an attempt (a
    delivery to a server known to be down waits for it without using up its retries)."""

    def __init__(self, until: dt.datetime, reason: KilnError) -> None:
        super().__init__(reason.message)
        self.until, self.reason = until, reason


class Refused(KilnError):
    """Raised by a handler: the other side refuses this for good; the effect fails at once (shown as
    failed, where ``kiln outbox retry`` can send it again), without the retries."""

    code = "refused"


PolicyOf = Callable[["Runtime"], "RetryPolicy"]
# Kinds whose retries follow a policy of their own (federation delivery: up to days), not [outbox].
POLICIES: dict[str, PolicyOf] = {}


def register_policy(kind: str, policy: PolicyOf) -> None:
    POLICIES[kind] = policy


# Payload fields dropped once an effect is done: a mail's body holds a one-time link, which the
# database otherwise keeps only as a hash.
SECRET_FIELDS = {"mail": ("body", "headers"), "federation_deliver": ("signer",)}


def _forget_secrets(effect: OutboxEffect) -> None:
    fields = SECRET_FIELDS.get(effect.kind, ())
    if any(name in effect.payload for name in fields):
        effect.payload = {k: v for k, v in effect.payload.items() if k not in fields}


def run_effect(rt: Runtime, effect_id: int) -> str | None:
    """Run one effect if it is due (safe to call twice: the claim lets one caller through).
    Returns its new state, or None when there was nothing to do."""
    from kiln.processing import ledger
    from kiln.processing.limits import lease_owner

    owner = lease_owner()
    policy: RetryPolicy = rt.settings.outbox
    error: Exception | None = None
    with rt.sessions() as session:
        if not ledger.claim_row(session, OutboxEffect, effect_id, owner, policy.step_time_limit):
            return None
        effect = session.get(OutboxEffect, effect_id)
        if effect is None:
            return None
        kind, payload = effect.kind, dict(effect.payload)
        if kind in POLICIES:
            policy = POLICIES[kind](rt)
        local = LOCAL_HANDLERS.get(kind)
        if local is not None:  # the claim, the work and the done mark commit together
            try:
                local(rt, session, payload)
                ledger.mark_done(effect)
                session.commit()
                return WorkState.DONE
            except Exception as exc:
                error = exc
                session.rollback()  # the claim too: take it again to record the failure
                if not ledger.claim_row(session, OutboxEffect, effect_id, owner, policy.step_time_limit):
                    return None
        session.commit()
    if local is None:
        try:
            HANDLERS[kind](rt, payload)  # outside any transaction: SMTP may take its whole timeout
        except Exception as exc:
            error = exc
    with rt.sessions() as session:
        effect = session.get(OutboxEffect, effect_id)
        if effect is None or effect.state != WorkState.RUNNING or effect.lease_owner != owner:
            return None  # the sweeper took it back meanwhile (we overran the lease)
        if error is None:
            ledger.mark_done(effect)
        elif isinstance(error, Postponed):
            ledger.postpone(effect, error.until, error.reason)
        elif isinstance(error, Refused):
            log.warning("outbox effect %s (%s) refused for good: %s", effect_id, kind, error)
            ledger.mark_failed(effect, type(error).__name__, error.code, error)
        else:
            log.warning("outbox effect %s (%s) failed: %s", effect_id, kind, error)
            ledger.retry_later(effect, policy, type(error).__name__, _code(error), _sentence(kind, error))
        if effect.state == WorkState.DONE:  # a failed one keeps its body, so that `kiln outbox retry` can send it
            _forget_secrets(effect)
        session.commit()
        return effect.state


def _timed_out(error: BaseException | None) -> bool:
    """smtplib reports a timeout as a lost connection; the TimeoutError is in the exception's chain."""
    while error is not None:
        if isinstance(error, TimeoutError):
            return True
        error = error.__cause__ or error.__context__
    return False


def _code(error: Exception) -> str:
    return "timeout" if _timed_out(error) else "unreachable" if isinstance(error, OSError) else "error"


def _sentence(kind: str, error: Exception) -> KilnError | str:
    mail = kind == "mail"
    if _timed_out(error):
        if mail:
            return KilnError("The mail server did not answer in time.")
        return KilnError("The service did not answer in time.")
    if isinstance(error, OSError):
        if mail:
            return KilnError("The mail server could not be reached (%(error)s).", error=str(error))
        return KilnError("The service could not be reached (%(error)s).", error=str(error))
    return f"{type(error).__name__}: {error}"  # an error of the code itself: for the admins, in English


# Recovery and retries --------------------------------------------------------------------------

def sweep(rt: Runtime, lost_after: dt.timedelta = dt.timedelta(seconds=60)) -> int:
    """The sweeper's share: take back effects whose worker died or overran its lease, then ring the
    due ones and those whose bell was rung ``lost_after`` ago without effect. Returns how many rang."""
    from kiln.processing import hosts, ledger

    now, policy = utcnow(), rt.settings.outbox
    with rt.sessions() as session:
        silent = hosts.silent_hosts(session, rt.settings)
        for effect in session.scalars(select(OutboxEffect).where(OutboxEffect.state == WorkState.RUNNING)):
            lapsed = effect.lease_expires is not None and effect.lease_expires < now
            if lapsed or hosts.lost(effect.lease_owner, silent):
                ledger.retry_later(effect, policy, "WorkerLost", "worker_lost",
                                   KilnError("The worker running this stopped unexpectedly."))
        session.flush()
        due = list(session.scalars(select(OutboxEffect.id).where(or_(
            (OutboxEffect.state == WorkState.PENDING) & (OutboxEffect.next_run <= now),
            (OutboxEffect.state == WorkState.QUEUED) & (OutboxEffect.enqueued < now - lost_after),
        )).order_by(OutboxEffect.id)))
        if due:
            ledger.requeue_effects(session, due)
            ring_after_commit(session, due)
        session.commit()
    return len(due)


def retry(rt: Runtime, ids: Iterable[int] | None = None, *, failed_only: bool = False) -> list[int]:
    """Run effects again now: the given ones, or every failed or waiting one. A failed effect starts
    over with a fresh count of attempts. Returns the ids rung."""
    from kiln.processing import ledger

    wanted = (WorkState.FAILED,) if failed_only else (WorkState.FAILED, WorkState.PENDING)
    with rt.sessions() as session:
        query = select(OutboxEffect.id).where(OutboxEffect.state.in_(wanted))
        if ids is not None:
            query = query.where(OutboxEffect.id.in_(list(ids)))
        chosen = list(session.scalars(query.order_by(OutboxEffect.id)))
        if chosen:
            ledger.requeue_effects(session, chosen, fresh_attempts=True)
            ring_after_commit(session, chosen)
        session.commit()
    return chosen


def listing(session: Session, states: Iterable[str] | None = None, limit: int = 50) -> list[OutboxEffect]:
    query = select(OutboxEffect).order_by(OutboxEffect.id.desc()).limit(limit)
    if states:
        query = query.where(OutboxEffect.state.in_(list(states)))
    return list(session.scalars(query))
