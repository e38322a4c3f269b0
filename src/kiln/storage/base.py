"""The storage interface (after MediaGoblin's seed page): keys are lists of cleaned path
components, and files go in and out as file-like objects, streamed, never whole in memory."""

from __future__ import annotations

import io
import os
import re
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from kiln.errors import KilnError

Key = Sequence[str]
CHUNK = 1024 * 1024


class StorageError(KilnError):
    code = "storage_error"
    status = 503


class NoSuchFile(StorageError):
    code = "no_such_file"
    status = 404


class InvalidKey(StorageError):
    code = "invalid_key"
    status = 400


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def clean_component(component: str) -> str:
    """Make one path component safe, like werkzeug's secure_filename.

    ``'../../../etc/'`` becomes ``'etc'``; a component that cleans to nothing is an error.
    """
    text = unicodedata.normalize("NFKD", component).encode("ascii", "ignore").decode("ascii")
    for sep in ("/", "\\"):
        text = text.replace(sep, " ")
    text = _UNSAFE.sub("", "_".join(text.split())).strip("._")
    if not text:
        raise InvalidKey("The storage path component %(component)s is empty once cleaned.", component=repr(component))
    return text


def clean_key(key: Key) -> list[str]:
    if isinstance(key, str) or not key:
        raise InvalidKey("A storage key is a non-empty list of path components.")
    return [clean_component(part) for part in key]


@runtime_checkable
class Storage(Protocol):
    """What every backend provides. Keys are cleaned by the backend with :func:`clean_key`."""

    name: str
    is_local: bool

    def exists(self, key: Key) -> bool: ...

    def open(self, key: Key, start: int | None = None, end: int | None = None) -> BinaryIO:
        """Open for reading, streaming; ``start``/``end`` (inclusive) read a byte range. Raises NoSuchFile."""
        ...

    def save(self, key: Key, source: BinaryIO) -> int:
        """Write ``source`` (read in chunks) to ``key`` atomically; return the byte count."""
        ...

    def delete(self, key: Key) -> None:
        """Delete one file; deleting a missing file is not an error."""
        ...

    def delete_dir(self, key: Key) -> None:
        """Delete everything under ``key``."""
        ...

    def size(self, key: Key) -> int: ...

    def modified(self, key: Key) -> float:
        """When the file was last written, in seconds since the epoch. Raises NoSuchFile."""
        ...

    def url(self, key: Key) -> str:
        """A URL a browser can fetch the file from: plain for the public store, signed and expiring
        for a private store where the backend supports it; StorageError where it does not."""
        ...

    def local_path(self, key: Key) -> Path:
        """The file's path on this machine (local backends only)."""
        ...

    def iter_keys(self, prefix: Key = ()) -> Iterator[list[str]]: ...


class CountingReader:
    """Wraps a readable file and counts the bytes read through it, holding none of them.

    Deliberately neither seekable nor tell-able, so clients stream it instead of sizing it first."""

    def __init__(self, source: BinaryIO) -> None:
        self.source, self.count = source, 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.count += len(data)
        return data


class RangeReader(io.RawIOBase):
    """Reads at most ``length`` bytes from an already positioned file (None: to the end)."""

    def __init__(self, fh: BinaryIO, length: int | None) -> None:
        self.fh, self.left = fh, length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left is not None:
            size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.fh.read(size)
        if self.left is not None:
            self.left -= len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.fh.close()
        super().close()


def unique_key(store: Storage, key: Key) -> list[str]:
    """``key`` if nothing is stored there yet, else the same folder with a random prefix on the
    file name (MediaGoblin's get_unique_filepath)."""
    cleaned = clean_key(key)
    while store.exists(cleaned):
        cleaned = [*cleaned[:-1], f"{uuid.uuid4().hex[:12]}-{cleaned[-1]}"]
    return cleaned


def copy_to_local(store: Storage, key: Key, dest: Path) -> Path:
    """Copy a stored file to a local path (the workbench), streaming; a file of a local store on the
    same disk is hard-linked instead (read only, never written through: a step writes new files)."""
    if store.is_local:
        try:
            os.link(store.local_path(key), dest)
            return dest
        except FileNotFoundError:
            raise NoSuchFile("No stored file at %(key)s.", key="/".join(key)) from None
        except OSError:  # another disk: copy
            pass
    with store.open(key) as src, dest.open("wb") as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
    return dest


def save_local_file(store: Storage, key: Key, path: Path) -> int:
    with path.open("rb") as fh:
        return store.save(key, fh)


def put_local_file(store: Storage, key: Key, path: Path, *, durable: bool) -> int:
    """Store a finished local file: linked in without a copy where the store is a folder on the same
    disk, else copied (and synced) by the store. ``durable``: the stored file survives a power cut once
    this returns; a link then needs the file's bytes on disk already (the caller synced them). Without
    it (a rendition: ``kiln reprocess`` makes again what a power cut loses) nothing is synced."""
    link_in = getattr(store, "link_in", None)
    if link_in is not None:
        try:
            return int(link_in(key, path, durable=durable))
        except OSError:  # another disk (or links refused): copy
            pass
    return save_local_file(store, key, path)
