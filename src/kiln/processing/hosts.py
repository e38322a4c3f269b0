"""Several machines: which processing workers are running where, and refusing configurations that
cannot work across hosts.

Every ``kiln worker`` (and so every ``kiln serve`` with its worker) writes a heartbeat row
(``WorkerHost``) from its sweeper each sweep: its host, lanes, processes, how many steps it is running,
and what broker and stores it uses, named without secrets. The admin processing panel lists them.

``check_start`` runs before a worker or web process starts. With ``multi_host`` it refuses what only
works on one machine: the embedded queue (messages are files in this machine's data directory), a local
store (a folder other hosts do not see) and SQLite. And it refuses to join a site whose other hosts,
seen beating lately, use another broker or other stores: such a worker would take work the others
never see, or store files they cannot find. Each refusal says what to change.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import JSON, Integer, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kiln.config import Settings
from kiln.db.base import Base, utcnow
from kiln.errors import KilnError
from kiln.processing.limits import owner_is_dead
from kiln.processing.models import ProcessingStep, WorkState

if TYPE_CHECKING:
    from kiln.runtime import Runtime

HOST = socket.gethostname()
# A host not heard from for this many sweeps is not counted as running (and is dropped after a day).
SILENT_AFTER = 3
FORGET_AFTER = dt.timedelta(days=1)


class WorkerHost(Base):
    __tablename__ = "worker_hosts"

    id: Mapped[str] = mapped_column(String(300), primary_key=True)  # "host:pid" of the worker
    host: Mapped[str] = mapped_column(String(255), index=True)
    started: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_beat: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    lanes: Mapped[list[str]] = mapped_column(JSON, default=list)
    processes: Mapped[int] = mapped_column(Integer, default=1)
    running: Mapped[int] = mapped_column(Integer, default=0)  # steps running on this host at the beat
    broker: Mapped[str] = mapped_column(String(300), default="")
    stores: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class WontWorkAcrossHosts(KilnError):
    code = "multi_host"


def _redacted(url: str) -> str:
    """A URL without its user and password: what identifies a service, not what opens it."""
    parts = urlsplit(url)
    where = parts.hostname or ""
    if parts.port:
        where += f":{parts.port}"
    return f"{parts.scheme}://{where}{parts.path}"


def broker_identity(settings: Settings) -> str:
    return "embedded" if settings.embedded_queue else _redacted(settings.broker_url or "")


def store_identities(settings: Settings) -> dict[str, str]:
    """Where each store is, without secrets: "swift https://swift.example/auth/v1.0 kiln-public"."""
    out: dict[str, str] = {}
    for store in ("queue", "originals", "public"):
        name = getattr(settings.storage, store)
        backend = settings.storage.backends.get(name)
        if backend is None or backend.type == "local":
            path = backend.path if backend is not None and backend.path else settings.data_dir / "media"
            out[store] = f"local {path}"
        elif backend.type == "swift":
            out[store] = f"swift {_redacted(backend.auth_url or '')} {backend.prefix}-{store}"
        else:
            out[store] = f"s3 {_redacted(backend.endpoint_url or '')} {backend.prefix}-{store}"
    return out


def check_start(rt: Runtime, *, multi_host: bool) -> None:
    """Refuse, with a sentence saying what to change, a process that cannot work with the others."""
    settings = rt.settings
    config = settings.data_dir / "kiln.toml"
    if multi_host:
        if settings.embedded_queue:
            raise WontWorkAcrossHosts(
                "--multi-host needs a broker every host reaches: the embedded queue keeps its messages in this "
                "machine's data directory. Set broker_url (Redis or RabbitMQ) in %(config)s.", config=str(config))
        if settings.db_url.startswith("sqlite"):
            raise WontWorkAcrossHosts(
                "--multi-host needs a database every host reaches: SQLite is a file on this machine. Set "
                "database_url (PostgreSQL) in %(config)s.", config=str(config))
        local = [store for store, where in store_identities(settings).items() if where.startswith("local ")]
        if local:
            raise WontWorkAcrossHosts(
                "--multi-host needs stores every host reaches: %(stores)s is a folder on this machine. Give it a "
                "Swift or S3 backend in [storage] of %(config)s.", stores=", ".join(local), config=str(config))
    mine = (broker_identity(settings), store_identities(settings))
    since = utcnow() - dt.timedelta(seconds=settings.processing.sweep_interval * SILENT_AFTER)
    with rt.sessions() as session:
        others = session.scalars(select(WorkerHost).where(WorkerHost.last_beat >= since,
                                                          WorkerHost.host != HOST)).all()
    for other in others:
        if other.broker != mine[0]:
            raise WontWorkAcrossHosts(
                "Host %(host)s, at work on this site, uses the broker %(theirs)s; this host would use %(ours)s. "
                "Every host must use the same one: change broker_url in %(config)s.",
                host=other.host, theirs=other.broker, ours=mine[0], config=str(config))
        for store, where in mine[1].items():
            if other.stores.get(store, where) != where:
                raise WontWorkAcrossHosts(
                    "Host %(host)s, at work on this site, keeps the %(store)s store in %(theirs)s; this host would "
                    "use %(ours)s. Every host must use the same stores: change [storage] in %(config)s.",
                    host=other.host, store=store, theirs=other.stores[store], ours=where, config=str(config))


def beat(rt: Runtime, worker_id: str, lanes: list[str], processes: int) -> None:
    """Write this worker's heartbeat (and forget hosts silent for a day)."""
    now = utcnow()
    with rt.sessions() as session:
        running = session.scalar(select(func.count()).select_from(ProcessingStep).where(
            ProcessingStep.state == WorkState.RUNNING, ProcessingStep.lease_owner.like(f"{HOST}:%"))) or 0
        row = session.get(WorkerHost, worker_id)
        if row is None:
            row = WorkerHost(id=worker_id, host=HOST, started=now)
            session.add(row)
        row.last_beat, row.lanes, row.processes, row.running = now, lanes, processes, running
        row.broker, row.stores = broker_identity(rt.settings), store_identities(rt.settings)
        session.execute(delete(WorkerHost).where(WorkerHost.last_beat < now - FORGET_AFTER))
        session.commit()


def silent_hosts(session: Session, settings: Settings) -> dict[str, dt.datetime]:
    """Other hosts whose every worker has been silent for SILENT_AFTER sweeps (down or cut off), with
    the last moment each may still have been at work (its last beat plus one sweep). The sweeper takes
    back their running steps and effects at once instead of waiting for each lease to lapse (a late
    answer from such a host is refused: it no longer holds the lease), and rings again the bells of
    work queued before that moment, which such a host may have taken and never begun."""
    interval = dt.timedelta(seconds=settings.processing.sweep_interval)
    since = utcnow() - interval * SILENT_AFTER
    rows = session.execute(
        select(WorkerHost.host, func.max(WorkerHost.last_beat)).where(WorkerHost.host != HOST)
        .group_by(WorkerHost.host).having(func.max(WorkerHost.last_beat) < since)).all()
    return {host: _aware(last) + interval for host, last in rows}


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives an aggregate's datetime back without its zone: it is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def lost(owner: str | None, silent: dict[str, dt.datetime]) -> bool:
    """Whether the holder of a lease is gone: its process died on this host, or its host fell silent."""
    return owner_is_dead(owner) or (owner or "").partition(":")[0] in silent


def leave(rt: Runtime, worker_id: str) -> None:
    """A worker stopping cleanly takes its row away."""
    with rt.sessions() as session:
        session.execute(delete(WorkerHost).where(WorkerHost.id == worker_id))
        session.commit()


def worker_id(pid: int | None = None) -> str:
    return f"{HOST}:{pid or os.getpid()}"


def listing(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """The workers heard from in the last day, by host (for the admin processing panel); ``silent``:
    not heard from for SILENT_AFTER sweeps."""
    now = utcnow()
    silent = dt.timedelta(seconds=settings.processing.sweep_interval * SILENT_AFTER)
    rows = session.scalars(select(WorkerHost).order_by(WorkerHost.host, WorkerHost.started)).all()
    return [{"host": r.host, "id": r.id, "lanes": r.lanes, "processes": r.processes, "running": r.running,
             "last_beat": r.last_beat, "silent": now - r.last_beat > silent, "broker": r.broker}
            for r in rows]
