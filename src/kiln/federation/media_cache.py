"""Kiln's own copy of the pictures, videos and sounds of posts from accounts followed elsewhere.

Pages never make a reader's browser fetch another server's files (Kiln's Content-Security-Policy allows
media only from Kiln, and a reader should not be sent to other servers without knowing). So, after the
commit that keeps a post, one outbox effect per attachment fetches it through the safe fetcher
(kiln.federation.fetch: checked addresses, ``attachment_time_limit``, ``max_attachment_bytes``) into a
temporary file, recognises it from its bytes (kiln.mediatypes.playable: a picture, a video or a sound
a browser plays, never SVG, HTML or anything else), and stores it in the originals store (never served
by a front web server) under ``remote/POST/ATTACHMENT-RANDOM.ext``. Logged-in readers get it from
``/remote/files/ID`` with the type found, ``nosniff`` and a sandboxing CSP. A server that cannot be
reached is tried again (the outbox's retries); a file too large or of another kind is refused for good
and its post links to it instead ("View on host").
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.federation import fetch, moderation
from kiln.federation.models import RemoteAttachment, RemotePost
from kiln.mediatypes import HEAD_BYTES
from kiln.mediatypes.playable import recognise
from kiln.processing import outbox

if TYPE_CHECKING:
    from kiln.runtime import Runtime

log = logging.getLogger(__name__)
EFFECT = "federation_cache"
STORE = "originals"
# Fetch failures that will not mend by asking again (a 5xx or 429 is "server_error": asked again).
FOR_GOOD = ("too_large", "fetch_failed", "gone", "address_refused")


def cache_later(session: Session, post: RemotePost) -> None:
    """After the commit, copy each of the post's attachments that wait, one effect each (each within
    its own time limit; the post's rows must be flushed)."""
    for attachment in post.attachments:
        if attachment.state == "waiting":
            outbox.record(session, EFFECT, {"post_id": post.id, "attachment_id": attachment.id},
                          summary=f"copy file {attachment.id} of remote post {post.id}")


def _waiting(rt: Runtime, post_id: int, attachment_id: int | None) -> list[tuple[int, str, str]]:
    query = select(RemoteAttachment).where(RemoteAttachment.post_id == post_id, RemoteAttachment.state == "waiting")
    if attachment_id is not None:
        query = query.where(RemoteAttachment.id == attachment_id)
    with rt.sessions() as session:
        return [(a.id, a.url, a.kind) for a in session.scalars(query.order_by(RemoteAttachment.position))]


def _settle(rt: Runtime, attachment_id: int, **values: Any) -> bool:
    """Record what became of one attachment; False when it (or its post) is gone meanwhile."""
    with rt.sessions() as session:
        row = session.get(RemoteAttachment, attachment_id)
        if row is None:
            return False
        for name, value in values.items():
            setattr(row, name, value)
        session.commit()
        return True


def _copy(rt: Runtime, post_id: int, attachment_id: int, url: str, declared: str) -> None:
    settings = rt.settings.federation
    with rt.sessions() as session:
        if moderation.rule_for(session, url) == "block":
            _settle(rt, attachment_id, state="refused", error="Its server is blocked.")
            return
    with tempfile.TemporaryDirectory(prefix="kiln-remote-") as folder:
        path = Path(folder) / "file"
        try:
            with path.open("wb") as out:
                size = fetch.download(url, settings, out, settings.max_attachment_bytes,
                                      settings.attachment_time_limit)
        except fetch.FetchError as exc:
            if exc.code in FOR_GOOD:
                _settle(rt, attachment_id, state="refused", error=exc.message[:500])
                return
            raise  # the outbox tries again later
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
        found = recognise(path, head, declared)
        if found is None:
            _settle(rt, attachment_id, state="refused",
                    error="Not a picture, video or sound a browser plays (found from its bytes).")
            return
        kind, mime_type, suffix = found
        key = ["remote", str(post_id), f"{attachment_id}-{secrets.token_hex(8)}{suffix}"]
        store = rt.stores.by_name(STORE)
        with path.open("rb") as fh:
            store.save(key, fh)
    if not _settle(rt, attachment_id, state="cached", kind=kind, stored_key=key, stored_type=mime_type,
                   stored_size=size, error=""):
        store.delete(key)  # the post went while its file was fetched


def run(rt: Runtime, payload: dict[str, Any]) -> None:
    """The effect: copy one waiting attachment (or, with no ``attachment_id``, each of the post's);
    safe to run twice: one copied already is skipped."""
    post_id = int(payload["post_id"])
    only = payload.get("attachment_id")
    for attachment_id, url, declared in _waiting(rt, post_id, int(only) if only is not None else None):
        _copy(rt, post_id, attachment_id, url, declared)


def stored_keys(session: Session) -> set[tuple[str, ...]]:
    """Every copy kept (``kiln gc`` leaves them alone)."""
    return {tuple(key) for key in session.scalars(select(RemoteAttachment.stored_key)
                                                   .where(RemoteAttachment.stored_key.is_not(None))) if key}


outbox.register_handler(EFFECT, run)
