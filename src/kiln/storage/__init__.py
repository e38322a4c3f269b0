"""Where media bytes live. Only this package touches a filesystem tree or object store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiln.config import BackendSettings, Settings
from kiln.storage.base import Storage, StorageError
from kiln.storage.local import LocalStorage
from kiln.storage.mirror import MirroredStorage

log = logging.getLogger(__name__)
PUBLIC_MEDIA_PATH = "/media"
STORE_NAMES = ("queue", "originals", "public")
# The last assignments this machine read, for a process that starts while the database is away.
REMEMBERED = "store-assignments.json"
# Seconds a store that could not be opened (an object store that is down) is not tried again.
OPEN_RETRY = 5.0


@dataclass(frozen=True)
class Assignment:
    backend: str
    migrating_to: str | None = None


Loader = Callable[[], dict[str, Assignment]]


class Stores:
    """The stores a site has: queue (fresh uploads), originals (kept privately), public (renditions).

    Which backend holds each store comes from the settings, overridden by the database (where
    `kiln storage migrate` switches it). During a migration, writes go to both backends.

    The assignments are re-read in the background, one read at a time on the loader's own connection
    (never one a request holds), from ``ttl / 2`` seconds after the last read, so every process
    follows a switch within ``ttl`` seconds and no request waits for the database to find a file.
    Only a caller that finds them older than ``ttl`` (a process that was idle, or ``refresh()``) waits
    for the read, up to ``wait`` seconds, and never on an event loop's thread. When the database cannot
    be read, the last assignments read stay in use (kept in ``DATA/store-assignments.json`` for a
    process that starts meanwhile), so published files are served whatever the database does.
    """

    def __init__(self, settings: Settings, load: Loader | None = None, ttl: float = 5.0,
                 wait: float = 5.0) -> None:
        self.settings, self.load, self.ttl, self.wait = settings, load, ttl, wait
        self._opened: dict[tuple[str, str, str | None], Storage] = {}
        self._failed: dict[tuple[str, str, str | None], tuple[float, StorageError]] = {}
        self._lock = threading.Lock()
        self._read = threading.Condition()
        self._defaults = {name: Assignment(getattr(settings.storage, name)) for name in STORE_NAMES}
        self._assignments = {**self._defaults, **self._remembered()}
        self._loaded_at = -float("inf")  # when the database was last read
        self._due = -float("inf")  # when the next read may start
        self._epoch = 0  # moved by refresh(): reads started before do not count as fresh
        self._reading = False
        self._failing = False

    def assignments(self) -> dict[str, Assignment]:
        now = time.monotonic()
        if now < self._due:
            return self._assignments
        if self.load is None:
            self._due = float("inf")
            return self._assignments
        deadline = now + self.wait
        with self._read:
            while True:
                if not self._reading and now >= self._due:
                    self._reading = True
                    threading.Thread(target=self._reload, args=(self._epoch, now), daemon=True,
                                     name="kiln-store-assignments").start()
                stale = now - self._loaded_at >= self.ttl
                if not stale or self._failing or now >= deadline or _on_event_loop():
                    return self._assignments
                self._read.wait(deadline - now)
                now = time.monotonic()

    def _reload(self, epoch: int, started: float) -> None:
        assert self.load is not None
        try:
            loaded: dict[str, Assignment] | None = {**self._defaults, **self.load()}
        except Exception as exc:  # the database is away: keep what we know
            log.warning("store assignments not re-read, the last known stay in use: %s", exc)
            loaded = None
        changed = False
        with self._read:
            if loaded is not None:
                changed, self._assignments = loaded != self._assignments, loaded
                if epoch == self._epoch:  # else refresh() was called meanwhile: read again
                    self._loaded_at = started
            self._failing = loaded is None
            self._due = started + self.ttl / 2 if epoch == self._epoch else -float("inf")
            self._reading = False
            self._read.notify_all()
        if loaded is not None and (changed or not self._remembered_path().exists()):
            self._remember(loaded)

    def _remembered_path(self) -> Path:
        return self.settings.data_dir / REMEMBERED

    def _remembered(self) -> dict[str, Assignment]:
        try:
            raw = json.loads(self._remembered_path().read_text())
            return {name: Assignment(str(row["backend"]), row.get("migrating_to"))
                    for name, row in raw.items() if name in STORE_NAMES}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}

    def _remember(self, loaded: dict[str, Assignment]) -> None:
        path = self._remembered_path()
        data = {name: {"backend": a.backend, "migrating_to": a.migrating_to} for name, a in loaded.items()}
        temporary = path.with_name(f".{REMEMBERED}.{os.getpid()}")
        try:
            temporary.write_text(json.dumps(data, sort_keys=True))
            os.replace(temporary, path)
        except OSError as exc:
            log.debug("could not keep the store assignments in %s: %s", path, exc)
            with contextlib.suppress(OSError):
                temporary.unlink()

    def by_name(self, name: str) -> Storage:
        if name not in STORE_NAMES:
            raise KeyError(name)
        current = self.assignments()[name]
        slot = (name, current.backend, current.migrating_to)
        with self._lock:
            store = self._opened.get(slot)
            failed = self._failed.get(slot)
        if store is not None:
            return store
        if failed is not None and time.monotonic() - failed[0] < OPEN_RETRY:
            raise failed[1]  # tried moments ago: answer at once rather than wait on it again
        # Opened outside the lock: an object store that does not answer must not hold up the others.
        try:
            store = open_store(self.settings, current.backend, name)
            if current.migrating_to:
                store = MirroredStorage(store, open_store(self.settings, current.migrating_to, name))
        except StorageError as exc:
            with self._lock:
                self._failed[slot] = (time.monotonic(), exc)
            raise
        with self._lock:
            self._failed.pop(slot, None)
            return self._opened.setdefault(slot, store)

    def refresh(self) -> None:
        """Read the assignments again before they are next used (after this process changed them)."""
        with self._read:
            self._loaded_at = self._due = -float("inf")
            self._epoch += 1
            self._failing = False

    def close(self) -> None:
        close = getattr(self.load, "close", None)
        if close is not None:
            close()

    @property
    def queue(self) -> Storage:
        return self.by_name("queue")

    @property
    def originals(self) -> Storage:
        return self.by_name("originals")

    @property
    def public(self) -> Storage:
        return self.by_name("public")


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def open_store(settings: Settings, backend_name: str, store: str) -> Storage:
    """The ``store`` (queue, originals or public) on the named backend."""
    backend: BackendSettings | None = settings.storage.backends.get(backend_name)
    if backend is None:
        if backend_name != "local":
            known = ", ".join(settings.storage.backends) or "none"
            raise StorageError("No storage backend named '%(backend)s' is configured (known: %(known)s).",
                               backend=backend_name, known=known)
        backend = BackendSettings()
    public = store == "public"
    if backend.type == "local":
        root = (backend.path or settings.media_dir) / store
        # A separate media domain (e.g. nginx serving the folder) replaces Kiln's own /media route.
        base = (backend.public_url or "").rstrip("/") or PUBLIC_MEDIA_PATH
        return LocalStorage(store, root, base_url=base if public else None)
    if backend.type == "swift":
        from kiln.storage.swift import SwiftStorage

        return SwiftStorage(store, auth_url=backend.auth_url or "", user=backend.user or "", key=backend.key or "",
                            auth_version=backend.auth_version, container=f"{backend.prefix}-{store}",
                            public=public, public_url=backend.public_url if public else None)
    from kiln.storage.s3 import S3Storage

    return S3Storage(store, bucket=f"{backend.prefix}-{store}", endpoint_url=backend.endpoint_url,
                     region=backend.region, access_key=backend.access_key, secret_key=backend.secret_key,
                     addressing_style=backend.addressing_style, public_url=backend.public_url if public else None,
                     url_expires=backend.url_expires, public=public)


def make_stores(settings: Settings, load: Loader | None = None) -> Stores:
    return Stores(settings, load)
