"""Where media bytes live. Only this package touches a filesystem tree or object store."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.config import BackendSettings, Settings
from kiln.storage.base import Storage, StorageError
from kiln.storage.local import LocalStorage

PUBLIC_MEDIA_PATH = "/media"
STORE_NAMES = ("queue", "originals", "public")


@dataclass(frozen=True)
class Stores:
    """The stores a site has: queue (fresh uploads), originals (kept privately), public (renditions)."""

    queue: Storage
    originals: Storage
    public: Storage

    def by_name(self, name: str) -> Storage:
        return {"queue": self.queue, "originals": self.originals, "public": self.public}[name]


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
        return LocalStorage(store, root, base_url=PUBLIC_MEDIA_PATH if public else None)
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


def make_stores(settings: Settings) -> Stores:
    cfg = settings.storage
    return Stores(queue=open_store(settings, cfg.queue, "queue"),
                  originals=open_store(settings, cfg.originals, "originals"),
                  public=open_store(settings, cfg.public, "public"))
