"""The embedded queue: kombu's filesystem transport, with messages written atomically, taken by a
rename on the same disk, and a worker woken the moment a message lands.

- Writing: kombu writes each message straight under its final name, and a consumer polling the folder
  may move and read it before the writer has finished: it then reads an empty or half-written file, and
  the JSON error stops the worker's consumer (every later upload stays queued). Here a message is written
  under a temporary name the consumer ignores, then renamed into place in one step.
- Taking: kombu moves a message to the system's temporary folder (often another file system: a copy
  and a delete) before reading it. Here it is renamed into ``taken/`` beside the queue (one atomic step:
  of two consumers, one gets it), read and deleted.
- Waking: kombu sleeps ``polling_interval`` between looks at an empty folder, so each message waited
  half an interval on average. Here an idle worker blocks on an inotify watch of the folder (Linux) and
  wakes when a message is renamed in; it looks again at least every ``IDLE_LOOK`` seconds regardless.
  Where inotify is missing, it polls as kombu does. A worker whose pool processes are all busy waits
  for one of them to finish its task (the acknowledgement sets an event), not for a poll.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem, virtual
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps, loads

SCHEME = "kilnfs"
IDLE_LOOK = 1.0  # seconds an idle worker waits on the watch before it looks at the folder anyway
BUSY_LOOK = 0.5  # while every pool process is busy: the longest wait for one to say it is free


class QoS(virtual.QoS):
    """kombu's prefetch accounting, which also says when a slot frees (a task acknowledged or
    rejected, from the pool's result thread), so a worker whose slots were all taken takes the next
    message at that moment instead of looking again after a sleep."""

    def __init__(self, channel: Any, prefetch_count: int = 0) -> None:
        super().__init__(channel, prefetch_count)
        self.freed = threading.Event()

    def ack(self, delivery_tag: Any) -> None:
        super().ack(delivery_tag)
        self.freed.set()

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        super().reject(delivery_tag, requeue=requeue)
        self.freed.set()


class Channel(filesystem.Channel):
    QoS = QoS

    # kombu's filesystem Channel names the second parameter "payload", its base "message"; kombu passes both
    # positionally.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{time.monotonic_ns():020d}_{uuid.uuid4()}.{queue}.msg"  # sorted: oldest first
        # A name starting with a dot: the consumer only takes files named "<stamp>.<queue>.msg".
        temporary = os.path.join(self.data_folder_out, f".part-{uuid.uuid4().hex}")
        try:
            with open(temporary, "wb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to the queue folder {self.data_folder_out!r}") from exc

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        """The oldest message of ``queue``, taken by renaming it out of the folder."""
        suffix = f".{queue}.msg"
        folder = Path(self.data_folder_in)
        taken = folder.parent / "taken"
        taken.mkdir(exist_ok=True)
        for name in sorted(n for n in os.listdir(folder) if n.endswith(suffix) and not n.startswith(".")):
            mine = taken / f"{os.getpid()}-{name}"
            try:
                os.rename(folder / name, mine)
            except FileNotFoundError:  # another consumer took it first
                continue
            try:
                payload = mine.read_bytes()
                mine.unlink()
            except OSError as exc:
                raise ChannelError(f"Cannot read the message {str(mine)!r} from the queue.") from exc
            return loads(payload)
        raise Empty()


def clean_taken(queue_dir: Path) -> int:
    """Remove the messages a consumer took and died before it read (a SIGKILL between the rename and
    the delete; the sweeper rings their items' bells again). Returns how many."""
    from kiln.processing.limits import HOST, owner_is_dead

    removed = 0
    try:
        names = os.listdir(queue_dir / "taken")
    except FileNotFoundError:
        return 0
    for name in names:
        pid = name.split("-", 1)[0]
        if pid.isdigit() and owner_is_dead(f"{HOST}:{pid}"):
            (queue_dir / "taken" / name).unlink(missing_ok=True)
            removed += 1
    return removed


class Transport(filesystem.Transport):
    Channel = Channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch: Any = None
        self._watch_pid = -1

    def drain_events(self, connection: Any, timeout: float | None = None, **kwargs: Any) -> None:
        """Deliver one message; between looks, block on the folder's watch instead of sleeping."""
        started = monotonic()
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)  # type: ignore[union-attr]
                return
            except Empty:
                pass
            left = None if timeout is None else timeout - (monotonic() - started)
            if left is not None and left <= 0:
                raise TimeoutError()
            self._wait(IDLE_LOOK if left is None else min(left, IDLE_LOOK))

    def _wait(self, seconds: float) -> None:
        full = [channel.qos for channel in self.channels if channel._consumers and not channel.qos.can_consume()]
        if full:  # every slot is taken: wait for a finishing task to free one
            full[0].freed.clear()
            if not full[0].can_consume():  # asked again after the clear: a slot freed in between is seen
                full[0].freed.wait(min(seconds, BUSY_LOOK))
            return
        watch = self._watcher()
        if watch is None:
            time.sleep(min(seconds, self.polling_interval or IDLE_LOOK))
            return
        watch.read(timeout=int(seconds * 1000))  # any event: a message arrived (or one was taken)

    def _watcher(self) -> Any:
        if self._watch_pid != os.getpid():  # made in the consuming process, never shared across a fork
            self._watch_pid, self._watch = os.getpid(), None
            try:
                from inotify_simple import INotify, flags

                folder = self.client.transport_options["data_folder_in"]  # type: ignore[union-attr]
                self._watch = INotify()
                self._watch.add_watch(folder, flags.MOVED_TO | flags.CLOSE_WRITE)
            except (ImportError, OSError, KeyError):  # not Linux, or no watches left: poll
                self._watch = None
        return self._watch


def register() -> str:
    """Make ``kilnfs://`` name this transport (in every process that builds the Celery app)."""
    TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
    # A host part, though nothing connects to it: without one kombu warns "No hostname was supplied".
    return f"{SCHEME}://localhost/"
