"""The audit log for administrators: /admin/audit (filters, newest first, page by page) and
/admin/audit.jsonl (the filtered entries as JSON lines, streamed). The API twin is in admin_api.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from kiln.errors import InvalidInput
from kiln.moderation import audit, directory
from kiln.runtime import Runtime
from kiln.web.admin_people import AuditReader, Before
from kiln.web.deps import DB, RT
from kiln.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
Name = Annotated[str | None, Query(max_length=200)]
Day = Annotated[str | None, Query(max_length=20)]


def audit_filter(session: Session, *, actor: str | None = None, subject: str | None = None,
                 action: str | None = None, since: dt.datetime | None = None,
                 until: dt.datetime | None = None, target_type: str | None = None,
                 target_id: int | None = None) -> audit.AuditFilter:
    """Empty values mean "any"; ``subject`` is the username of the person the entries are about."""
    fields: dict[str, object] = {"actor": (actor or "").strip() or None, "action": (action or "").strip() or None,
                                 "since": since, "until": until, "target_type": target_type or None,
                                 "target_id": target_id}
    if subject and subject.strip():
        fields.update(directory.subject_filter(session, subject))
    return audit.AuditFilter(**fields)  # type: ignore[arg-type]


def day(text: str | None, *, end: bool = False) -> dt.datetime | None:
    """A YYYY-MM-DD field as the start of that day in UTC (``end``: the start of the next day, so the
    day itself is included)."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        date = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("Write a date as YYYY-MM-DD, like 2026-12-06.", code="bad_date") from None
    start = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)
    if end:
        if date == dt.date.max:
            return None
        start += dt.timedelta(days=1)
    return start


def jsonl_response(rt: Runtime, where: audit.AuditFilter, filename: str = "audit.jsonl") -> Response:
    """Streamed with a session of its own: the request's closes when the route returns, and the log
    is read in batches, never held whole."""
    def lines() -> Iterator[str]:
        with rt.sessions() as session:
            yield from audit.json_lines(session, where)

    return StreamingResponse(lines(), media_type="application/jsonl; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                      "Cache-Control": "no-store"})


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: DB, viewer: AuditReader, actor: Name = None, subject: Name = None,
               action: Name = None, since: Day = None, until: Day = None, before: Before = None) -> Response:
    query = {"actor": actor or "", "subject": subject or "", "action": action or "", "since": since or "",
             "until": until or ""}
    where = audit_filter(session, actor=actor, subject=subject, action=action, since=day(since),
                         until=day(until, end=True))
    entries = audit.page(session, where, before=before, limit=PAGE_SIZE + 1)
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    filters = urlencode({k: v for k, v in query.items() if v})
    return render(request, "admin_audit.html", entries=entries, query=query, filters=filters,
                  next_before=entries[-1].id if more and entries else None, first_page=before is None)


@router.get("/admin/audit.jsonl")
def audit_export(rt: RT, session: DB, viewer: AuditReader, actor: Name = None, subject: Name = None,
                 action: Name = None, since: Day = None, until: Day = None) -> Response:
    where = audit_filter(session, actor=actor, subject=subject, action=action, since=day(since),
                         until=day(until, end=True))
    return jsonl_response(rt, where)
