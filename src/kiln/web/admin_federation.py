"""The administrators' page of federation deliveries (docs/moderation.md): each destination server
with deliveries waiting or failed, whether it counts as dead, and a button to send its deliveries
again now. A form, no JavaScript; a table that scrolls sideways on a phone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kiln.accounts.models import User
from kiln.federation import hosts
from kiln.federation import moderation as domains
from kiln.i18n import _, interpolate, ngettext
from kiln.web.deps import DB, RT, check_csrf, flash
from kiln.web.panels import require_admin
from kiln.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
Admin = Annotated[User, Depends(require_admin)]
Host = Annotated[str, Form(max_length=255)]


@router.get("/admin/federation", response_class=HTMLResponse)
def deliveries_page(request: Request, session: DB, user: Admin) -> Response:
    return render(request, "admin_federation.html", view=hosts.overview(session), describe=hosts.describe,
                  domain_blocks=domains.domain_blocks(session))


@router.post("/admin/federation/retry")
def retry(request: Request, rt: RT, user: Admin, host: Host = "") -> Response:
    """Send the failed and waiting deliveries to one server (every server: no host) again now."""
    rung = hosts.retry_host(rt, host.strip().lower() or None)
    if rung:
        flash(request, interpolate(ngettext("Sending %(n)s delivery again.", "Sending %(n)s deliveries again.",
                                            len(rung)), {"n": len(rung)}), "success")
    else:
        flash(request, _("Nothing to send again."), "info")
    return RedirectResponse("/admin/federation", status_code=303)


Domain = Annotated[str, Form(min_length=1, max_length=300)]
Kind = Annotated[str, Form(max_length=10)]
Reason = Annotated[str, Form(max_length=2000)]


@router.post("/admin/federation/block")
def block_domain(request: Request, session: DB, user: Admin, domain: Domain, kind: Kind = "block",
                 reason: Reason = "") -> Response:
    """Block or silence a server (docs/moderation.md); audited."""
    row, purged = domains.block_domain(session, user, domain, kind, reason, via="web")
    session.commit()
    text = _("%(domain)s is blocked.") if row.kind == "block" else _("%(domain)s is silenced.")
    flash(request, interpolate(text, {"domain": row.domain}), "success")
    return RedirectResponse("/admin/federation#domains", status_code=303)


@router.post("/admin/federation/unblock")
def unblock_domain(request: Request, session: DB, user: Admin, domain: Domain) -> Response:
    domains.unblock_domain(session, user, domain, via="web")
    session.commit()
    flash(request, interpolate(_("%(domain)s is allowed again."), {"domain": domain}), "success")
    return RedirectResponse("/admin/federation#domains", status_code=303)
