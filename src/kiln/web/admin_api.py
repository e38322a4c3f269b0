"""The admin API: GET /api/v1/admin/users (moderators and administrators) and GET /api/v1/admin/audit
(administrators), with the same filters as the pages and cursor pagination (docs/api.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from kiln.accounts.models import User
from kiln.config import Settings
from kiln.media import services as media_service
from kiln.moderation import audit, directory
from kiln.web.admin_audit import audit_filter
from kiln.web.admin_people import AuditReader, Moderator, Username, find_person, people_filter
from kiln.web.api import ERRORS, api_csrf
from kiln.web.deps import DB, RT

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(api_csrf)])
Cursor = Annotated[str | None, Query(max_length=10, pattern=r"^[0-9]{1,10}$",
                                     description="The `next` of the previous page")]
Limit = Annotated[int, Query(ge=1, le=directory.MAX_PAGE_SIZE)]


class PersonOut(BaseModel):
    username: str
    display_name: str
    email: str | None = Field(description="Only administrators see e-mail addresses (null for moderators)")
    created: dt.datetime
    last_seen: dt.datetime | None = Field(description="To within ten minutes; null: never")
    verified: bool = Field(description="The e-mail address is confirmed")
    pending_approval: bool = Field(default=False, description="Signed up in approval mode and waiting for a "
                                   "moderator (cannot log in yet)")
    banned: bool = Field(description="Banned now")
    banned_until: dt.datetime | None = Field(description="When the ban ends; null while banned: for good")
    ban_reason: str
    privileges: list[str] = Field(description="The privileges in force now")
    suspended: dict[str, dt.datetime] = Field(description="Privileges taken away for a time, and until when")
    media_count: int
    storage_bytes: int = Field(description="The bytes of their media's originals and renditions")
    upload_limit_bytes: int = Field(description="Their largest upload: their own limit or the site's")
    upload_limit_is_own: bool


class PeopleOut(BaseModel):
    users: list[PersonOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null: this is the last")


class AuditEntryOut(BaseModel):
    id: int
    created: dt.datetime
    actor_id: int | None = Field(description="null: a `kiln` command or Kiln itself")
    actor: str = Field(description="The actor's username then, or cli:USER@HOST, or kiln")
    action: str = Field(description="ban, unban, privilege.revoke, privilege.grant, privilege.restore, warn, "
                        "user.upload_limit, ...")
    target_type: str
    target_id: int | None
    target: str = Field(description="The target's name or title then")
    reason: str
    details: dict[str, Any]
    via: str = Field(description="web, api, cli or system")


class AuditOut(BaseModel):
    entries: list[AuditEntryOut]
    next: str | None = Field(description="Pass as `cursor` for older entries; null: these are the oldest")


class PersonFull(PersonOut):
    history: list[AuditEntryOut] = Field(description="The newest 20 audit entries about this person")


def person_json(row: directory.PersonRow, viewer: User, settings: Settings) -> dict[str, Any]:
    user = row.user
    banned = user.banned_now
    return {"username": user.username, "display_name": user.display_name,
            "email": user.email if viewer.is_admin else None, "created": user.created, "last_seen": user.last_seen,
            "verified": user.has("active"), "pending_approval": user.pending_approval, "banned": banned,
            "banned_until": user.banned_until if banned else None,
            "ban_reason": user.ban_reason if banned else "", "privileges": user.privilege_names,
            "suspended": dict(user.suspensions), "media_count": row.stored.items,
            "storage_bytes": row.stored.bytes,
            "upload_limit_bytes": media_service.upload_limit(settings, user),
            "upload_limit_is_own": user.upload_limit_bytes is not None}


@router.get("/users", response_model=PeopleOut, responses=ERRORS, summary="List people (moderators)")
def list_people(session: DB, rt: RT, viewer: Moderator,
                q: Annotated[str | None, Query(max_length=directory.SEARCH_MAX,
                                               description="Part of the username (administrators: or e-mail)")] = None,
                state: Annotated[str | None, Query(max_length=20, description=", ".join(directory.STATES))] = None,
                privilege: Annotated[str | None, Query(max_length=20, description="Held now")] = None,
                cursor: Cursor = None, limit: Limit = directory.PAGE_SIZE) -> dict[str, Any]:
    """Newest accounts first, with what each stores; the same filters as /admin/users."""
    result = directory.page(session, people_filter(viewer, q, state, privilege),
                            before=int(cursor) if cursor else None, limit=limit)
    return {"users": [person_json(row, viewer, rt.settings) for row in result.rows],
            "next": str(result.next_before) if result.next_before else None}


@router.get("/users/{username}", response_model=PersonFull, responses=ERRORS,
            summary="One person, with the newest audit entries about them (moderators)")
def show_person(session: DB, rt: RT, viewer: Moderator, username: Username) -> dict[str, Any]:
    user = find_person(session, username)
    stored = directory.storage_used(session, [user.id]).get(user.id, directory.Stored())
    return {**person_json(directory.PersonRow(user, stored), viewer, rt.settings),
            "history": [audit.as_json(e) for e in directory.about(session, user)]}


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """A time without a zone is taken as UTC."""
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


@router.get("/audit", response_model=AuditOut, responses=ERRORS, summary="Read the audit log (administrators)")
def list_audit(session: DB, viewer: AuditReader,
               actor: Annotated[str | None, Query(max_length=200, description="An actor's name")] = None,
               user: Annotated[str | None, Query(max_length=64, description="Entries about this username")] = None,
               action: Annotated[str | None, Query(max_length=40, description="`privilege` matches "
                                                   "privilege.revoke, privilege.grant, ...")] = None,
               target_type: Annotated[str | None, Query(max_length=20)] = None,
               target_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
               since: Annotated[dt.datetime | None, Query(description="From this time (ISO 8601; UTC if no "
                                                          "zone)")] = None,
               until: Annotated[dt.datetime | None, Query(description="Before this time")] = None,
               cursor: Cursor = None, limit: Limit = 50) -> dict[str, Any]:
    """Newest first."""
    where = audit_filter(session, actor=actor, subject=user, action=action, since=_aware(since),
                         until=_aware(until), target_type=target_type, target_id=target_id)
    entries = audit.page(session, where, before=int(cursor) if cursor else None, limit=limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return {"entries": [audit.as_json(e) for e in entries],
            "next": str(entries[-1].id) if more and entries else None}
