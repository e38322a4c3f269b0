"""Signing up under the site's registration mode (``Settings.registration``): open, approval, invite or
closed; blocked e-mail domains; invite links; the moderators' approval of requests.

- open: anyone may sign up.
- approval: the form asks ``registration_question``; the account is made with ``pending_approval``
  set (it cannot log in) and a ``RegistrationRequest`` holding the answer waits for a moderator, who
  approves it (the account works) or rejects it (the account is deleted). Either way the applicant is
  mailed the outcome after the commit. A valid invite link skips the wait.
- invite: only with a valid invite link (``/auth/register?invite=CODE``).
- closed: nobody.

Accounts made by an admin (``kiln adduser``) are not subject to any of this.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kiln import i18n
from kiln.accounts import mail
from kiln.accounts.models import Invite, RegistrationRequest, User
from kiln.accounts.services import clean_email, create_user, send_verification
from kiln.config import Settings
from kiln.db.base import rowcount, utcnow
from kiln.errors import InvalidInput, NotFound, PermissionDenied
from kiln.moderation import audit
from kiln.moderation.people import may_moderate
from kiln.processing.outbox import record_mail

ANSWER_MAX = 2000
REASON_MAX = 2000
INVITE_MAX_USES = 1000
INVITE_MAX_DAYS = 365


class BadInvite(PermissionDenied):
    """An invite link that cannot be used (unknown, expired, used up or revoked)."""

    code = "bad_invite"


# Domains ------------------------------------------------------------------------------------------

def domain_blocked(settings: Settings, address: str) -> str | None:
    """The blocked domain ``address`` is at (itself or a parent domain), or None."""
    domain = address.rsplit("@", 1)[-1].lower().rstrip(".")
    for blocked in settings.blocked_email_domains:
        if domain == blocked or domain.endswith("." + blocked):
            return blocked
    return None


def check_email_domain(settings: Settings, address: str) -> None:
    if domain_blocked(settings, address) is not None:
        raise InvalidInput("Addresses at %(domain)s cannot be used to sign up on this site. Use another "
                           "address.", code="blocked_domain", domain=address.rsplit("@", 1)[-1])


# Invites ------------------------------------------------------------------------------------------

def invite_state(invite: Invite, now: dt.datetime | None = None) -> str:
    """"revoked", "expired", "used_up" or "active"."""
    if invite.revoked is not None:
        return "revoked"
    if invite.expires is not None and invite.expires <= (now or utcnow()):
        return "expired"
    if invite.uses >= invite.max_uses:
        return "used_up"
    return "active"


def usable_invite(session: Session, code: str) -> Invite:
    """The invite behind ``code``, or BadInvite saying why it cannot be used."""
    invite = session.scalar(select(Invite).where(Invite.code == code.strip()[:64])) if code.strip() else None
    if invite is None:
        raise BadInvite("This invite link is not valid. Check that you opened the whole link.")
    state = invite_state(invite)
    if state == "revoked":
        raise BadInvite("This invite link was withdrawn by the person who made it.", code="invite_revoked")
    if state == "expired":
        raise BadInvite("This invite link has expired. Ask for a new one.", code="invite_expired")
    if state == "used_up":
        raise BadInvite("This invite link has been used as many times as it may be. Ask for a new one.",
                        code="invite_used_up")
    return invite


def may_invite(settings: Settings, user: User) -> bool:
    return user.is_admin or (settings.invites_by_users and user.is_active)


def create_invite(session: Session, settings: Settings, user: User, *, uses: int = 1, days: int | None = 7,
                  via: str = "web") -> Invite:
    """A new invite link of ``user``'s, good ``uses`` times for ``days`` (None: no end). The caller commits."""
    if not may_invite(settings, user):
        raise PermissionDenied("Only administrators can make invite links on this site.", code="not_inviter")
    if isinstance(uses, bool) or not 1 <= uses <= INVITE_MAX_USES:
        raise InvalidInput("An invite link can be used from 1 to %(max)s times.", code="bad_uses",
                           max=INVITE_MAX_USES)
    if days is not None and (isinstance(days, bool) or not 1 <= days <= INVITE_MAX_DAYS):
        raise InvalidInput("An invite link lasts from 1 to %(max)s days, or has no end.", code="bad_days",
                           max=INVITE_MAX_DAYS)
    invite = Invite(code=secrets.token_urlsafe(18), created_by=user.id, max_uses=uses, uses=0,
                    expires=utcnow() + dt.timedelta(days=days) if days is not None else None)
    session.add(invite)
    session.flush()
    audit.record(session, user, "invite.create", "invite", invite.id, target_label=f"invite {invite.id}",
                 details={"uses": uses, "days": days}, via=via)
    return invite


def invites_for(session: Session, user: User) -> list[Invite]:
    """Admins see every invite link, others their own; newest first."""
    query = select(Invite).order_by(Invite.id.desc()).limit(500)
    if not user.is_admin:
        query = query.where(Invite.created_by == user.id)
    return list(session.scalars(query))


def revoke_invite(session: Session, user: User, invite_id: int, *, via: str = "web") -> Invite:
    """Withdraw an invite link (its maker's or, for an admin, anyone's). The caller commits."""
    invite = session.get(Invite, invite_id)
    if invite is None or not (invite.created_by == user.id or user.is_admin):
        raise NotFound("There is no such invite link.", code="no_invite")
    if invite.revoked is None:
        invite.revoked = utcnow()
        audit.record(session, user, "invite.revoke", "invite", invite.id, target_label=f"invite {invite.id}",
                     via=via)
    return invite


def _use(session: Session, invite: Invite) -> None:
    """Count one use, in SQL so two sign-ups at once cannot both take the last one."""
    taken = session.execute(update(Invite).where(Invite.id == invite.id, Invite.uses < Invite.max_uses)
                            .values(uses=Invite.uses + 1))
    if rowcount(taken) != 1:
        raise BadInvite("This invite link has been used as many times as it may be. Ask for a new one.",
                        code="invite_used_up")


# Signing up ---------------------------------------------------------------------------------------

@dataclass
class SignUp:
    user: User
    pending: bool  # waiting for a moderator (approval mode)


def register(session: Session, settings: Settings, *, username: str, email: str, password: str,
             answer: str = "", invite_code: str = "") -> SignUp:
    """Sign someone up under the site's mode. The caller commits (and logs them in unless pending)."""
    mode = settings.registration
    if mode == "closed":
        raise PermissionDenied("Registration is closed on this site.", code="registration_closed")
    invite = usable_invite(session, invite_code) if invite_code and mode in ("invite", "approval") else None
    if mode == "invite" and invite is None:
        raise PermissionDenied("Signing up on this site needs an invite link. Ask someone who has an account "
                               "for one.", code="invite_required")
    pending = mode == "approval" and invite is None
    text = answer.strip()
    if pending and settings.registration_question and not text:
        raise InvalidInput("Answer the question: a moderator reads it before approving your account.",
                           code="answer_required")
    if len(text) > ANSWER_MAX:
        raise InvalidInput("An answer can have at most %(max)s characters.", code="answer_too_long", max=ANSWER_MAX)
    check_email_domain(settings, clean_email(email))
    user = create_user(session, username, email, password, verified=not settings.require_email_verification)
    if invite is not None:
        _use(session, invite)
    if pending:
        user.pending_approval = True
        session.add(RegistrationRequest(user_id=user.id, answer=text, locale=i18n.current()))
    if settings.require_email_verification:
        send_verification(session, settings.link_base(), settings.site_name, user)
    return SignUp(user, pending)


# The moderators' queue ----------------------------------------------------------------------------

def requests_waiting(session: Session) -> list[RegistrationRequest]:
    """Every request waiting for a moderator, oldest first."""
    return list(session.scalars(select(RegistrationRequest).order_by(RegistrationRequest.id).limit(500)))


def request_of(session: Session, user: User) -> RegistrationRequest | None:
    """``user``'s sign-up request, while it waits for a moderator."""
    if not user.pending_approval:
        return None
    return session.scalar(select(RegistrationRequest).where(RegistrationRequest.user_id == user.id))


def _check_moderator(actor: User | None) -> None:
    if actor is not None and not may_moderate(actor):
        raise PermissionDenied("Only moderators and administrators can do this.", code="not_moderator")


def _request(session: Session, request_id: int) -> RegistrationRequest:
    row = session.get(RegistrationRequest, request_id)
    if row is None:
        raise NotFound("There is no such request. Another moderator may have decided it already.",
                       code="no_request")
    return row


def _mail_language(user: User, row: RegistrationRequest) -> str | None:
    return user.locale if i18n.normalize(user.locale) else row.locale


def approve(session: Session, settings: Settings, actor: User | None, request_id: int, *, reason: str = "",
            via: str = "web") -> User:
    """Let the account in, and mail its owner (after the commit). The caller commits."""
    _check_moderator(actor)
    row = _request(session, request_id)
    user = row.user
    user.pending_approval = False
    audit.record(session, actor, "registration.approve", "user", user.id, target_label=user.username,
                 reason=reason.strip()[:REASON_MAX], details={"answer": row.answer}, via=via)
    with i18n.use_locale(_mail_language(user, row)):
        subject, body = mail.registration_approved(username=user.username, site=settings.site_name,
                                                   link=f"{settings.link_base()}/auth/login")
    record_mail(session, user.email, subject, body)
    session.delete(row)
    return user


def reject(session: Session, settings: Settings, actor: User | None, request_id: int, *, reason: str = "",
           via: str = "web") -> str:
    """Refuse the request: the account is deleted (its name and address are free again) and its owner
    is mailed, with the reason if one is given. Returns the username. The caller commits."""
    _check_moderator(actor)
    row = _request(session, request_id)
    user = row.user
    text = reason.strip()
    if len(text) > REASON_MAX:
        raise InvalidInput("A reason can have at most %(max)s characters.", code="reason_too_long", max=REASON_MAX)
    audit.record(session, actor, "registration.reject", "user", user.id, target_label=user.username,
                 reason=text, details={"answer": row.answer, "email": user.email}, via=via)
    with i18n.use_locale(_mail_language(user, row)):
        subject, body = mail.registration_rejected(username=user.username, site=settings.site_name, reason=text)
    record_mail(session, user.email, subject, body)
    name = user.username
    session.delete(row)
    session.delete(user)
    return name
