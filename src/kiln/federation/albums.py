"""Albums (collections, kiln.social.collections) as ActivityPub collections: a public album's page
address, ``/c/ID``, answers ActivityPub clients with an ``OrderedCollection`` of the Note ids of its items,
in the album's order, ``actors.COLLECTION_PAGE`` a page.

Other servers are anonymous readers, and strict ones: only a **public** album is served (an unlisted
or private one is 404 whoever signs, and share links, which are for people, never count here), not a
removed one nor one whose owner others may not find; inside it, only the items whose page serves their
Note (``publishing.federated``, the rule of ``/ap/u/NAME/m/ID``), each by that Note's id (a collaborator's
item under its own owner's name). The rest is neither listed nor counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from sqlalchemy.orm import Session

from kiln.config import Settings
from kiln.errors import NotFound
from kiln.federation import actors, publishing
from kiln.social import collections as service
from kiln.social import shares
from kiln.social.models import Collection, CollectionItem

COUNT_BATCH = 200  # items read at a time to count an album's served items


def album_address(settings: Settings, collection_id: int) -> str:
    """The album's page, which is also its ``id`` for other servers."""
    return f"{settings.link_base()}/c/{collection_id}"


def public_album(session: Session, collection_id: int) -> Collection:
    """The album if other servers may see it (see the module's docstring); NotFound otherwise."""
    collection, _link = shares.viewable(session, collection_id, None)  # removed ones: 404
    if collection.visibility != "public" or not actors.findable(collection.owner):
        raise NotFound(service.NO_SUCH_COLLECTION)
    return collection


def _served(session: Session, collection: Collection, cursor: str | None, batch: int) -> Iterator[CollectionItem]:
    """The album's items whose Note other servers are served, in its order, from after ``cursor``: the
    anonymous visitor's items (``items_page``, a keyset walk ``batch`` rows at a time), of which those
    ``publishing.federated`` allows."""
    while True:
        page = service.items_page(session, collection, None, None, cursor, batch)
        yield from (item for item in page.items if publishing.federated(item.media))
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def collection(session: Session, settings: Settings, album: Collection) -> dict[str, Any]:
    """The album as an ``OrderedCollection``: its title, description, owner, size and first page."""
    from kiln.media.text import render_markdown

    address = album_address(settings, album.id)
    total = sum(1 for _item in _served(session, album, None, COUNT_BATCH))
    return {"@context": actors.AS_CONTEXT, "id": address, "type": "OrderedCollection", "name": album.title,
            "summary": str(render_markdown(album.description)),
            "attributedTo": actors.actor_id(settings, album.owner.username), "url": address,
            "totalItems": total, "first": f"{address}?page=1"}


def collection_page(session: Session, settings: Settings, album: Collection, before: str | None) -> dict[str, Any]:
    """One ``OrderedCollectionPage`` of the album's Note ids, ``actors.COLLECTION_PAGE`` of them, in the
    album's order; the next page starts after ``before`` (the album page's cursor, ``POSITION-ID``;
    a broken one is InvalidInput, 422)."""
    address = album_address(settings, album.id)
    size = actors.COLLECTION_PAGE
    rows = list(islice(_served(session, album, before, size + 1), size + 1))
    page = {"@context": actors.AS_CONTEXT, "id": f"{address}?page=1" + (f"&before={before}" if before else ""),
            "type": "OrderedCollectionPage", "partOf": address,
            "orderedItems": [publishing.note_id(settings, item.media) for item in rows[:size]]}
    if len(rows) > size:
        page["next"] = f"{address}?page=1&before={service.cursor_of(rows[size - 1])}"
    return page
