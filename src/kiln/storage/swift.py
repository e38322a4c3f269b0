"""OpenStack Swift, through python-swiftclient. One container per store; the public store's
container is world-readable, so pages link straight to it."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from swiftclient.client import ClientException, Connection
from swiftclient.exceptions import ClientException as ClientError

from kiln.storage.base import CHUNK, CountingReader, Key, NoSuchFile, StorageError, clean_key


class SwiftStorage:
    is_local = False

    def __init__(self, name: str, *, auth_url: str, user: str, key: str, container: str,
                 auth_version: str = "1", public: bool = False, tenant_name: str | None = None,
                 os_options: dict[str, str] | None = None, public_url: str | None = None) -> None:
        self.name = name
        self.container = container
        self.public = public
        self.public_url = public_url.rstrip("/") if public_url else None
        self._args: dict[str, Any] = {"authurl": auth_url, "user": user, "key": key, "auth_version": auth_version,
                                      "tenant_name": tenant_name, "os_options": os_options or {},
                                      "retries": 3, "timeout": 60}
        self._local = threading.local()
        self._ensure_container()

    @property
    def conn(self) -> Connection:
        """swiftclient connections are not thread-safe: one per thread."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = Connection(**self._args)
        return conn

    def _ensure_container(self) -> None:
        headers = {"X-Container-Read": ".r:*"} if self.public else {}
        try:
            self.conn.put_container(self.container, headers=headers)
        except (ClientException, OSError) as exc:
            raise StorageError("The %(store)s store cannot use Swift container %(container)s: %(error)s",
                               store=self.name, container=self.container, error=str(exc)) from exc

    def _call(self, what: str, key: Key, fn, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            if exc.http_status == 404:
                raise NoSuchFile("No stored file at %(key)s.", key="/".join(key)) from exc
            raise StorageError("The %(store)s store failed to %(action)s %(key)s: %(error)s", store=self.name,
                               action=what, key="/".join(key), error=str(exc)) from exc
        except OSError as exc:
            raise StorageError("The %(store)s store is unreachable (%(action)s): %(error)s", store=self.name,
                               action=what, error=str(exc)) from exc

    @staticmethod
    def _object(key: Key) -> str:
        return "/".join(clean_key(key))

    def exists(self, key: Key) -> bool:
        try:
            self._call("check", key, self.conn.head_object, self.container, self._object(key))
        except NoSuchFile:
            return False
        return True

    def open(self, key: Key, start: int | None = None, end: int | None = None) -> BinaryIO:
        headers = {}
        if start is not None or end is not None:
            headers["Range"] = f"bytes={start or 0}-{'' if end is None else end}"
        _headers, body = self._call("read", key, self.conn.get_object, self.container, self._object(key),
                                    resp_chunk_size=CHUNK, headers=headers)
        return io.BufferedReader(_Chunks(body))

    def save(self, key: Key, source: BinaryIO) -> int:
        counter = CountingReader(source)
        self._call("write", key, self.conn.put_object, self.container, self._object(key), contents=counter,
                   chunk_size=CHUNK)
        return counter.count

    def delete(self, key: Key) -> None:
        with contextlib.suppress(NoSuchFile):
            self._call("delete", key, self.conn.delete_object, self.container, self._object(key))

    def delete_dir(self, key: Key) -> None:
        for found in list(self.iter_keys(key)):
            self.delete(found)

    def size(self, key: Key) -> int:
        head = self._call("check", key, self.conn.head_object, self.container, self._object(key))
        return int(head["content-length"])

    def modified(self, key: Key) -> float:
        head = self._call("check", key, self.conn.head_object, self.container, self._object(key))
        return float(head["x-timestamp"])

    def url(self, key: Key) -> str:
        if not self.public:
            raise StorageError("The %(store)s store is private and has no URL.", store=self.name)
        base = self.public_url or f"{self.conn.get_auth()[0]}/{quote(self.container)}"
        return base + "/" + quote(self._object(key))

    def local_path(self, key: Key) -> Path:
        raise StorageError("The %(store)s store is not on this machine.", store=self.name)

    def iter_keys(self, prefix: Key = ()) -> Iterator[list[str]]:
        start = self._object(prefix) + "/" if prefix else ""
        _headers, listing = self._call("list", list(prefix) or ["-"], self.conn.get_container, self.container,
                                       prefix=start, full_listing=True)
        for item in listing:
            yield item["name"].split("/")


class _Chunks(io.RawIOBase):
    """A readable file over swiftclient's chunk generator."""

    def __init__(self, chunks) -> None:
        self.chunks = iter(chunks)
        self.buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.buffer += chunk
        if size < 0:
            data, self.buffer = self.buffer, b""
        else:
            data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
