"""The collections API, /api/v1/collections and /api/v1/users/{name}/collections (docs/api.md).
Who sees what: kiln.social.collections."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.db.base import utcnow
from kiln.media import services as media_service
from kiln.media.text import render_markdown
from kiln.runtime import Runtime
from kiln.social import blocks, shares
from kiln.social import collections as service
from kiln.social.models import COLLECTION_TITLE_MAX, ITEM_NOTE_MAX, Collection, CollectionItem, ShareLink
from kiln.web.api import ERRORS, MediaOut, VisibilityName, api_csrf
from kiln.web.deps import DB, RT, CurrentUser, LoggedIn, RowId, ShareToken, SiteURL, Writer

router = APIRouter(prefix="/api/v1", tags=["collections"], dependencies=[Depends(api_csrf)])
MediaId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class CollectionIn(BaseModel):
    title: str = Field(max_length=COLLECTION_TITLE_MAX)
    description: str = Field("", max_length=service.DESCRIPTION_MAX, description="Markdown")
    visibility: VisibilityName = Field("public", description="public (listed), unlisted (by its link) or "
                                       "private (owner, collaborators and admins; and share-link holders)")


class CollectionPatch(BaseModel):
    title: str | None = Field(None, max_length=COLLECTION_TITLE_MAX)
    description: str | None = Field(None, max_length=service.DESCRIPTION_MAX)
    visibility: VisibilityName | None = None
    cover_media_id: MediaId | None = Field(None, description="One of its items; null: its first item")


class CollectionItemOut(MediaOut):
    note: str = Field(description="The note beside the item in this collection")
    position: int = Field(description="Its place in the collection, smallest first")
    added_by: str | None = Field(description="Who added it (the owner or a collaborator)")


class CollectionOut(BaseModel):
    id: int
    title: str
    description: str = Field(description="Markdown, as written")
    description_html: str = Field(description="The description rendered and cleaned")
    visibility: str
    owner: str
    url: str = Field(description="The collection's page")
    feed: str = Field(description="Its Atom feed")
    cover_media_id: int | None
    created: str
    updated: str


class CollectionFull(CollectionOut):
    collaborators: list[str]
    items: list[CollectionItemOut] = Field(description="The items the caller may see, in order")
    next: str | None = Field(description="Pass as `cursor` for the items after these")


class CollectionList(BaseModel):
    collections: list[CollectionOut]
    next: str | None = Field(description="Pass as `cursor` to get the next page")


class ItemIn(BaseModel):
    media_id: MediaId = Field(description="One of your own items")
    note: str = Field("", max_length=ITEM_NOTE_MAX)


class OrderIn(BaseModel):
    media_ids: list[MediaId] = Field(max_length=service.MAX_ITEMS, description="These items first, in this "
                                     "order; the others keep their order after them")


class CollaboratorIn(BaseModel):
    username: str = Field(max_length=30)


class CollaboratorOut(BaseModel):
    username: str
    display_name: str


class ShareIn(BaseModel):
    label: str = Field("", max_length=service.SHARE_LABEL_MAX, description="A name for you, e.g. who has it")
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="null: never expires")


class ShareOut(BaseModel):
    id: int
    label: str
    created: dt.datetime
    expires: dt.datetime | None
    revoked: dt.datetime | None
    state: str = Field(description="live, expired or revoked")


class ShareMade(ShareOut):
    token: str = Field(description="The secret, shown only this once")
    url: str = Field(description="The collection's page with the secret: give this to people")


def collection_json(collection: Collection, base: str) -> dict[str, Any]:
    return {"id": collection.id, "title": collection.title, "description": collection.description,
            "description_html": str(render_markdown(collection.description)), "visibility": collection.visibility,
            "owner": collection.owner.username, "url": f"{base}/c/{collection.id}",
            "feed": f"{base}/feeds/c/{collection.id}/atom", "cover_media_id": collection.cover_media_id,
            "created": collection.created.isoformat(), "updated": collection.updated.isoformat()}


def item_json(rt: Runtime, item: CollectionItem, base: str, share: str | None) -> dict[str, Any]:
    data = media_service.media_json(rt, item.media, base)
    if share and item.media.visibility == "private":  # the app's checked route, opened by the link
        for rendition in data["renditions"].values():
            rendition["url"] += f"?share={share}"
        data["url"] += f"?share={share}"
    added_by = item.media.owner.username if item.added_by_id == item.media.owner_id else None
    return {**data, "note": item.note, "position": item.position, "added_by": added_by}


def _full(session: Session, rt: Runtime, collection: Collection, viewer: User | None, link: ShareLink | None,
          share: str | None, base: str, cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
    page = service.items_page(session, collection, viewer, link, cursor, limit)
    data = collection_json(collection, base)
    if link is not None:
        data["url"] += f"?share={share}"
    return {**data, "collaborators": [u.username for u in service.collaborators(session, collection)],
            "items": [item_json(rt, item, base, share if link else None) for item in page.items],
            "next": page.next_cursor}


def share_json(row: ShareLink) -> dict[str, Any]:
    return {"id": row.id, "label": row.label, "created": row.created, "expires": row.expires,
            "revoked": row.revoked, "state": shares.share_state(row)}


@router.post("/collections", status_code=201, response_model=CollectionFull, responses=ERRORS,
             summary="Make a collection")
def create(body: CollectionIn, session: DB, rt: RT, user: Writer, base: SiteURL) -> dict[str, Any]:
    collection = service.create(session, user, body.title, body.description, body.visibility)
    session.commit()
    return _full(session, rt, collection, user, None, None, base)


@router.get("/collections/{collection_id}", response_model=CollectionFull, responses=ERRORS,
            summary="A collection and its items in order")
def get_one(collection_id: RowId, session: DB, rt: RT, user: CurrentUser, base: SiteURL, share: ShareToken = None,
            cursor: Annotated[str | None, Query(max_length=30)] = None,
            limit: Annotated[int, Query(ge=1, le=service.MAX_ITEMS)] = 100) -> dict[str, Any]:
    """Items appear only when the caller may see them (and the collection). `share`: a share link's
    secret, which opens an unlisted or private collection and its owner's items in it."""
    collection, link = shares.viewable(session, collection_id, user, share)
    return _full(session, rt, collection, user, link, share, base, cursor, limit)


@router.patch("/collections/{collection_id}", response_model=CollectionFull, responses=ERRORS,
              summary="Change a collection's title, description, visibility or cover")
def patch(collection_id: RowId, body: CollectionPatch, session: DB, rt: RT, user: Writer,
          base: SiteURL) -> dict[str, Any]:
    collection = service.get_collection(session, collection_id)
    service.update(session, user, collection, title=body.title, description=body.description,
                   visibility=body.visibility, cover_media_id=body.cover_media_id,
                   clear_cover="cover_media_id" in body.model_fields_set and body.cover_media_id is None)
    session.commit()
    return _full(session, rt, collection, user, None, None, base)


@router.delete("/collections/{collection_id}", status_code=204, responses=ERRORS,
               summary="Delete a collection (its items stay)")
def delete(collection_id: RowId, session: DB, user: Writer) -> Response:
    service.remove_collection(session, user, service.get_collection(session, collection_id))
    session.commit()
    return Response(status_code=204)


@router.post("/collections/{collection_id}/items", status_code=201, response_model=CollectionItemOut,
             responses=ERRORS, summary="Add one of your items (adding it again changes its note)")
def add_item(collection_id: RowId, body: ItemIn, session: DB, rt: RT, user: Writer, base: SiteURL) -> dict[str, Any]:
    collection = service.get_collection(session, collection_id)
    item = service.add_item(session, user, collection, media_service.get_media(session, body.media_id), body.note)
    session.commit()
    return item_json(rt, item, base, None)


@router.delete("/collections/{collection_id}/items/{media_id}", status_code=204, responses=ERRORS,
               summary="Take an item out of a collection")
def remove_item(collection_id: RowId, media_id: RowId, session: DB, user: Writer) -> Response:
    """The owner may take out anything; a collaborator what they added."""
    service.remove_item(session, user, service.get_collection(session, collection_id), media_id)
    session.commit()
    return Response(status_code=204)


@router.put("/collections/{collection_id}/order", response_model=CollectionFull, responses=ERRORS,
            summary="Reorder a collection")
def reorder(collection_id: RowId, body: OrderIn, session: DB, rt: RT, user: Writer, base: SiteURL) -> dict[str, Any]:
    collection = service.get_collection(session, collection_id)
    service.reorder(session, user, collection, list(body.media_ids))
    session.commit()
    return _full(session, rt, collection, user, None, None, base)


@router.get("/users/{username}/collections", response_model=CollectionList, responses=ERRORS,
            summary="A person's collections")
def user_collections(username: str, session: DB, user: CurrentUser, base: SiteURL,
                     cursor: Annotated[str | None, Query(max_length=12)] = None,
                     limit: Annotated[int, Query(ge=1, le=100)] = 30) -> dict[str, Any]:
    """Public ones; the owner (and collaborators, and admins) also get unlisted and private ones."""
    rows, nxt = service.user_collections(session, blocks.get_person(session, username, user), user, cursor, limit)
    return {"collections": [collection_json(c, base) for c in rows], "next": nxt}


@router.get("/collections/{collection_id}/collaborators", response_model=list[CollaboratorOut],
            responses=ERRORS, summary="Who may add to a collection")
def list_collaborators(collection_id: RowId, session: DB, user: CurrentUser) -> list[dict[str, str]]:
    collection, _link = shares.viewable(session, collection_id, user)
    return [{"username": u.username, "display_name": u.display_name or ""}
            for u in service.collaborators(session, collection)]


@router.post("/collections/{collection_id}/collaborators", status_code=201, response_model=CollaboratorOut,
             responses={**ERRORS, 409: ERRORS[422]}, summary="Invite someone to add their media")
def invite(collection_id: RowId, body: CollaboratorIn, session: DB, user: Writer) -> dict[str, str]:
    """They get an "invite" notification."""
    invitee = service.invite(session, user, service.get_collection(session, collection_id), body.username)
    session.commit()
    return {"username": invitee.username, "display_name": invitee.display_name or ""}


@router.delete("/collections/{collection_id}/collaborators/{username}", status_code=204, responses=ERRORS,
               summary="Remove a collaborator (or leave, as that collaborator)")
def remove_collaborator(collection_id: RowId, username: str, session: DB, user: Writer) -> Response:
    service.remove_collaborator(session, user, service.get_collection(session, collection_id), username)
    session.commit()
    return Response(status_code=204)


@router.get("/collections/{collection_id}/shares", response_model=list[ShareOut], responses=ERRORS,
            summary="A collection's share links (the owner's)")
def list_shares(collection_id: RowId, session: DB, user: LoggedIn) -> list[dict[str, Any]]:
    collection = service.get_collection(session, collection_id)
    service.check_owner(session, collection, user)
    return [share_json(row) for row in shares.shares(session, collection)]


@router.post("/collections/{collection_id}/shares", status_code=201, response_model=ShareMade, responses=ERRORS,
             summary="Make a secret link to a collection")
def make_share(collection_id: RowId, body: ShareIn, session: DB, user: Writer,
               base: SiteURL) -> dict[str, Any]:
    """Whoever has the link sees the collection and its owner's items in it, whatever their
    visibility, until the link is revoked or expires."""
    collection = service.get_collection(session, collection_id)
    expires = utcnow() + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row, token = shares.make_share(session, user, collection, body.label, expires)
    session.commit()
    return {**share_json(row), "token": token, "url": f"{base}/c/{collection.id}?share={token}"}


@router.delete("/collections/{collection_id}/shares/{link_id}", status_code=204, responses=ERRORS,
               summary="Revoke a share link")
def revoke_share(collection_id: RowId, link_id: RowId, session: DB, user: Writer) -> Response:
    shares.revoke_share(session, user, service.get_collection(session, collection_id), link_id)
    session.commit()
    return Response(status_code=204)
