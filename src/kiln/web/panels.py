"""The processing panels: the owner's (/panel) and the admin's (/admin/processing), and "retry now".

Both pages show everything without JavaScript; panel.js only keeps the owner's panel up to date
in place while something is still being processed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.db.base import utcnow
from kiln.errors import InvalidInput, PermissionDenied
from kiln.i18n import N_, _, interpolate, ngettext
from kiln.media import services as media_service
from kiln.media.models import MEDIA_STATES, MediaEntry
from kiln.media.space import places
from kiln.media.visibility import src_for
from kiln.processing import hosts, stats
from kiln.processing.celery_app import KINDS
from kiln.processing.retry import nothing_to_retry, retry_many, retry_media
from kiln.processing.stats import admin_overview
from kiln.web.deps import DB, RT, LoggedIn, RowId, check_csrf, csrf_token, flash
from kiln.web.templating import render

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
OptText = Annotated[str | None, Form()]

PANEL_LIMIT = 200
LIVE_POLL_SECONDS = 2
# How each media state is named on the owner's panel tabs.
# Marked for the catalogue here; translated where they are shown (``state_labels``).
STATE_LABELS = {"queued": N_("Queued"), "processing": N_("Processing"), "failed": N_("Failed"),
                "processed": N_("Published")}


# What an empty tab says: one whole sentence per state (the template gets it as ``empty_message``).
EMPTY_TABS = {"queued": N_("Nothing is queued right now."), "processing": N_("Nothing is processing right now."),
              "failed": N_("Nothing has failed right now."), "processed": N_("Nothing is published right now.")}


def state_labels() -> dict[str, str]:
    """The tab labels in the reader's language (what the templates get as ``labels``)."""
    return {state: _(label) for state, label in STATE_LABELS.items()}


async def require_admin(user: LoggedIn) -> User:
    if not user.is_admin:
        raise PermissionDenied(N_("Only administrators can see processing for the whole site."), code="not_admin")
    return user


Admin = Annotated[User, Depends(require_admin)]


# The owner's panel ------------------------------------------------------------------------------

def _panel_items(session: Session, user: User, state: str | None) -> list[MediaEntry]:
    if state is not None and state not in MEDIA_STATES:
        raise InvalidInput("Unknown state '%(state)s'. Known: %(known)s.", code="bad_state", state=state,
                           known=", ".join(MEDIA_STATES))
    return media_service.list_for_admin(session, owner=user, state=state, limit=PANEL_LIMIT)


def _row_context(request: Request, media: MediaEntry, status: stats.ItemStatus, back: str) -> dict[str, Any]:
    return {"m": media, "st": status, "csrf_token": csrf_token(request), "back": back,
            "relative": stats.humanize_delay, "media_src": src_for(request.app.state.runtime, [media])}


def _poll_after(statuses: Sequence[stats.ItemStatus]) -> float | None:
    """Seconds until the panel should ask again: soon while work is moving, at the next retry
    while items only wait for one, never when everything is finished."""
    if any(s.phase in ("queued", "running") for s in statuses):
        return LIVE_POLL_SECONDS
    retries = [s.retry_at for s in statuses if s.phase == "retrying" and s.retry_at is not None]
    if retries:
        return max(LIVE_POLL_SECONDS, min(60.0, (min(retries) - utcnow()).total_seconds() + 1))
    return None


def _back(state: str | None) -> str:
    return f"/panel?state={state}" if state else "/panel"


@router.get("/panel", response_class=HTMLResponse)
def panel(request: Request, session: DB, user: LoggedIn, state: str | None = None) -> Response:
    state = state or None
    items = _panel_items(session, user, state)
    statuses = stats.item_statuses(session, items)
    return render(request, "panel.html", items=items, statuses=statuses, state=state, labels=state_labels(),
                  counts=stats.media_state_counts(session, owner_id=user.id), back=_back(state),
                  relative=stats.humanize_delay, live=_poll_after(list(statuses.values())) is not None,
                  limit=PANEL_LIMIT, media_src=src_for(request.app.state.runtime, items),
                  empty_message=_(EMPTY_TABS[state]) if state in EMPTY_TABS else None)


def _item_json(request: Request, media: MediaEntry, status: stats.ItemStatus, back: str) -> dict[str, Any]:
    html = request.app.state.templates.get_template("_panel_row.html").render(
        _row_context(request, media, status, back))
    return {"id": media.id, "state": media.state, "phase": status.phase, "progress": status.progress,
            "unfinished": status.unfinished, "html": html}


def _with_shown(session: Session, user: User, items: list[MediaEntry], shown: str | None) -> list[MediaEntry]:
    """Add the rows the page already shows (``shown``: comma-separated ids) that left its filter,
    so a row that went from queued to processed under the "Queued" tab is updated, not frozen."""
    wanted = {int(part) for part in (shown or "").split(",")[:PANEL_LIMIT]
              if part.strip().isascii() and part.strip().isdigit() and len(part.strip()) <= 9}
    missing = wanted - {m.id for m in items}
    if missing:
        items = items + list(session.scalars(select(MediaEntry).where(
            MediaEntry.id.in_(missing), MediaEntry.owner_id == user.id)))
    return sorted(items, key=lambda m: m.id, reverse=True)


@router.get("/panel.json")
def panel_json(request: Request, session: DB, user: LoggedIn, state: str | None = None,
               shown: str | None = None) -> Response:
    """The panel's rows, rendered, for panel.js to swap in place."""
    state = state or None
    items = _with_shown(session, user, _panel_items(session, user, state), shown)
    statuses = stats.item_statuses(session, items)
    back = _back(state)
    return JSONResponse({
        "counts": stats.media_state_counts(session, owner_id=user.id),
        "items": [_item_json(request, m, statuses[m.id], back) for m in items],
        "poll": _poll_after(list(statuses.values())),
    })


def _safe_back(value: str | None) -> str:
    if value and value.startswith(("/panel", "/admin/processing")) and "//" not in value:
        return value
    return "/panel"


@router.post("/m/{media_id}/retry")
def retry(request: Request, media_id: RowId, session: DB, rt: RT, user: LoggedIn, next: OptText = None) -> Response:
    """"Retry now": works as a plain form (redirect back with a message) and for panel.js (JSON)."""
    media = media_service.get_media(session, media_id)
    media_service.check_owner(user, media)
    title = media.title
    names = retry_media(rt, session, media)
    wants_json = "application/json" in request.headers.get("accept", "")
    if not names:
        message, category = nothing_to_retry(media).message, "info"
    else:
        message = interpolate(_("Retrying “%(title)s” now (%(steps)s)."),
                              {"title": title, "steps": ", ".join(names)})
        category = "success"
    if wants_json:
        media = media_service.get_media(session, media_id)
        status = stats.item_statuses(session, [media])[media.id]
        return JSONResponse({"ok": bool(names), "message": message,
                             "item": _item_json(request, media, status, _safe_back(next))},
                            status_code=200 if names else 409)
    flash(request, message, category)
    return RedirectResponse(_safe_back(next), status_code=303)


# The admin's panel ------------------------------------------------------------------------------

@router.get("/admin/processing", response_class=HTMLResponse)
def admin_processing(request: Request, session: DB, rt: RT, user: Admin) -> Response:
    view = admin_overview(rt, session)
    codes = [f.code for f in view.failures if f.items]
    return render(request, "admin_processing.html", view=view, kinds=KINDS, codes=codes,
                  disks=places(rt.settings, rt.stores), workers=hosts.listing(session, rt.settings),
                  labels=state_labels(), failed_total=len(stats.failed_media_ids(session)))


@router.post("/admin/processing/retry")
def admin_retry(request: Request, session: DB, rt: RT, user: Admin, kind: OptText = None,
                code: OptText = None) -> Response:
    """Retry every failed item, or only those of one kind or one error code."""
    ids = stats.failed_media_ids(session, kind=kind or None, code=code or None)
    retried = retry_many(rt, session, ids)
    params = {"n": retried, "kind": kind, "code": code}
    if retried:
        if kind and code:
            text = ngettext("Retrying %(n)s failed item (kind %(kind)s and reason “%(code)s”).",
                            "Retrying %(n)s failed items (kind %(kind)s and reason “%(code)s”).", retried)
        elif kind:
            text = ngettext("Retrying %(n)s failed item (kind %(kind)s).",
                            "Retrying %(n)s failed items (kind %(kind)s).", retried)
        elif code:
            text = ngettext("Retrying %(n)s failed item (reason “%(code)s”).",
                            "Retrying %(n)s failed items (reason “%(code)s”).", retried)
        else:
            text = ngettext("Retrying %(n)s failed item.", "Retrying %(n)s failed items.", retried)
        flash(request, interpolate(text, params), "success")
    else:
        if kind and code:
            text = _("Nothing to retry: no failed items with kind %(kind)s and reason “%(code)s”.")
        elif kind:
            text = _("Nothing to retry: no failed items with kind %(kind)s.")
        elif code:
            text = _("Nothing to retry: no failed items with reason “%(code)s”.")
        else:
            text = _("Nothing to retry: no failed items.")
        flash(request, interpolate(text, params), "info")
    return RedirectResponse("/admin/processing", status_code=303)
