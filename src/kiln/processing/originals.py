"""Moving an original from the private queue store into the originals store when its item is published.

On a local disk the original is linked there and its folder synced, before the commit that records it
(removed from the queue store after that commit); elsewhere it is copied after the commit, committed
again, then deleted: a crash leaves a spare copy, never none (processing/service.py).

The link and its sync start while the steps run (``start_link``): syncing a folder waits on the
disk's journal (about 3 ms on the benchmark machine), and a worker that waited for it after its steps
spent that time idle. The commit waits for it (``EarlyLink.take``); a run that does not publish the
item removes the link again (``EarlyLink.undo``), and a link left by a worker that died is a file no
row refers to, which ``kiln storage gc`` removes.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from kiln.media.models import MediaEntry
from kiln.runtime import Runtime
from kiln.storage.base import put_local_file


def can_link(rt: Runtime) -> bool:
    """Whether the queue and originals stores are folders an original can be linked between."""
    return rt.stores.queue.is_local and getattr(rt.stores.originals, "link_in", None) is not None


def link_original(rt: Runtime, media: MediaEntry) -> bool:
    """Link the original from the queue store into the originals store, where both are folders that
    can (the upload's bytes were synced when it was received: a link, its folder synced). Returns
    whether it did."""
    if not can_link(rt):
        return False
    key = list(media.original_key)
    put_local_file(rt.stores.originals, key, rt.stores.queue.local_path(key), durable=True)
    return True


def copy_original(rt: Runtime, media: MediaEntry) -> bool:
    key = list(media.original_key)
    with rt.stores.queue.open(key) as fh:
        rt.stores.originals.save(key, fh)
    return True


class EarlyLink:
    """The link of an original made while its item's steps run, taken by the publishing commit or undone."""

    def __init__(self, rt: Runtime, media: MediaEntry) -> None:
        self.rt, self.key = rt, list(media.original_key)
        self.linking: Future[bool] = _linker().submit(link_original, rt, media)
        self.taken = False

    def take(self) -> bool:
        """Wait for the link (its folder synced) before the commit that records it; raises what it raised."""
        self.taken = True
        return self.linking.result()

    def undo(self) -> None:
        """The item was not published by this run: the original stays in the queue store only."""
        if self.taken:
            return
        self.taken = True
        with contextlib.suppress(Exception):  # a failed link left nothing; a failed delete leaves gc a file
            if self.linking.result():
                self.rt.stores.originals.delete(self.key)


def start_link(rt: Runtime, media: MediaEntry) -> EarlyLink | None:
    """Start linking the original of an item that this run may publish (its original still in the queue
    store, on a disk it can be linked from)."""
    if media.original_store != "queue" or not can_link(rt):
        return None
    return EarlyLink(rt, media)


_executor: tuple[int, ThreadPoolExecutor] | None = None
_executor_lock = threading.Lock()


def _linker() -> ThreadPoolExecutor:
    """This process's thread for links (a new one in a forked child: threads do not cross a fork)."""
    global _executor
    with _executor_lock:
        if _executor is None or _executor[0] != os.getpid():
            _executor = (os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="kiln-originals"))
        return _executor[1]
