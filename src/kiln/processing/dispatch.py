"""Ringing the bell: telling a worker that a media item has due steps.

The bell carries only the media id; the worker reads what to do from the ledger. Ring only
after the transaction that created the work has committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

REASONS = ("new", "retry", "reprocess")


def lane(kind: str, reason: str) -> str:
    """The queue name for a kind of media and a reason: ``image.new``, ``video.retry``..."""
    return f"{kind}.{reason}"


class Dispatcher(Protocol):
    def ring(self, media_id: int, kind: str, reason: str = "new") -> None: ...


class CeleryDispatcher:
    def __init__(self, celery_app) -> None:
        self.app = celery_app

    def ring(self, media_id: int, kind: str, reason: str = "new") -> None:
        # Each step enforces its own limit; this hard limit is Celery's backstop for the whole task.
        from kiln.mediatypes import get_kind

        settings = self.app.kiln_settings
        steps = len(get_kind(kind).steps(settings))
        limit = settings.processing.policy(kind).step_time_limit * steps + 60
        self.app.send_task("kiln.process_media", args=[media_id], queue=lane(kind, reason), time_limit=limit)


class InlineDispatcher:
    """Runs processing in the caller's thread (tests, `kiln addmedia --wait` without workers)."""

    def __init__(self, run: Callable[[int], None]) -> None:
        self.run = run

    def ring(self, media_id: int, kind: str, reason: str = "new") -> None:
        self.run(media_id)


class RecordingDispatcher:
    """Remembers the bells instead of ringing (tests that run workers by hand)."""

    def __init__(self) -> None:
        self.rung: list[tuple[int, str, str]] = []

    def ring(self, media_id: int, kind: str, reason: str = "new") -> None:
        self.rung.append((media_id, kind, reason))
