"""A store being migrated: reads come from the current backend, writes and deletes go to both, so
nothing created during the copy is missing from the new backend when the switch happens."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from kiln.storage.base import CHUNK, Key, Storage


class MirroredStorage:
    def __init__(self, primary: Storage, mirror: Storage) -> None:
        self.primary, self.mirror = primary, mirror
        self.name, self.is_local = primary.name, primary.is_local

    def exists(self, key: Key) -> bool:
        return self.primary.exists(key)

    def open(self, key: Key, start: int | None = None, end: int | None = None) -> BinaryIO:
        return self.primary.open(key, start, end)

    def save(self, key: Key, source: BinaryIO) -> int:
        # Spool once, then write both: the source may not be readable twice.
        with tempfile.TemporaryFile() as spool:
            while chunk := source.read(CHUNK):
                spool.write(chunk)
            spool.seek(0)
            size = self.primary.save(key, spool)
            spool.seek(0)
            self.mirror.save(key, spool)
        return size

    def delete(self, key: Key) -> None:
        self.primary.delete(key)
        self.mirror.delete(key)

    def delete_dir(self, key: Key) -> None:
        self.primary.delete_dir(key)
        self.mirror.delete_dir(key)

    def size(self, key: Key) -> int:
        return self.primary.size(key)

    def modified(self, key: Key) -> float:
        return self.primary.modified(key)

    def url(self, key: Key) -> str:
        return self.primary.url(key)

    def local_path(self, key: Key) -> Path:
        return self.primary.local_path(key)

    def iter_keys(self, prefix: Key = ()) -> Iterator[list[str]]:
        return self.primary.iter_keys(prefix)
