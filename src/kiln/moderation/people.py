"""What moderators and admins do to people: ban and unban, take a privilege away (for a time or for
good) and give it back, warn, make someone a moderator or an admin, set their upload limit.

This module is the one place these states change, and each change writes its audit entry in the
caller's transaction (``kiln.moderation.audit.record``): the caller commits both or neither.

``actor`` is the person acting, or None for a ``kiln`` command run on the server (``via="cli"``) or
Kiln itself (``via="system"``), which may do anything. Moderators and admins may ban, revoke, restore
and warn; only admins may do so to a moderator or an admin, and only admins change roles. Nobody
acts on themselves here (an admin cannot lock themselves out by mistake).

A ban or suspension for a time ends by itself: ``User.banned_now`` and ``User.has`` compare its end
with the clock at every check, so nobody has to act (and nothing is written) when it runs out. A new
ban or suspension never shortens one in force; lift it first (unban, restore) to make it shorter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from kiln.accounts.models import User, UserPrivilege
from kiln.db.base import utcnow
from kiln.errors import Conflict, InvalidInput, PermissionDenied
from kiln.media import services as media_service
from kiln.moderation import audit
from kiln.social.notify import notify

# The privileges a moderator may take away and give back.
REVOCABLE = ("commenter", "uploader", "reporter")
# The privileges only an admin may give or take away.
ROLES = ("moderator", "admin")
MAX_DAYS = 3650
REASON_MAX = 2000


def may_moderate(user: User | None) -> bool:
    """Whether ``user`` may ban, revoke, restore and warn."""
    return user is not None and (user.has("moderator") or user.is_admin)


def _check_actor(actor: User | None, user: User, *, admins_only: bool = False) -> None:
    if actor is None:
        return  # a command on the server, or Kiln itself
    if admins_only and not actor.is_admin:
        raise PermissionDenied("Only administrators can change who is a moderator or an administrator.",
                               code="not_admin")
    if not may_moderate(actor):
        raise PermissionDenied("Only moderators and administrators can do this.", code="not_moderator")
    if actor.id == user.id:
        raise PermissionDenied("You cannot do this to your own account.", code="self")
    if not actor.is_admin and (user.has("moderator") or user.is_admin):
        raise PermissionDenied("Only administrators can act on moderators and administrators.", code="not_admin")


def _until(days: int | None) -> dt.datetime | None:
    """The end of something lasting ``days`` from now (None: for good)."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput("Give a number of days from 1 to %(max)s, or none for good.", code="bad_days",
                           max=MAX_DAYS)
    return utcnow() + dt.timedelta(days=days)


def _later(current: dt.datetime | None, new: dt.datetime | None) -> dt.datetime | None:
    """The end that lasts longer (None: never ends)."""
    if current is None or new is None:
        return None
    return max(current, new)


def _reason(reason: str, *, required: bool = True) -> str:
    text = (reason or "").strip()
    if required and not text:
        raise InvalidInput("Give a reason: the person is told it.", code="reason_required")
    if len(text) > REASON_MAX:
        raise InvalidInput("A reason can have at most %(max)s characters.", code="reason_too_long", max=REASON_MAX)
    return text


def _details(days: int | None, until: dt.datetime | None, **more: object) -> dict[str, object]:
    return {"days": days, "until": until.isoformat() if until else None, **more}


def _record(session: Session, actor: User | None, action: str, target_type: str, target_id: int,
            **fields: Any) -> None:
    """The audit entry, flushed at once: entries get their ids (their order) in the order of the
    actions, even when a pending privilege row added and removed in between leaves two new objects
    with the same insert order in the session."""
    audit.record(session, actor, action, target_type, target_id, **fields)
    session.flush()


# Bans ---------------------------------------------------------------------------------------------

def ban(session: Session, actor: User | None, user: User, *, days: int | None, reason: str,
        via: str) -> dt.datetime | None:
    """Ban ``user`` for ``days`` (None: for good). Their login sessions and API tokens stop working at
    once (they are checked against the ban on every request), they cannot log in and are told why
    and until when. Returns when the ban ends (None: never). The caller commits."""
    _check_actor(actor, user)
    text = _reason(reason)
    until = _until(days)
    if user.banned_now:
        until = _later(user.banned_until, until)
    user.banned, user.banned_until, user.ban_reason = True, until, text
    _record(session, actor, "ban", "user", user.id, target_label=user.username, reason=text,
                 details=_details(days, until), via=via)
    return until


def unban(session: Session, actor: User | None, user: User, *, reason: str = "", via: str) -> None:
    """Lift a ban before its end. The caller commits."""
    _check_actor(actor, user)
    text = _reason(reason, required=False)
    if not user.banned_now:
        raise Conflict("%(name)s is not banned.", code="not_banned", name=user.username)
    user.banned, user.banned_until, user.ban_reason = False, None, ""
    _record(session, actor, "unban", "user", user.id, target_label=user.username, reason=text, via=via)


# Privileges -----------------------------------------------------------------------------------------

def _row(user: User, privilege: str) -> UserPrivilege | None:
    return next((p for p in user.privileges if p.name == privilege), None)


def _check_revocable(privilege: str) -> None:
    if privilege not in REVOCABLE:
        raise InvalidInput("Only these privileges can be taken away for a time: %(known)s.", code="bad_privilege",
                           known=", ".join(REVOCABLE))


def revoke(session: Session, actor: User | None, user: User, privilege: str, *, days: int | None, reason: str,
           via: str) -> dt.datetime | None:
    """Take ``privilege`` (commenter, uploader, reporter) away from ``user`` for ``days`` (None: for
    good); after a time it is back by itself. Returns when it comes back (None: never, unless it is
    restored). The caller commits."""
    _check_revocable(privilege)
    _check_actor(actor, user)
    text = _reason(reason)
    until = _until(days)
    row = _row(user, privilege)
    if row is None:
        raise Conflict("%(name)s has no %(privilege)s privilege to take away.", code="no_privilege",
                       name=user.username, privilege=privilege)
    if not row.in_force():
        until = _later(row.suspended_until, until)
    if until is None:
        user.privileges.remove(row)  # for good: gone, as if never given
    else:
        row.suspended_until = until
    _record(session, actor, "privilege.revoke", "user", user.id, target_label=user.username, reason=text,
                 details=_details(days, until, privilege=privilege), via=via)
    return until


def restore_privilege(session: Session, actor: User | None, user: User, privilege: str, *, reason: str = "",
                      via: str) -> None:
    """Give back a privilege taken away (before its time is up, or one taken for good). The caller commits."""
    _check_revocable(privilege)
    _check_actor(actor, user)
    text = _reason(reason, required=False)
    row = _row(user, privilege)
    if row is not None and row.in_force():
        raise Conflict("%(name)s has the %(privilege)s privilege already.", code="has_privilege",
                       name=user.username, privilege=privilege)
    if row is None:
        user.privileges.append(UserPrivilege(name=privilege))
    else:
        row.suspended_until = None
    _record(session, actor, "privilege.restore", "user", user.id, target_label=user.username, reason=text,
                 details={"privilege": privilege}, via=via)


def set_role(session: Session, actor: User | None, user: User, role: str, granted: bool, *, reason: str = "",
             via: str) -> None:
    """Make ``user`` a moderator or an admin (``granted``), or take that away; admins only. An admin
    is also a moderator: making someone an admin makes them one, and taking away moderator from an
    admin is refused (take away admin first). The caller commits."""
    if role not in ROLES:
        raise InvalidInput("A role is one of: %(known)s.", code="bad_role", known=", ".join(ROLES))
    _check_actor(actor, user, admins_only=True)
    text = _reason(reason, required=False)
    wanted = [role, "moderator"] if granted and role == "admin" else [role]
    if granted:
        changed = [name for name in wanted if not user.has(name)]
        if not changed:
            raise Conflict("%(name)s is a %(role)s already.", code="has_role", name=user.username, role=role)
        for name in changed:
            row = _row(user, name)
            if row is None:
                user.privileges.append(UserPrivilege(name=name))
            else:
                row.suspended_until = None
    else:
        if role == "moderator" and user.is_admin:
            raise Conflict("%(name)s is an administrator, and every administrator is a moderator: take away "
                           "admin first.", code="admin_is_moderator", name=user.username)
        row = _row(user, role)
        if row is None:
            raise Conflict("%(name)s is not a %(role)s.", code="no_role", name=user.username, role=role)
        user.privileges.remove(row)
        changed = [role]
    _record(session, actor, "privilege.grant" if granted else "privilege.revoke", "user", user.id,
                 target_label=user.username, reason=text, details={"privilege": role, "changed": changed}, via=via)


# Warnings and limits ----------------------------------------------------------------------------------

def warn(session: Session, actor: User | None, user: User, *, reason: str, via: str) -> None:
    """Warn ``user``: a "warning" notification carrying the reason (mailed at once unless they chose
    otherwise). The moderator is not named to them. The caller commits."""
    _check_actor(actor, user)
    text = _reason(reason)
    notify(session, user, "warning", extra={"reason": text})
    _record(session, actor, "warn", "user", user.id, target_label=user.username, reason=text, via=via)


def set_upload_limit(session: Session, actor: User | None, user: User, limit: int | None, *, via: str) -> None:
    """Give ``user`` their own upload limit in bytes (None: the site's); admins only. The caller commits."""
    if actor is not None and not actor.is_admin:
        raise PermissionDenied("Only administrators can change upload limits.", code="not_admin")
    before = user.upload_limit_bytes
    media_service.set_upload_limit(user, limit)
    _record(session, actor, "user.upload_limit", "user", user.id, target_label=user.username,
                 details={"before": before, "after": limit}, via=via)
