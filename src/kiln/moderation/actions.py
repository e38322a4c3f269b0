"""What the moderators do with a case: dismiss it, or act (remove the content, warn, take away a
privilege, ban), alone or combined, each time with a reason.

Warn, revoke and ban go through ``kiln.moderation.people`` (which checks who may act on whom and
writes their audit entries); removal through ``kiln.moderation.removal``; a dismissal writes its own
entry here. Acting resolves every open report about the same target (one case), and a ban also the
open reports about the banned person's other things. Each reporter whose report is resolved is told
the outcome (a "report_outcome" notification, mailed after the commit). The caller commits, then
deletes the storage keys returned (the renditions of a removed item under their old keys).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.db.base import utcnow
from kiln.errors import Conflict, InvalidInput, NotFound
from kiln.moderation import audit, people, removal
from kiln.moderation.models import Report
from kiln.moderation.reports import Target, find_target
from kiln.runtime import Runtime
from kiln.social.notify import notify
from kiln.storage.base import Key

ACTIONS = ("dismiss", "remove", "warn", "revoke", "ban")
# The outcome a reporter is told when several actions are taken: the first that applies.
_OUTCOME_ORDER = (("remove", "removed"), ("ban", "banned"), ("revoke", "revoked"), ("warn", "warned"))


@dataclass(frozen=True)
class Decision:
    actions: tuple[str, ...]
    reason: str
    days: int | None = None
    privilege: str | None = None


def check_decision(decision: Decision) -> None:
    if not decision.actions:
        raise InvalidInput("Choose what to do: dismiss, or one or more actions.", code="no_action")
    unknown = [a for a in decision.actions if a not in ACTIONS]
    if unknown:
        raise InvalidInput("Choose among: %(known)s.", code="bad_action", known=", ".join(ACTIONS))
    if "dismiss" in decision.actions and len(decision.actions) > 1:
        raise InvalidInput("Dismissing a report cannot be combined with an action.", code="dismiss_alone")
    if "revoke" in decision.actions and not decision.privilege:
        raise InvalidInput("Choose the privilege to take away.", code="no_privilege")


def act(rt: Runtime, session: Session, actor: User | None, report: Report, decision: Decision, *,
        via: str) -> list[Key]:
    """Carry out ``decision`` on ``report``'s case. Returns the storage keys to delete after the commit."""
    removal.check_moderator(actor)
    check_decision(decision)
    actions = list(dict.fromkeys(decision.actions))  # each once, in the order given
    if actions == ["dismiss"] and report.state != "open":
        raise Conflict("This report is resolved already.", code="resolved_already")
    try:
        target: Target | None = find_target(session, report.target_type, report.target_id, check=False)
    except NotFound:  # deleted since it was reported: only dismissing is left to do
        target = None
        if actions != ["dismiss"]:
            raise Conflict("This is gone: it was deleted. Dismiss the reports about it.", code="target_gone") from None
    owner = target.owner if target is not None else None
    old_keys: list[Key] = []
    reason = people._reason(decision.reason)
    for action in actions:
        if action == "remove" and target is not None:
            old_keys += _remove(rt, session, actor, target, reason, via)
        elif action in ("warn", "revoke", "ban"):
            if owner is None:
                raise Conflict("The account behind this is gone; there is nobody to act on.", code="no_owner")
            if action == "warn":
                people.warn(session, actor, owner, reason=reason, via=via)
            elif action == "revoke":
                people.revoke(session, actor, owner, decision.privilege or "", days=decision.days, reason=reason,
                              via=via)
            else:
                people.ban(session, actor, owner, days=decision.days, reason=reason, via=via)
    if actions == ["dismiss"]:
        outcome = "dismissed"
    else:
        outcome = next(name for action, name in _OUTCOME_ORDER if action in actions)
    resolved = _resolve(session, actor, report, outcome, reason, banned=owner if "ban" in actions else None)
    if actions == ["dismiss"]:
        audit.record(session, actor, "report.dismiss", report.target_type, report.target_id,
                     target_label=target.label if target else str(report.snapshot.get("label", "")), reason=reason,
                     details={"reports": [r.id for r in resolved], "owner_id": owner.id if owner else None}, via=via)
    session.flush()
    return old_keys


def _remove(rt: Runtime, session: Session, actor: User | None, target: Target, reason: str, via: str) -> list[Key]:
    if target.type == "media":
        return removal.remove_media(rt, session, actor, target.row, reason=reason, via=via)
    if target.type == "comment":
        removal.remove_comment(session, actor, target.row, reason=reason, via=via)
    elif target.type == "collection":
        removal.remove_collection(session, actor, target.row, reason=reason, via=via)
    else:
        raise InvalidInput("A person cannot be removed: warn, take a privilege away or ban instead.",
                           code="cannot_remove_user")
    return []


def _resolve(session: Session, actor: User | None, report: Report, outcome: str, reason: str,
             banned: User | None) -> list[Report]:
    """Close the open reports of the case (and, after a ban, about anything of the banned person),
    and tell each reporter."""
    same_target = (Report.target_type == report.target_type) & (Report.target_id == report.target_id)
    where = same_target if banned is None else same_target | (Report.target_owner_id == banned.id)
    rows = list(session.scalars(select(Report).where(Report.state == "open", where)).unique())
    now = utcnow()
    for row in rows:
        row.state, row.outcome, row.resolution = "resolved", outcome, reason
        row.resolved_by_id, row.resolved_at = (actor.id if actor else None), now
        if row.reporter is not None and not row.reporter.banned_now:
            notify(session, row.reporter, "report_outcome", extra={"outcome": outcome, "report_id": row.id})
    return rows
