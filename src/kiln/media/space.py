"""Disk space where uploads land: an upload that would fill the disk is refused with a sentence
(507) before its body is read, instead of failing half way with a generic error."""

from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass
from pathlib import Path

from kiln.config import Settings
from kiln.errors import KilnError
from kiln.storage import Stores

MIB = 1024 * 1024


class InsufficientStorage(KilnError):
    code = "disk_full"
    status = 507


FULL = InsufficientStorage("The server is almost out of disk space, so it cannot take this upload now. "
                           "Nothing was stored. Try again later, and tell the site's administrator.")


@dataclass
class Place:
    """A folder uploads pass through, and the space left on its disk."""

    what: str
    path: Path
    free: int
    reserve: int

    @property
    def low(self) -> bool:
        return self.free < self.reserve


def places(settings: Settings, stores: Stores) -> list[Place]:
    """The workbench (every upload is received there) and the queue store when it is on this disk."""
    folders = [("uploads being received (workbench)", settings.workbench_dir)]
    queue = stores.queue
    if getattr(queue, "is_local", False) and hasattr(queue, "root"):
        folders.append(("uploads waiting to be processed (queue store)", Path(queue.root)))
    found = []
    for what, folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        found.append(Place(what, folder, shutil.disk_usage(folder).free, settings.storage.reserve_mib * MIB))
    return found


def check_room(settings: Settings, stores: Stores, incoming: int) -> None:
    """Refuse (507) an upload of ``incoming`` bytes that would leave less than the reserve free."""
    for place in places(settings, stores):
        if place.free - incoming < place.reserve:
            raise FULL


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
