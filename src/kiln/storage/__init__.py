"""Where media bytes live. Only this package touches a filesystem tree or object store."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kiln.config import BackendSettings, Settings
from kiln.storage.base import Storage, StorageError
from kiln.storage.local import LocalStorage
from kiln.storage.mirror import MirroredStorage

PUBLIC_MEDIA_PATH = "/media"
STORE_NAMES = ("queue", "originals", "public")


@dataclass(frozen=True)
class Assignment:
    backend: str
    migrating_to: str | None = None


Loader = Callable[[], dict[str, Assignment]]


class Stores:
    """The stores a site has: queue (fresh uploads), originals (kept privately), public (renditions).

    Which backend holds each store comes from the settings, overridden by the database (where
    `kiln storage migrate` switches it); it is re-read every ``ttl`` seconds, so every process follows
    a switch within seconds. During a migration, writes go to both backends.
    """

    def __init__(self, settings: Settings, load: Loader | None = None, ttl: float = 5.0) -> None:
        self.settings, self.load, self.ttl = settings, load, ttl
        self._opened: dict[tuple[str, str, str | None], Storage] = {}
        self._assignments: dict[str, Assignment] = {}
        self._checked = -ttl
        self._lock = threading.Lock()

    def assignments(self) -> dict[str, Assignment]:
        now = time.monotonic()
        if now - self._checked >= self.ttl:
            defaults = {name: Assignment(getattr(self.settings.storage, name)) for name in STORE_NAMES}
            loaded = self.load() if self.load else {}
            self._assignments, self._checked = {**defaults, **loaded}, now
        return self._assignments

    def by_name(self, name: str) -> Storage:
        if name not in STORE_NAMES:
            raise KeyError(name)
        current = self.assignments()[name]
        slot = (name, current.backend, current.migrating_to)
        with self._lock:
            if slot not in self._opened:
                store = open_store(self.settings, current.backend, name)
                if current.migrating_to:
                    store = MirroredStorage(store, open_store(self.settings, current.migrating_to, name))
                self._opened[slot] = store
            return self._opened[slot]

    def refresh(self) -> None:
        self._checked = -self.ttl

    @property
    def queue(self) -> Storage:
        return self.by_name("queue")

    @property
    def originals(self) -> Storage:
        return self.by_name("originals")

    @property
    def public(self) -> Storage:
        return self.by_name("public")


def open_store(settings: Settings, backend_name: str, store: str) -> Storage:
    """The ``store`` (queue, originals or public) on the named backend."""
    backend: BackendSettings | None = settings.storage.backends.get(backend_name)
    if backend is None:
        if backend_name != "local":
            known = ", ".join(settings.storage.backends) or "none"
            raise StorageError(f"No storage backend named '{backend_name}' is configured (known: {known}).")
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
