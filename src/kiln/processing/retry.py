"""Retrying now: the same for the owner's button, the admin's bulk button and the API."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.errors import Conflict
from kiln.media.models import MediaEntry
from kiln.mediatypes import get_kind
from kiln.processing import ledger, stats
from kiln.processing.admission import ring_bells
from kiln.processing.models import ProcessingStep
from kiln.runtime import Runtime


def retry_media(rt: Runtime, session: Session, media: MediaEntry) -> list[str]:
    """Run an item's failed steps (and steps waiting to retry) again now. Commits, then rings the
    retry lane; if the bell cannot be rung the sweeper rings it, since the steps are due.
    Returns the names of the steps that will run again (none: there was nothing to retry)."""
    touched = _request_retry(rt, session, media)
    if not touched:
        session.rollback()
        return []
    names = [s.name for s in touched]
    session.commit()
    ring_bells(rt, {media.id: (media.kind, "retry")})
    session.expire_all()  # inline processing (tests, small sites) changed the rows under us
    return names


def retry_many(rt: Runtime, session: Session, media_ids: Sequence[int], batch: int = 100) -> int:
    """Retry many items (the admin's bulk button), committing and ringing one batch at a time."""
    retried = 0
    for start in range(0, len(media_ids), batch):
        chunk = media_ids[start:start + batch]
        ring = {media.id: (media.kind, "retry")
                for media in session.scalars(select(MediaEntry).where(MediaEntry.id.in_(chunk)))
                if _request_retry(rt, session, media)}
        session.commit()
        ring_bells(rt, ring)
        session.expire_all()
        retried += len(ring)
    return retried


def _request_retry(rt: Runtime, session: Session, media: MediaEntry) -> list[ProcessingStep]:
    names = stats.retryable_steps(ledger.steps_of(session, media.id))
    return ledger.request_steps(session, media, get_kind(media.kind).steps(rt.settings), names, "retry")


def nothing_to_retry(media: MediaEntry) -> Conflict:
    return Conflict("“%(title)s” has nothing to retry: no step of it failed or is waiting to retry.",
                    code="nothing_to_retry", title=media.title)
