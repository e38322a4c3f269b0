"""Notifications: recorded in the transaction of the change that causes them.

``notify`` adds one row for one person (cheap: it runs in the request). Mail about it goes by the
person's choice for that type: at once (an outbox effect, after the commit), in the daily digest,
or not at all. Anything that concerns many people at once is fanned out in the background by an
outbox effect, never in the request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.social.models import MAIL_MODES, NOTIFICATION_TYPES, Notification

# The mail a person gets for each type until they choose otherwise.
MAIL_DEFAULTS = {"comment": "immediate", "reply": "immediate", "favourite": "digest", "follow": "digest",
                 "invite": "immediate", "failed": "immediate"}
assert set(MAIL_DEFAULTS) == set(NOTIFICATION_TYPES) and set(MAIL_DEFAULTS.values()) <= set(MAIL_MODES)


def mail_mode(user: User, type_: str) -> str:
    """How ``user`` wants mail about notifications of ``type_``: immediate, digest or off."""
    chosen = (user.notify_mail or {}).get(type_)
    return chosen if chosen in MAIL_MODES else MAIL_DEFAULTS[type_]


def notify(session: Session, recipient: User, type_: str, *, actor_id: int | None = None,
           media_id: int | None = None, comment_id: int | None = None, collection_id: int | None = None,
           extra: dict[str, Any] | None = None) -> Notification | None:
    """Tell ``recipient`` that something happened (nothing when they did it themselves). The caller
    commits; the mail, if any, goes after the commit."""
    if type_ not in NOTIFICATION_TYPES:
        raise ValueError(f"unknown notification type {type_!r}")
    if actor_id is not None and actor_id == recipient.id:
        return None
    mode = mail_mode(recipient, type_)
    row = Notification(user_id=recipient.id, type=type_, actor_id=actor_id, media_id=media_id,
                       comment_id=comment_id, collection_id=collection_id, extra=extra,
                       mail="none" if mode == "off" else mode)
    session.add(row)
    return row
