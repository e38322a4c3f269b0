"""The Celery application: brokers, lanes and the two tasks (processing a media item, running an
outbox effect).

The embedded default uses kombu's filesystem transport under DATA/queue (with atomic writes, see
queue_files.py), so a single machine needs no broker server; Redis and RabbitMQ are chosen by URL (``broker_url``).
"""

from __future__ import annotations

import os
import threading

from celery import Celery
from kombu.entity import Exchange, Queue

from kiln.config import Settings
from kiln.mediatypes import KIND_MODULES
from kiln.processing import queue_files
from kiln.processing.dispatch import REASONS, lane
from kiln.processing.outbox import QUEUE as OUTBOX_QUEUE
from kiln.processing.outbox import WorkerBell

KINDS = KIND_MODULES  # each kind's package is named after it
LANES_EXCHANGE = Exchange("kiln.lanes", type="direct")
# Seconds a Redis command may wait for its answer (a consumer's BRPOP waits 1 s, well inside it).
REDIS_SOCKET_TIMEOUT = 3.0


def lanes(kinds: tuple[str, ...] = KINDS) -> list[str]:
    """Every lane, fresh uploads first (the worker polls queues in this order)."""
    return [lane(kind, reason) for reason in REASONS for kind in kinds]


def make_celery(settings: Settings) -> Celery:
    app = Celery("kiln", set_as_current=False)
    if settings.embedded_queue:
        folder = settings.queue_dir
        for sub in ("messages", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        app.conf.broker_url = queue_files.register()
        app.conf.broker_transport_options = {
            "data_folder_in": str(folder / "messages"),
            "data_folder_out": str(folder / "messages"),
            "control_folder": str(folder / "control"),
            # Only where inotify is missing (queue_files.py): an idle worker waits on a watch of the
            # folder instead, woken as a message lands.
            "polling_interval": 0.05,
        }
    else:
        app.conf.broker_url = settings.broker_url
        # Redis redelivers unacknowledged messages only after this; the sweeper covers the gap.
        app.conf.broker_transport_options = {"visibility_timeout": 3600}
        if (settings.broker_url or "").startswith(("redis://", "rediss://")):
            # A Redis that stops answering on an open connection (hung, or cut off from this host without
            # the connection being closed) held a bell, and the upload ringing it, forever: without a
            # socket timeout redis-py waits for the reply as long as the connection looks open.
            app.conf.broker_transport_options["socket_timeout"] = REDIS_SOCKET_TIMEOUT
    # Remote control (Celery's broadcast commands) is unused by Kiln: off, a worker declares no "pidbox"
    # queue of its own. On the embedded queue that queue would be another folder to poll; on RabbitMQ it
    # is exclusive to the worker's connection, so a worker host cut off from the broker and started again
    # (the same node name, the broker not yet aware the old connection is dead) failed to start with
    # RESOURCE_LOCKED until RabbitMQ dropped the old connection, minutes later.
    app.conf.worker_enable_remote_control = False
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A pool process killed mid-task (time limit, memory, a poison file) holds its message, and
        # with it a prefetch slot of the whole worker, until Celery gives up waiting for its result
        # (10 s by default). Results are ignored here: give up after a second and let the message requeue.
        worker_lost_wait=1.0,
        # Every lane is bound to one direct exchange under its own name. A bare Queue(name) is bound to
        # Celery's default exchange under the default queue's routing key, so all lanes shared one
        # binding and a message for one lane was copied into every lane.
        task_queues=[Queue(name, LANES_EXCHANGE, routing_key=name) for name in [*lanes(), OUTBOX_QUEUE]],
        task_default_exchange=LANES_EXCHANGE.name,
        task_default_routing_key=lane("image", "new"),
        task_default_queue=lane("image", "new"),
        broker_connection_retry_on_startup=True,
        # A bell is rung from a web request: with the broker down or hung it must fail within seconds
        # (the ledger keeps the work and the sweeper rings again), not hold the request.
        broker_connection_timeout=2,
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5,
                                   "interval_max": 0.5},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        result_backend=None,
        task_ignore_result=True,
    )
    app.kiln_settings = settings
    _register_tasks(app)
    return app


_runtime_lock = threading.Lock()
_runtimes: dict[tuple[int, int], object] = {}


def worker_runtime(app: Celery):
    """One Runtime per worker process, built after fork (no connection crosses a fork), with the
    memory limit applied and time limits enforced."""
    from kiln.processing.dispatch import CeleryDispatcher
    from kiln.processing.limits import apply_memory_limit
    from kiln.runtime import build_runtime

    key = (id(app), os.getpid())
    with _runtime_lock:
        if key not in _runtimes:
            settings = app.kiln_settings
            apply_memory_limit(settings.processing.memory_limit_mb)
            rt = build_runtime(settings, dispatcher=CeleryDispatcher(app))
            rt.enforce_limits = True
            rt.effects = WorkerBell(rt, rt.effects)  # the search index of what it publishes, done here
            _runtimes[key] = rt
        return _runtimes[key]


def _register_tasks(app: Celery) -> None:
    @app.task(name="kiln.process_media", ignore_result=True)
    def process_media(media_id: int) -> str | None:
        from kiln.processing.service import process_media as run

        return run(worker_runtime(app), media_id)

    @app.task(name="kiln.run_effect", ignore_result=True)
    def run_effect(effect_id: int) -> str | None:
        """One outbox effect (a mail): claimed, run, marked done or scheduled to retry."""
        from kiln.processing.outbox import run_effect as run

        return run(worker_runtime(app), effect_id)
