"""Files on this machine's disk: the default backend."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from kiln.storage.base import CHUNK, Key, NoSuchFile, RangeReader, StorageError, clean_key

# Files in the public store are readable by everyone: a front web server running as another user
# serves them directly (Django's FILE_UPLOAD_PERMISSIONS is 0o644 for the same reason). mkstemp's
# 0o600 stays on the queue and originals stores.
PUBLIC_FILE_MODE = 0o644


class LocalStorage:
    is_local = True

    def __init__(self, name: str, root: Path, base_url: str | None = None) -> None:
        self.name = name
        self.root = root.resolve()
        self.base_url = base_url.rstrip("/") if base_url else None
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: Key) -> Path:
        path = self.root.joinpath(*clean_key(key))
        if self.root not in path.parents:  # cleaning makes this impossible; keep the guard
            raise StorageError("A storage key escaped its store.")
        return path

    def exists(self, key: Key) -> bool:
        return self._path(key).is_file()

    def open(self, key: Key, start: int | None = None, end: int | None = None) -> BinaryIO:
        try:
            fh = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise NoSuchFile("No stored file at %(key)s.", key="/".join(key)) from exc
        if start is None and end is None:
            return fh
        fh.seek(start or 0)
        return io.BufferedReader(RangeReader(fh, None if end is None else end - (start or 0) + 1))

    def save(self, key: Key, source: BinaryIO) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        if self.base_url is not None:  # the public store: a front web server (nginx) reads it directly
            os.fchmod(fd, PUBLIC_FILE_MODE)
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return written

    def link_in(self, key: Key, path: Path, *, durable: bool) -> int:
        """Store a finished local file under ``key`` without copying it: a hard link (the file must
        be on this store's file system, else OSError). ``durable``: the new name survives a power
        cut once this returns (the folder is synced); the file's bytes must already be on disk.
        Without it, a power cut soon after may lose the file (fine for what can be made again)."""
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.base_url is not None:
            path.chmod(PUBLIC_FILE_MODE)
        try:
            os.link(path, dest)
        except FileExistsError:  # the same key again: its name says what it holds; take the new one
            tmp = dest.with_name(f".part-{os.urandom(6).hex()}")
            os.link(path, tmp)
            os.replace(tmp, dest)
        if durable:
            folder = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        return dest.stat().st_size

    def delete(self, key: Key) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_dir(self, key: Key) -> None:
        shutil.rmtree(self._path(key), ignore_errors=True)

    def size(self, key: Key) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise NoSuchFile("No stored file at %(key)s.", key="/".join(key)) from exc

    def modified(self, key: Key) -> float:
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError as exc:
            raise NoSuchFile("No stored file at %(key)s.", key="/".join(key)) from exc

    def url(self, key: Key) -> str:
        if self.base_url is None:
            raise StorageError("The %(store)s store is private and has no URL.", store=self.name)
        return self.base_url + "/" + "/".join(quote(part) for part in clean_key(key))

    def local_path(self, key: Key) -> Path:
        return self._path(key)

    def partial_writes(self, before: float) -> list[Path]:
        """The ``.part-`` files of writes that never finished (a process killed mid-save), last
        touched before ``before`` (a time.time()): a write still going on keeps its file young."""
        found = []
        for dirpath, _dirs, files in os.walk(self.root):
            for fname in files:
                path = Path(dirpath) / fname
                try:
                    if fname.startswith(".part-") and path.stat().st_mtime < before:
                        found.append(path)
                except FileNotFoundError:  # finished meanwhile
                    continue
        return found

    def iter_keys(self, prefix: Key = ()) -> Iterator[list[str]]:
        top = self.root.joinpath(*clean_key(prefix)) if prefix else self.root
        for dirpath, _dirs, files in os.walk(top):
            for fname in files:
                if not fname.startswith(".part-"):
                    yield list((Path(dirpath) / fname).relative_to(self.root).parts)
