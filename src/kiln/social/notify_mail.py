"""Mail about notifications: one at once, or the day's in one digest, always in the recipient's language,
always with a one-click unsubscribe (RFC 8058: ``List-Unsubscribe`` + ``List-Unsubscribe-Post`` and a
link in the body). The unsubscribe token is signed with the site's secret and names the account and
the type; using it turns that type's mail off, no login needed.

Both sends are outbox handlers: they write the mail as another outbox effect (sent after their own
commit, retried on failure) and mark the notifications' mail as sent in the same transaction, so a
handler that runs twice mails nothing twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln import i18n
from kiln.accounts.models import User
from kiln.db.base import utcnow
from kiln.errors import InvalidInput
from kiln.i18n import _, interpolate, ngettext
from kiln.processing.outbox import record, record_mail
from kiln.social.models import NOTIFICATION_TYPES, Notification
from kiln.social.notify import DIGEST_EVERY, forget_pending_mail, mail_mode, set_mail_modes
from kiln.social.notify_text import describe

if TYPE_CHECKING:
    from kiln.config import Settings
    from kiln.runtime import Runtime

DIGEST_MAX = 100  # notifications listed in one digest; the rest are counted


class BadUnsubscribe(InvalidInput):
    code = "bad_unsubscribe"


def _signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="unsubscribe")


def unsubscribe_token(settings: Settings, user_id: int, type_: str) -> str:
    return _signer(settings).dumps([user_id, type_])


def read_unsubscribe(settings: Settings, token: str) -> tuple[int, str]:
    """The (user id, type) a token names; a forged or mangled one is refused with a sentence."""
    try:
        user_id, type_ = _signer(settings).loads(token)
        if not isinstance(user_id, int) or type_ not in NOTIFICATION_TYPES:
            raise ValueError(token)
    except (BadSignature, ValueError, TypeError) as exc:
        raise BadUnsubscribe("This unsubscribe link is not valid. Check that you opened the whole link "
                             "from the mail, or change your mail settings on your account page.") from exc
    return user_id, type_


def unsubscribe(session: Session, settings: Settings, token: str) -> tuple[User, str]:
    """Turn off the mail a token names (again: nothing changes). The caller commits."""
    user_id, type_ = read_unsubscribe(settings, token)
    user = session.get(User, user_id)
    if user is None:
        raise BadUnsubscribe("This link belongs to an account that no longer exists.")
    set_mail_modes(user, {type_: "off"})
    forget_pending_mail(session, user.id, type_)
    return user, type_


def type_name(type_: str) -> str:
    """A type's name for people (the account page, mail footers)."""
    return {"comment": _("comments on your media"), "reply": _("replies to your comments"),
            "favourite": _("favourites of your media"), "follow": _("new followers"),
            "invite": _("invitations to collections"), "failed": _("uploads that could not be processed"),
            "warning": _("warnings from the moderators"),
            "report_outcome": _("the outcome of your reports"),
            "removed": _("content of yours the moderators removed"),
            "boost": _("boosts of your media on other servers"),
            "follow_request": _("requests to follow you from other servers")}.get(type_, type_)


def mail_choices(user: User) -> list[tuple[str, str, str]]:
    """(type, its name, the chosen mode) of every type, for the account page."""
    return [(t, type_name(t), mail_mode(user, t)) for t in NOTIFICATION_TYPES]


def _headers(link: str) -> dict[str, str]:
    return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def _footer(site: str, link: str, type_: str) -> str:
    return "\n\n-- \n" + interpolate(_("You get this mail because of your settings for %(what)s on %(site)s. "
                                       "Stop these mails with one click:\n%(link)s\n"),
                                     {"what": type_name(type_), "site": site, "link": link})


def send_immediate(rt: Runtime, payload: dict[str, Any]) -> None:
    """The outbox handler of one notification's mail (recorded by ``notify``)."""
    settings = rt.settings
    base = settings.link_base().rstrip("/")
    with rt.sessions() as session:
        n = session.get(Notification, payload["id"])
        if n is None or n.mail != "immediate":
            return  # sent already, or the type was turned off meanwhile
        user = session.get(User, n.user_id)
        if user is None or not user.is_active:
            n.mail = "none"
            session.commit()
            return
        link = f"{base}/unsubscribe?token={unsubscribe_token(settings, user.id, n.type)}"
        with i18n.use_locale(user.locale or settings.default_locale):
            said = describe(session, [n])[0]
            subject = interpolate(_("%(what)s on %(site)s"), {"what": said.text, "site": settings.site_name})
            body = interpolate(_("Hello %(username)s,\n\n%(what)s.\n\n%(link)s\n"),
                               {"username": user.username, "what": said.text, "link": base + said.url})
            body += _footer(settings.site_name, link, n.type)
        record_mail(session, user.email, subject, body, _headers(link))
        n.mail = "sent"
        session.commit()


def digests_due(rt: Runtime) -> int:
    """The sweeper's share: record one digest effect for each person who has digest notifications
    waiting and had no digest in the last day. Returns how many were recorded."""
    now = utcnow()
    with rt.sessions() as session:
        waiting = select(Notification.user_id).where(Notification.mail == "digest").distinct()
        due = list(session.scalars(select(User).where(
            User.id.in_(waiting), (User.digest_sent.is_(None)) | (User.digest_sent <= now - DIGEST_EVERY))))
        for user in due:
            user.digest_sent = now
            record(session, "notification_digest", {"user_id": user.id}, summary=f"Daily digest for user {user.id}")
        session.commit()
    return len(due)


def send_digest(rt: Runtime, payload: dict[str, Any]) -> None:
    """The outbox handler of a daily digest: one mail listing what is waiting (types still set to
    digest), each marked sent in the same transaction."""
    settings = rt.settings
    base = settings.link_base().rstrip("/")
    with rt.sessions() as session:
        user = session.get(User, payload["user_id"])
        if user is None:
            return
        rows = list(session.scalars(select(Notification).where(Notification.user_id == user.id,
                                                               Notification.mail == "digest")
                                    .order_by(Notification.id)).unique())
        wanted = [n for n in rows if mail_mode(user, n.type) == "digest"]
        for n in rows:
            n.mail = "sent" if n in wanted else "none"
        if not wanted or not user.is_active:
            session.commit()
            return
        with i18n.use_locale(user.locale or settings.default_locale):
            said = describe(session, wanted[:DIGEST_MAX])
            subject = interpolate(ngettext("%(n)s new notification on %(site)s", "%(n)s new notifications on %(site)s",
                                           len(wanted)), {"n": len(wanted), "site": settings.site_name})
            body = interpolate(_("Hello %(username)s,\n\nthis is what happened since your last digest:\n\n"),
                               {"username": user.username})
            body += "".join(f"- {d.text}\n  {base}{d.url}\n" for d in said)
            if len(wanted) > DIGEST_MAX:
                body += "\n" + interpolate(_("… and %(n)s more: %(link)s"),
                                           {"n": len(wanted) - DIGEST_MAX, "link": f"{base}/notifications"})
            types = sorted({n.type for n in wanted}, key=NOTIFICATION_TYPES.index)
            links = {t: f"{base}/unsubscribe?token={unsubscribe_token(settings, user.id, t)}" for t in types}
            body += "\n\n-- \n" + _("Stop the mail about one kind of notification with one click:") + "\n"
            body += "".join(f"{type_name(t)}: {links[t]}\n" for t in types)
        # The header can name one address: the digest's first type (the body links each type).
        record_mail(session, user.email, subject, body, _headers(links[types[0]]))
        session.commit()
