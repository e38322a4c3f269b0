"""Notifications: recorded in the transaction of the change that causes them.

``notify`` adds one row for one person (cheap: it runs in the request). Mail about it goes by the
person's choice for that type: at once (an outbox effect, after the commit), in the daily digest,
or not at all. Anything that concerns many people at once is fanned out in the background by an
outbox effect (``notify_many``), never in the request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kiln.accounts.models import User, not_banned
from kiln.db.base import recall, remember, utcnow
from kiln.errors import InvalidInput
from kiln.processing.outbox import record, register_handler
from kiln.social import blocks
from kiln.social.models import MAIL_MODES, NOTIFICATION_TYPES, Notification

if TYPE_CHECKING:
    from kiln.runtime import Runtime

# The mail a person gets for each type until they choose otherwise.
MAIL_DEFAULTS = {"comment": "immediate", "reply": "immediate", "favourite": "digest", "follow": "digest",
                 "invite": "immediate", "failed": "immediate", "warning": "immediate",
                 "report_outcome": "immediate", "removed": "immediate",
                 "boost": "digest", "follow_request": "immediate"}
assert set(MAIL_DEFAULTS) == set(NOTIFICATION_TYPES) and set(MAIL_DEFAULTS.values()) <= set(MAIL_MODES)
FAN_OUT_BATCH = 500  # rows per transaction when a notification reaches many people


def mail_mode(user: User, type_: str) -> str:
    """How ``user`` wants mail about notifications of ``type_``: immediate, digest or off."""
    chosen = (user.notify_mail or {}).get(type_)
    return chosen if chosen in MAIL_MODES else MAIL_DEFAULTS[type_]


def notify(session: Session, recipient: User, type_: str, *, actor_id: int | None = None,
           media_id: int | None = None, comment_id: int | None = None, collection_id: int | None = None,
           extra: dict[str, Any] | None = None, remote_actor_id: int | None = None) -> Notification | None:
    """Tell ``recipient`` that something happened (nothing when they did it themselves, or when they
    block or mute the person who did it: no query unless they block or mute someone). The doer is a
    local account (``actor_id``) or an actor on another server (``remote_actor_id``). The caller
    commits; the mail, if any, goes after the commit."""
    if type_ not in NOTIFICATION_TYPES:
        raise ValueError(f"unknown notification type {type_!r}")
    if actor_id is not None and (actor_id == recipient.id or actor_id in blocks.hidden(session, recipient).people):
        return None
    mode = mail_mode(recipient, type_)
    row = Notification(user_id=recipient.id, type=type_, actor_id=actor_id, media_id=media_id,
                       comment_id=comment_id, collection_id=collection_id, extra=extra,
                       remote_actor_id=remote_actor_id, mail="none" if mode == "off" else mode)
    session.add(row)
    if mode == "immediate":
        session.flush()
        record(session, "notification_mail", {"id": row.id}, summary=f"Notification mail {row.id} ({type_})")
    return row


def notify_many(session: Session, recipient_ids: Iterable[int], type_: str, *, actor_id: int | None = None,
                media_id: int | None = None, comment_id: int | None = None, collection_id: int | None = None,
                extra: dict[str, Any] | None = None) -> None:
    """Tell many people at once: records ONE outbox effect, which makes their notifications (and
    mails) in the background after the commit, in batches."""
    if type_ not in NOTIFICATION_TYPES:
        raise ValueError(f"unknown notification type {type_!r}")
    ids = sorted({int(i) for i in recipient_ids} - ({actor_id} if actor_id is not None else set()))
    if not ids:
        return
    what = {"type": type_, "actor_id": actor_id, "media_id": media_id, "comment_id": comment_id,
            "collection_id": collection_id, "extra": extra}
    record(session, "notification_fanout", {"recipients": ids, **what},
           summary=f"{type_} notifications for {len(ids)} people")


def _fan_out(rt: Runtime, payload: dict[str, Any]) -> None:
    """The outbox handler of ``notify_many``. Safe to run again after a crash: a recipient who has a
    notification of this very event already is skipped."""
    what = {k: payload.get(k) for k in ("actor_id", "media_id", "comment_id", "collection_id")}
    ids = list(payload["recipients"])
    for start in range(0, len(ids), FAN_OUT_BATCH):
        batch = ids[start:start + FAN_OUT_BATCH]
        with rt.sessions() as session:
            done = set(session.scalars(select(Notification.user_id).where(
                Notification.user_id.in_(batch), Notification.type == payload["type"],
                *[getattr(Notification, k).is_(None) if v is None else getattr(Notification, k) == v
                  for k, v in what.items()])))
            for user in session.scalars(select(User).where(User.id.in_(batch), not_banned())):
                if user.id not in done:
                    notify(session, user, payload["type"], extra=payload.get("extra"), **what)
            session.commit()


# Reading and marking ---------------------------------------------------------------------------

def unseen_count(session: Session, user_id: int) -> int:
    """How many notifications ``user_id`` has not read (ix_notifications_user_read): as counted with
    the login (``unseen_with``) when this session did, else one indexed count."""
    known = recall(session, _UNSEEN, user_id)
    if known is not None:
        return int(known)
    return int(session.scalar(select(func.count()).select_from(Notification)
                              .where(Notification.user_id == user_id, Notification.read.is_(None))) or 0)


_UNSEEN = "kiln_unseen"


def unseen_with(user_id: Any) -> Any:
    """The unseen count as a scalar subquery correlated with ``user_id`` (a column), for the login
    query to fetch with the person: every page's bell then costs no query of its own."""
    return (select(func.count()).select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read.is_(None)).scalar_subquery())


def remember_unseen(session: Session, user_id: int, count: int) -> None:
    remember(session, _UNSEEN, user_id, count)


@dataclass
class NotificationPage:
    items: list[Notification]
    next_cursor: str | None


def page(session: Session, user_id: int, cursor: str | None, per_page: int) -> NotificationPage:
    """Newest first, keyset-paginated by id (ix_notifications_user_id)."""
    from kiln.social.follows import _after  # one cursor rule for id-ordered lists

    query = select(Notification).where(Notification.user_id == user_id)
    after = _after(cursor)
    if after is not None:
        query = query.where(Notification.id < after)
    rows = list(session.scalars(query.order_by(Notification.id.desc()).limit(per_page + 1)).unique())
    more = len(rows) > per_page
    rows = rows[:per_page]
    return NotificationPage(rows, str(rows[-1].id) if more and rows else None)


def mark_read(session: Session, user_id: int, ids: Iterable[int] | None = None) -> int:
    """Mark some of ``user_id``'s notifications read (all when ``ids`` is None); others' ids are
    ignored. Returns how many changed. The caller commits."""
    query = update(Notification).where(Notification.user_id == user_id, Notification.read.is_(None))
    if ids is not None:
        wanted = [int(i) for i in ids]
        if not wanted:
            return 0
        query = query.where(Notification.id.in_(wanted))
    result = session.execute(query.values(read=utcnow()).execution_options(synchronize_session=False))
    session.info.pop(_UNSEEN, None)  # counted before these were read
    return int(getattr(result, "rowcount", 0) or 0)


def set_mail_modes(user: User, chosen: dict[str, str]) -> None:
    """Save the mail choice of each type (a type not in ``chosen`` keeps its current mode)."""
    modes = {t: mail_mode(user, t) for t in NOTIFICATION_TYPES}
    for type_, mode in chosen.items():
        if type_ not in NOTIFICATION_TYPES or mode not in MAIL_MODES:
            raise InvalidInput("Choose immediate, daily digest or off for each kind of notification.",
                               code="bad_mail_mode")
        modes[type_] = mode
    user.notify_mail = modes


def choose_mail(session: Session, user: User, chosen: dict[str, str]) -> None:
    """The account page's choices: saved, and a type turned off mails nothing already waiting."""
    set_mail_modes(user, chosen)
    for type_, mode in chosen.items():
        if mode == "off":
            forget_pending_mail(session, user.id, type_)


def forget_pending_mail(session: Session, user_id: int, type_: str) -> None:
    """After a type is turned off, its waiting digest entries are not mailed either."""
    session.execute(update(Notification).where(Notification.user_id == user_id, Notification.type == type_,
                                               Notification.mail.in_(("immediate", "digest")))
                    .values(mail="none").execution_options(synchronize_session=False))


DIGEST_EVERY = dt.timedelta(days=1)


def _mail_one(rt: Runtime, payload: dict[str, Any]) -> None:
    from kiln.social import notify_mail  # it needs this module's names

    notify_mail.send_immediate(rt, payload)


def _mail_digest(rt: Runtime, payload: dict[str, Any]) -> None:
    from kiln.social import notify_mail

    notify_mail.send_digest(rt, payload)


register_handler("notification_mail", _mail_one)
register_handler("notification_digest", _mail_digest)
register_handler("notification_fanout", _fan_out)
