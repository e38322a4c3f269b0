"""Share links of collections: secret links that show an unlisted or private collection, and its
owner's items in it, to whoever has them (the rules: kiln.social.collections). Only the SHA-256 of a
link's secret is stored, as for API tokens; a revoked or expired link answers 404 everywhere."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.accounts.services import digest
from kiln.db.base import utcnow
from kiln.errors import InvalidInput, NotFound
from kiln.media.models import MediaEntry
from kiln.social.collections import (
    NO_SUCH_COLLECTION,
    SHARE_LABEL_MAX,
    check_owner,
    find_item,
    item_visible,
    may_see,
)
from kiln.social.models import Collection, ShareLink

MAX_SHARE_LINKS = 20


def viewable(session: Session, collection_id: int, viewer: User | None, share_token: str | None = None
             ) -> tuple[Collection, ShareLink | None]:
    """The collection and the live share link it is asked with, for a viewer allowed to see it; 404
    otherwise. A share token that is not live (revoked, expired, mistyped, another collection's)
    answers 404 whoever asks, so a dead link never shows anything."""
    collection = session.get(Collection, collection_id)
    share = live_share(session, share_token) if share_token is not None else None
    if collection is None or (share_token is not None and (share is None or share.collection_id != collection.id)):
        raise NotFound(NO_SUCH_COLLECTION)
    if not may_see(session, collection, viewer, share):
        raise NotFound(NO_SUCH_COLLECTION)
    return collection, share



# Share links -----------------------------------------------------------------------------------

def live_share(session: Session, token: str | None) -> ShareLink | None:
    """The share link behind ``token`` if it is neither revoked nor expired."""
    if not token or len(token) > 100:
        return None
    row = session.scalar(select(ShareLink).where(ShareLink.token_hash == digest(token)))
    if row is None or row.revoked is not None or (row.expires is not None and row.expires <= utcnow()):
        return None
    return row


def make_share(session: Session, owner: User, collection: Collection, label: str = "",
               expires: dt.datetime | None = None) -> tuple[ShareLink, str]:
    """A new secret link; the secret is returned once and only its SHA-256 is kept."""
    check_owner(session, collection, owner)
    if expires is not None and expires <= utcnow():
        raise InvalidInput("Choose an expiry date in the future, or none.", code="bad_expiry")
    live = [row for row in shares(session, collection) if row.revoked is None]
    if len(live) >= MAX_SHARE_LINKS:
        raise InvalidInput("A collection has at most %(n)s share links; revoke one first.", code="too_many_links",
                           n=MAX_SHARE_LINKS)
    token = secrets.token_urlsafe(24)
    row = ShareLink(collection_id=collection.id, token_hash=digest(token),
                    label=" ".join((label or "").split())[:SHARE_LABEL_MAX], expires=expires)
    session.add(row)
    session.flush()
    return row, token


def shares(session: Session, collection: Collection) -> list[ShareLink]:
    return list(session.scalars(select(ShareLink).where(ShareLink.collection_id == collection.id)
                                .order_by(ShareLink.id.desc())))


def revoke_share(session: Session, owner: User, collection: Collection, link_id: int) -> ShareLink:
    check_owner(session, collection, owner)
    row = session.get(ShareLink, link_id)
    if row is None or row.collection_id != collection.id:
        raise NotFound("There is no such share link.", code="no_such_link")
    if row.revoked is None:
        row.revoked = utcnow()
    return row


def share_state(row: ShareLink) -> str:
    if row.revoked is not None:
        return "revoked"
    return "expired" if row.expires is not None and row.expires <= utcnow() else "live"


def shared_item(session: Session, media: MediaEntry, token: str) -> bool:
    """Whether a live share link ``token`` shows ``media`` (one of its collection owner's items in it)."""
    share = live_share(session, token)
    if share is None:
        return False
    collection = session.get(Collection, share.collection_id)
    return (collection is not None and find_item(session, collection, media.id) is not None
            and item_visible(collection, media, None, share))
