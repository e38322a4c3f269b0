"""The matrix for reports, the moderation queue and removal (kiln.web.reports, kiln.web.moderation).

``setup`` gives the owner an item "reported" with an open report by "other" (the case page), a
removed item ("removed": seen by admins only, its owner is told why) and one for the restore case
("removed_restore"), and a removed collection. Acting on a report resolves it: each role's request
acts on a fresh report, which ``next_report`` makes for the next role. Reporting the owner's item
is refused to the owner (her own) and answered with the earlier report when "other" asks again
through her token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiln.accounts.models import User
from kiln.media.models import MediaEntry
from kiln.moderation import removal, reports
from kiln.moderation.models import Report
from kiln.social import collections
from tests.security.conftest import World
from tests.security.matrix_kit import GET_LOGGED_IN, Case, E, form

MODERATORS_PAGE = E(403, anon=303, moderator=200, admin=200)
MODERATORS_API = E(403, anon=401, moderator=200, admin=200)
FRESH = {"report_id": "fresh_report"}


def _report(world: World, target_type: str, target_id: int, who: str = "other") -> int:
    with world.rt.sessions() as session:
        report, _new = reports.file_report(session, session.get_one(User, world.users[who]), target_type,
                                           target_id, "spam", "matrix")
        session.commit()
        return report.id


def setup(world: World) -> None:
    world.media["reported"] = world.upload("owner", world.folder / "small.png", "Reported")
    world.ids["report_id"] = _report(world, "media", world.media["reported"])
    world.ids["fresh_report"] = _report(world, "media", world.media["reported"], who="admin")
    world.media["removed"] = world.upload("owner", world.folder / "small.png", "Removed")
    world.media["removed_restore"] = world.upload("owner", world.folder / "small.png", "Removed, to restore")
    with world.rt.sessions() as session:
        for name in ("removed", "removed_restore"):
            media = session.get_one(MediaEntry, world.media[name])
            old = removal.remove_media(world.rt, session, None, media, reason="Matrix", via="system")
            session.commit()
            for key in old:
                world.rt.stores.public.delete(key)
        owner = session.get_one(User, world.users["owner"])
        album = collections.create(session, owner, "Removed album")
        session.flush()
        removal.remove_collection(session, None, album, reason="Matrix", via="system")
        session.commit()
        world.ids["removed_collection"] = album.id


def next_report(send: dict[str, Any]) -> Callable[[World], dict[str, Any]]:
    """An open report for the next role to act on, about another person each time (acting on a report
    resolves every open report about the same target, which would take the next one with it)."""
    def make(world: World) -> dict[str, Any]:
        turn = world.ids.get("report_turn", 0) + 1
        world.ids["report_turn"] = turn
        people = sorted(world.users.values())
        target = people[turn % len(people)]
        with world.rt.sessions() as session:
            row = Report(reporter_id=None, target_type="user", target_id=target, target_owner_id=target,
                         category="spam", text="", snapshot={}, state="open", resolution="")
            session.add(row)
            session.commit()
            world.ids["fresh_report"] = row.id
        return send
    return make


def _query(target_type: str, media: str | None = None, user: str | None = None) -> Callable[[World], dict[str, Any]]:
    def make(world: World) -> dict[str, Any]:
        target_id = world.media[media] if media else world.users[user or "owner"]
        return {"params": {"type": target_type, "id": str(target_id)}}
    return make


def _report_form(world: World) -> dict[str, Any]:
    return {"data": {"type": "user", "id": str(world.users["owner"]), "category": "other", "text": "Matrix"}}


def _report_body(world: World) -> dict[str, Any]:
    return {"json": {"target_type": "media", "target_id": world.media["public"], "category": "spam"}}


CASES: list[Case] = [
    # Reporting: verified, unbanned people with the reporter privilege, about what they may see.
    Case("GET", "/report", E(200, anon=303, owner=422, unverified=403), send=_query("media", media="public"),
         note="the owner's public item: not hers to report"),
    Case("GET", "/report", E(404, anon=303, owner=422, admin=200), send=_query("media", media="private"),
         note="a private item: only admins (and its owner) see it"),
    Case("GET", "/report", E(200, anon=303, owner=422, unverified=403), send=_query("user"), note="a person"),
    Case("POST", "/report", E(303, anon=401, owner=422, unverified=403), send=_report_form,
         note="reporting the owner; again is answered with the open report"),
    Case("GET", "/reports/mine", GET_LOGGED_IN),
    Case("POST", "/api/v1/reports", E(201, anon=401, read_tokens=403, owner=422, token_write_owner=422,
                                      unverified=403, token_write_other=200),
         send=_report_body, note="other's token: her open report answered (200)"),
    Case("GET", "/api/v1/reports/mine", E(200, anon=401)),
    # The queue: moderators and admins.
    Case("GET", "/admin/moderation", MODERATORS_PAGE),
    Case("GET", "/admin/moderation/removed", MODERATORS_PAGE),
    Case("GET", "/admin/moderation/{report_id}", MODERATORS_PAGE),
    Case("POST", "/admin/moderation/{report_id}", E(403, anon=401, moderator=303, admin=303), ids=FRESH,
         send=next_report({"data": {"action": "dismiss", "reason": "Matrix"}}), note="dismissing a fresh report"),
    Case("GET", "/api/v1/admin/reports", MODERATORS_API),
    Case("POST", "/api/v1/admin/reports/{report_id}/actions", MODERATORS_API, ids=FRESH,
         send=next_report({"json": {"action": "dismiss", "reason": "Matrix"}}), note="dismissing a fresh report"),
    # Removed content: admins only see it; its owner is told it was removed (410); admins restore.
    Case("GET", "/u/{username}/m/{media_id}", E(404, owner=410, admin=200), target="removed"),
    Case("GET", "/api/v1/media/{media_id}", E(404, admin=200), target="removed"),
    Case("GET", "/m/{media_id}/r/{name}", E(404, admin=200), target="removed"),
    Case("GET", "/c/{collection_id}", E(404, owner=410, admin=200), ids={"collection_id": "removed_collection"},
         note="a removed collection"),
    Case("POST", "/admin/moderation/removed/media/{media_id}/restore", E(403, anon=401, admin=303),
         target="removed_restore", send=form(reason="Matrix")),
    Case("POST", "/admin/moderation/removed/collections/{collection_id}/restore", E(403, anon=401, admin=303),
         ids={"collection_id": "removed_collection"}, send=form(reason="Matrix"),
         note="after the collection's GET cases: restored by the admin"),
]
