"""Where media bytes live. Only this package touches a filesystem tree or object store."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.config import Settings
from kiln.storage.base import Storage
from kiln.storage.local import LocalStorage

PUBLIC_MEDIA_PATH = "/media"


@dataclass(frozen=True)
class Stores:
    """The stores a site has: queue (fresh uploads), originals (kept privately), public."""

    queue: Storage
    originals: Storage
    public: Storage

    def by_name(self, name: str) -> Storage:
        return {"queue": self.queue, "originals": self.originals, "public": self.public}[name]


def make_stores(settings: Settings) -> Stores:
    root = settings.media_dir
    return Stores(
        queue=LocalStorage("queue", root / "queue"),
        originals=LocalStorage("originals", root / "originals"),
        public=LocalStorage("public", root / "public", base_url=PUBLIC_MEDIA_PATH),
    )
