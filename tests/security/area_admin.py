"""The matrix's entries for the people pages, the audit log and the admin API (kiln.web.admin_people,
kiln.web.admin_audit, kiln.web.admin_api).

The forms act on two people of their own made by ``setup`` (never on the roles the other cases
use): "pat" for bans, privileges and warnings, "quin" for roles and upload limits. Each request's
``send`` first puts its subject back in the state the form expects (banned before an unban, a
privilege taken away before it is given back, no role before one is given), so every role meets
the same starting point.

Downloading a person's data and deleting their account are for administrators only. The deletions
act on "vic", whom each request's ``send`` makes again (freeing the held username first), so the
administrator's request really deletes someone and the next role meets the same start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiln.accounts import services as accounts
from kiln.accounts.models import HeldUsername, User
from kiln.moderation import people
from tests.security.conftest import PASSWORD, World
from tests.security.matrix_kit import Case, E

STAFF_PAGE = E(403, anon=303, moderator=200, admin=200)  # moderators and administrators
STAFF_FORM = E(403, anon=401, moderator=303, admin=303)
ADMIN_FORM = E(403, anon=401, admin=303)
PAT, QUIN = {"username": "pat"}, {"username": "quin"}


def setup(world: World) -> None:
    with world.rt.sessions() as session:
        for name in ("pat", "quin"):
            accounts.create_user(session, name, f"{name}@example.com", PASSWORD, verified=True)
        session.commit()
    world.ids["pat"], world.ids["quin"], world.ids["vic"] = "pat", "quin", "vic"


def _with(prepare: Callable[[Any, User], None], name: str, /, **data: str) -> Callable[[World], dict[str, Any]]:
    def send(world: World) -> dict[str, Any]:
        with world.rt.sessions() as session:
            user = accounts.get_user(session, name)
            prepare(session, user)
            session.commit()
        return {"data": data}
    return send


def _nothing(session: Any, user: User) -> None:
    pass


def _banned(session: Any, user: User) -> None:
    people.ban(session, None, user, days=1, reason="matrix", via="system")


def _without_reporter(session: Any, user: User) -> None:
    people.revoke(session, None, user, "reporter", days=1, reason="matrix", via="system")


def _no_role(session: Any, user: User) -> None:
    if user.has("moderator"):
        people.set_role(session, None, user, "moderator", False, via="system")


def _victim(world: World) -> dict[str, Any]:
    with world.rt.sessions() as session:
        if accounts.find_user(session, "vic") is None:
            held = session.get(HeldUsername, "vic")
            if held is not None:
                session.delete(held)
                session.flush()
            accounts.create_user(session, "vic", "vic@example.com", PASSWORD, verified=True)
            session.commit()
    return {"data": {"reason": "matrix", "confirm": "vic"}}


CASES: list[Case] = [
    Case("GET", "/admin/users", STAFF_PAGE),
    Case("GET", "/admin/users/{username}", STAFF_PAGE, note="the owner's page"),
    Case("POST", "/admin/users/{username}/ban", STAFF_FORM, ids=PAT,
         send=_with(_nothing, "pat", days="1", reason="matrix")),
    Case("POST", "/admin/users/{username}/unban", STAFF_FORM, ids=PAT, send=_with(_banned, "pat")),
    Case("POST", "/admin/users/{username}/revoke", STAFF_FORM, ids=PAT,
         send=_with(_nothing, "pat", privilege="commenter", days="1", reason="matrix")),
    Case("POST", "/admin/users/{username}/restore", STAFF_FORM, ids=PAT,
         send=_with(_without_reporter, "pat", privilege="reporter")),
    Case("POST", "/admin/users/{username}/warn", STAFF_FORM, ids=PAT, send=_with(_nothing, "pat", reason="matrix")),
    Case("POST", "/admin/users/{username}/role", ADMIN_FORM, ids=QUIN,
         send=_with(_no_role, "quin", role="moderator", change="grant"), note="administrators only"),
    Case("POST", "/admin/users/{username}/upload-limit", ADMIN_FORM, ids=QUIN,
         send=_with(_nothing, "quin", limit="2MiB"), note="administrators only"),
    Case("GET", "/admin/audit", E(403, anon=303, admin=200)),
    Case("GET", "/admin/audit.jsonl", E(403, anon=303, admin=200)),
    Case("GET", "/api/v1/admin/users", E(403, anon=401, moderator=200, admin=200)),
    Case("GET", "/api/v1/admin/users/{username}", E(403, anon=401, moderator=200, admin=200), note="the owner"),
    Case("GET", "/api/v1/admin/audit", E(403, anon=401, admin=200)),
    Case("GET", "/admin/users/{username}/export", E(403, anon=303, admin=200), note="the owner's data"),
    Case("POST", "/admin/users/{username}/delete", ADMIN_FORM, ids={"username": "vic"}, send=_victim,
         note="administrators only"),
]
