"""Delivery state per destination server: a delivery that fails is retried with exponential backoff
(``[federation] delivery_*``: one minute, doubling, at most a day apart, about three weeks in all);
a server that has failed ``dead_host_failures`` times in a row over at least ``dead_host_after_seconds``
counts as **dead**: its deliveries wait (without using up their tries) while one of them is tried
every ``dead_host_probe_seconds``. When a delivery gets through, or the server answers at all, it is
alive again and every waiting delivery to it goes at once.

Each function runs in a short transaction of its own, never around the network call.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiln.config import RetryPolicy
from kiln.db.base import utcnow
from kiln.errors import KilnError
from kiln.federation.models import DeliveryHost
from kiln.processing import outbox
from kiln.processing.models import OutboxEffect, WorkState

if TYPE_CHECKING:
    from kiln.runtime import Runtime

DELIVERY = "federation_deliver"
WAITING = (WorkState.PENDING, WorkState.QUEUED, WorkState.RUNNING)


def host_of(inbox: str) -> str:
    return (urlsplit(inbox).hostname or "?").lower()[:255]


def policy(rt: Runtime) -> RetryPolicy:
    """The retry policy of deliveries (not the [outbox] one, which gives up within hours)."""
    fed = rt.settings.federation
    return RetryPolicy(step_time_limit=fed.delivery_time_limit, max_attempts=fed.delivery_max_attempts,
                       backoff_base=fed.delivery_backoff_base, backoff_cap=fed.delivery_backoff_cap)


def _row(session: Session, host: str) -> DeliveryHost:
    row = session.get(DeliveryHost, host)
    if row is None:
        row = DeliveryHost(host=host, state="up", failures=0, last_error="")
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # made by another delivery at the same moment
            row = session.get(DeliveryHost, host)
            assert row is not None
    return row


def before_try(rt: Runtime, host: str) -> None:
    """Let a delivery to ``host`` go, or postpone it (outbox.Postponed) while the host is dead and
    its next probe is not due; a due probe is taken by this delivery (the others keep waiting)."""
    now = utcnow()
    with rt.sessions() as session:
        row = session.get(DeliveryHost, host)
        if row is None or row.state != "dead":
            return
        if row.probe_at is not None and row.probe_at > now:
            raise outbox.Postponed(row.probe_at, KilnError(
                "%(host)s has not answered for a while; this waits until it does.", host=host))
        row.probe_at = now + dt.timedelta(seconds=rt.settings.federation.dead_host_probe_seconds)
        session.commit()


def failed(rt: Runtime, host: str, error: str) -> None:
    """Count a failure; the host becomes dead after enough of them, over long enough."""
    settings, now = rt.settings.federation, utcnow()
    with rt.sessions() as session:
        row = _row(session, host)
        row.failures += 1
        row.first_failure = row.first_failure or now
        row.last_failure, row.last_error = now, error[:500]
        if (row.state == "up" and row.failures >= settings.dead_host_failures
                and now - row.first_failure >= dt.timedelta(seconds=settings.dead_host_after_seconds)):
            row.state = "dead"
            row.probe_at = now + dt.timedelta(seconds=settings.dead_host_probe_seconds)
        session.commit()


def answered(rt: Runtime, host: str) -> None:
    """The host answered: alive. When it was dead, its waiting deliveries go now."""
    with rt.sessions() as session:
        row = session.get(DeliveryHost, host)
        if row is None:
            return
        was_dead = row.state == "dead"
        row.state, row.failures, row.first_failure, row.probe_at = "up", 0, None, None
        row.last_success = utcnow()
        if was_dead:
            wake(session, host)
        session.commit()


def wake(session: Session, host: str) -> list[int]:
    """Make the waiting deliveries to ``host`` due now (rung after the caller's commit)."""
    ids = [e.id for e in session.scalars(select(OutboxEffect).where(
        OutboxEffect.kind == DELIVERY, OutboxEffect.state == WorkState.PENDING))
        if host_of(str(e.payload.get("inbox", ""))) == host]
    if ids:
        from kiln.processing import ledger

        ledger.requeue_effects(session, ids)
        outbox.ring_after_commit(session, ids)
    return ids


# What admins see -----------------------------------------------------------------------------------

@dataclass
class HostView:
    host: str
    state: str = "up"
    failures: int = 0
    last_success: dt.datetime | None = None
    last_failure: dt.datetime | None = None
    last_error: str = ""
    probe_at: dt.datetime | None = None
    pending: int = 0
    failed: int = 0


@dataclass
class Overview:
    hosts: list[HostView] = field(default_factory=list)
    failed: list[OutboxEffect] = field(default_factory=list)  # the latest failed deliveries
    pending: list[OutboxEffect] = field(default_factory=list)  # the next waiting ones


def overview(session: Session, limit: int = 100) -> Overview:
    """Every host with deliveries waiting or failed, or a failure on record; the latest failed and
    the next waiting deliveries."""
    waiting: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    effects = list(session.scalars(select(OutboxEffect).where(
        OutboxEffect.kind == DELIVERY, OutboxEffect.state.in_([*WAITING, WorkState.FAILED]))
        .order_by(OutboxEffect.id.desc())))
    for effect in effects:
        (failures if effect.state == WorkState.FAILED else waiting)[host_of(str(effect.payload.get("inbox")))] += 1
    rows = {r.host: r for r in session.scalars(select(DeliveryHost))}
    views = []
    for host in sorted(set(waiting) | set(failures) | {h for h, r in rows.items() if r.failures or r.state != "up"}):
        row = rows.get(host)
        view = HostView(host, pending=waiting[host], failed=failures[host])
        if row is not None:
            view.state, view.failures, view.last_error = row.state, row.failures, row.last_error
            view.last_success, view.last_failure, view.probe_at = row.last_success, row.last_failure, row.probe_at
        views.append(view)
    views.sort(key=lambda v: (v.state != "dead", -(v.failed + v.pending), v.host))
    failed_rows = [e for e in effects if e.state == WorkState.FAILED][:limit]
    pending_rows = sorted((e for e in effects if e.state != WorkState.FAILED),
                          key=lambda e: (e.next_run or utcnow(), e.id))[:limit]
    return Overview(views, failed_rows, pending_rows)


def deliveries_of(session: Session, host: str | None, states: tuple[str, ...]) -> list[int]:
    return [e.id for e in session.scalars(select(OutboxEffect).where(
        OutboxEffect.kind == DELIVERY, OutboxEffect.state.in_(list(states))).order_by(OutboxEffect.id))
        if host is None or host_of(str(e.payload.get("inbox"))) == host]


def retry_host(rt: Runtime, host: str | None) -> list[int]:
    """Send the failed and waiting deliveries to ``host`` (every host: None) again now, fresh tries
    each; a dead host is probed by them at once. Returns the ids rung."""
    with rt.sessions() as session:
        ids = deliveries_of(session, host, (WorkState.FAILED, WorkState.PENDING))
        query = select(DeliveryHost) if host is None else select(DeliveryHost).where(DeliveryHost.host == host)
        for row in session.scalars(query):
            row.probe_at = None if row.state == "dead" else row.probe_at
        session.commit()
    return outbox.retry(rt, ids) if ids else []


def describe(effect: OutboxEffect) -> dict[str, Any]:
    """One delivery as admins and ``kiln federation deliveries --json`` read it."""
    activity = effect.payload.get("activity") or {}
    return {"id": effect.id, "host": host_of(str(effect.payload.get("inbox"))), "inbox": effect.payload.get("inbox"),
            "type": activity.get("type") if isinstance(activity, dict) else None, "state": effect.state,
            "attempts": effect.attempts, "next_try": effect.next_run.isoformat() if effect.next_run else None,
            "error": effect.error_message or ""}


outbox.register_policy(DELIVERY, policy)
