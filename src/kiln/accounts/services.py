"""Accounts: registration, verification, login sessions, password reset, API tokens."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import re
import secrets
from typing import TYPE_CHECKING, Any

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from kiln import i18n
from kiln.accounts import mail
from kiln.accounts.models import (
    DEFAULT_PRIVILEGES,
    PRIVILEGES,
    ApiToken,
    EmailToken,
    HeldUsername,
    LoginSession,
    User,
    UserPrivilege,
)
from kiln.config import SecuritySettings
from kiln.db.base import rowcount, utcnow
from kiln.errors import Conflict, InvalidInput, KilnError, NotFound, PermissionDenied
from kiln.i18n import N_
from kiln.processing.outbox import record, record_mail, register_handler

if TYPE_CHECKING:
    from kiln.runtime import Runtime

HASHER = PasswordHasher()  # Argon2id; build_runtime applies the site's costs (use_password_costs)
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,29}$")
RESERVED = {"admin", "api", "auth", "static", "media", "u", "tag", "tags", "upload", "feeds", "panel", "kiln"}
SESSION_DAYS = 30
VERIFY_HOURS = 72
RESET_HOURS = 1
MIN_PASSWORD = 8


class BadCredentials(KilnError):
    code = "bad_credentials"
    status = 401


class BadToken(KilnError):
    code = "bad_token"
    status = 400


class AlreadyConfirmed(BadToken):
    """A confirmation link opened again (or an older one) when its address is confirmed already.
    Only someone holding a link Kiln mailed can get this answer, so it tells nobody else whether an
    account exists."""

    code = "already_confirmed"

    def __init__(self, user: User) -> None:
        super().__init__("This email address is already confirmed.")
        self.user = user


class Banned(PermissionDenied):
    """The right password of a banned account: the person is told why and until when, in the
    language their account is set to (else the request's)."""

    code = "banned"

    def __init__(self, user: User) -> None:
        self.locale = i18n.normalize(user.locale)
        if user.banned_until is None:
            super().__init__(N_("This account is banned for good. The reason given: %(reason)s"),
                             reason=user.ban_reason or "-")
        else:
            super().__init__(N_("This account is banned until %(until)s. The reason given: %(reason)s"),
                             until=user.banned_until, reason=user.ban_reason or "-")

    @property
    def message(self) -> str:
        locale = getattr(self, "locale", None)
        if locale is None:
            return super().message
        with i18n.use_locale(locale):
            return super().message


class PendingApproval(PermissionDenied):
    """The right password of an account asked for in approval mode that no moderator has approved yet."""

    code = "pending_approval"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def check_password(user: User, password: str) -> bool:
    """Whether ``password`` is this person's. Besides Kiln's own Argon2id hashes, the bcrypt hashes a
    MediaGoblin site stores are checked (``kiln import mediagoblin`` carries them over as they are):
    people log in with the password they had, and ``authenticate`` rehashes it to Argon2id."""
    if is_bcrypt(user.password_hash):
        try:
            return bool(bcrypt.checkpw(password.encode(), user.password_hash.encode()))
        except ValueError:  # not a hash bcrypt can read, or a password past its 72 bytes
            return False
    try:
        return HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def is_bcrypt(password_hash: str) -> bool:
    return password_hash.startswith(("$2a$", "$2b$", "$2y$"))


def clean_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        raise InvalidInput(
            "A username has 2 to 30 characters: lowercase letters, digits, '-' and '_', starting with a "
            "letter or digit.", code="bad_username")
    if name in RESERVED:
        raise InvalidInput("The username '%(name)s' is reserved; choose another.", code="bad_username",
                           name=name)
    return name


def clean_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput("That email address is not valid: %(reason)s", code="bad_email",
                           reason=str(exc)) from exc


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("A password needs at least %(min)s characters.", code="weak_password",
                           min=MIN_PASSWORD)
    if len(password) > 1024:
        raise InvalidInput("A password can have at most %(max)s characters.", code="weak_password", max=1024)


def find_user(session: Session, name_or_email: str) -> User | None:
    value = name_or_email.strip().lower()
    column = User.email if "@" in value else User.username
    return session.scalar(select(User).where(func.lower(column) == value))


def check_not_held(session: Session, name: str) -> None:
    """Refuse the username of an account deleted lately (``kiln.accounts.leaving``) until its hold ends."""
    held = session.get(HeldUsername, name)
    if held is not None and held.until > utcnow():
        raise Conflict("The username '%(name)s' belonged to an account deleted lately and is held back until "
                       "%(until)s; choose another.", code="username_held", name=name, until=held.until)


def create_user(
    session: Session, username: str, email: str, password: str, *, verified: bool = False,
    admin: bool = False,
) -> User:
    name, address = clean_username(username), clean_email(email)
    check_new_password(password)
    if session.scalar(select(User.id).where(User.username == name)):
        raise Conflict("The username '%(name)s' is taken.", code="username_taken", name=name)
    check_not_held(session, name)
    if session.scalar(select(User.id).where(User.email == address)):
        raise Conflict("An account with that email address already exists.", code="email_taken")
    user = User(username=name, email=address, password_hash=hash_password(password), display_name=username)
    user.privileges = [UserPrivilege(name=p) for p in DEFAULT_PRIVILEGES]
    if verified:
        user.privileges.append(UserPrivilege(name="active"))
    if admin:
        user.privileges += [UserPrivilege(name="admin"), UserPrivilege(name="moderator")]
    session.add(user)
    session.flush()
    return user


def grant(user: User, privilege: str) -> None:
    """Give ``privilege`` (one suspended for a time is given back now)."""
    if privilege not in PRIVILEGES:
        raise InvalidInput("Unknown privilege '%(privilege)s'. Known: %(known)s.", privilege=privilege,
                           known=", ".join(PRIVILEGES))
    row = next((p for p in user.privileges if p.name == privilege), None)
    if row is None:
        user.privileges.append(UserPrivilege(name=privilege))
    else:
        row.suspended_until = None


def set_password(session: Session, user: User, password: str, revoke_tokens: bool = False) -> int:
    """Set a new password, end every login session of the user (they must log in again) and void
    reset links still in their mailbox; with ``revoke_tokens``, delete their API tokens too.
    Returns how many tokens were revoked."""
    check_new_password(password)
    user.password_hash = hash_password(password)
    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    revoked = 0
    if revoke_tokens:
        revoked = rowcount(session.execute(delete(ApiToken).where(ApiToken.user_id == user.id)))
    session.execute(update(EmailToken).where(EmailToken.user_id == user.id, EmailToken.purpose == "reset",
                                             EmailToken.used.is_(None)).values(used=utcnow()))
    return revoked


# Emailed one-time tokens ----------------------------------------------------------------------

def issue_email_token(session: Session, user: User, purpose: str, email: str | None = None) -> str:
    hours = RESET_HOURS if purpose == "reset" else VERIFY_HOURS
    token = secrets.token_urlsafe(32)
    session.add(EmailToken(token_hash=digest(token), user_id=user.id, purpose=purpose,
                           email=email or user.email, expires=utcnow() + dt.timedelta(hours=hours)))
    return token


def _email_token(session: Session, token: str, purpose: str) -> EmailToken | None:
    return session.scalar(select(EmailToken).where(EmailToken.token_hash == digest(token),
                                                   EmailToken.purpose == purpose))


def consume_email_token(session: Session, token: str, purpose: str) -> tuple[User, EmailToken]:
    """Use a mailed link once. Pages offer the next step (a new link) next to these messages."""
    row = _email_token(session, token, purpose)
    if row is None:
        raise BadToken("This link is not valid. Check that you opened the whole link from the mail.")
    if row.used is not None:
        raise BadToken("This link was used already. Each link works once.", code="token_used")
    if row.expires < utcnow():
        raise BadToken("This link has expired.", code="token_expired")
    row.used = utcnow()
    user = session.get(User, row.user_id)
    if user is None:
        raise BadToken("This link belongs to an account that no longer exists.")
    return user, row


def send_verification(session: Session, base_url: str, site: str, user: User, email: str | None = None) -> None:
    """Record that the confirmation mail is to be sent: after the caller commits, a worker issues the
    link and writes the mail (``mail_verification``) in the account's language or, if it has none, the
    language of the request that asked (carried in the effect's payload)."""
    session.flush()
    record(session, "verify_request", {"user_id": user.id, "email": email or user.email, "base_url": base_url,
                                       "site": site, "locale": i18n.current()},
           summary=f"Confirmation mail for user {user.id}")


def mail_verification(rt: Runtime, payload: dict[str, Any]) -> None:
    """The outbox handler of a confirmation request: a new link and the mail carrying it, in one
    transaction (the mail is another outbox effect, sent after the commit)."""
    with rt.sessions() as session:
        user = session.get(User, payload["user_id"])
        if user is None:
            return
        token = issue_email_token(session, user, "verify", payload["email"])
        link = f"{payload['base_url'].rstrip('/')}/auth/verify?token={token}"
        with i18n.use_locale(mail_language(user, payload)):
            subject, body = mail.verification(username=user.username, site=payload["site"], link=link,
                                              hours=VERIFY_HOURS)
        record_mail(session, payload["email"], subject, body)
        session.commit()


register_handler("verify_request", mail_verification)


def mail_language(user: User, payload: dict[str, Any]) -> str | None:
    """The language of a mail to ``user``: the account's choice, else the asking request's."""
    return user.locale if i18n.normalize(user.locale) else payload.get("locale")


def verify_email(session: Session, token: str) -> User:
    """Confirm the address a link was mailed to. A used or expired link whose address is confirmed
    already raises AlreadyConfirmed: that is the truth to tell, not that the link is bad."""
    row = _email_token(session, token, "verify")
    if row is not None and (row.used is not None or row.expires < utcnow()):
        owner = session.get(User, row.user_id)
        if owner is not None and owner.has("active") and owner.email == row.email:
            raise AlreadyConfirmed(owner)
    user, row = consume_email_token(session, token, "verify")
    if row.email != user.email:  # confirming a change of address
        if session.scalar(select(User.id).where(User.email == row.email, User.id != user.id)):
            raise Conflict("Another account uses that email address now.", code="email_taken")
        user.email = row.email
    grant(user, "active")
    return user


def request_reset(session: Session, base_url: str, site: str, email: str) -> None:
    """Ask for a reset link to be mailed if the address has an account. The request only records
    that (the same row whatever the address, so it takes the same time either way and never waits
    for SMTP); a worker looks the address up after the commit (``mail_reset_link``)."""
    email = "".join(ch for ch in email if ch.isprintable())[:320]  # typed by anyone; PostgreSQL refuses NUL
    record(session, "reset_request", {"email": email, "base_url": base_url, "site": site,
                                      "locale": i18n.current()},
           summary=f"Password reset asked for {email}")


def mail_reset_link(rt: Runtime, payload: dict[str, Any]) -> None:
    """The outbox handler of a reset request: if the address has an account, a new link and the mail
    carrying it, both in one transaction (the mail is another outbox effect, sent after the commit)."""
    email, base_url, site = str(payload["email"]), str(payload["base_url"]), str(payload["site"])
    with rt.sessions() as session:
        user = find_user(session, email) if "@" in email else None
        if user is None:
            return
        token = issue_email_token(session, user, "reset")
        link = f"{base_url.rstrip('/')}/auth/reset?token={token}"
        with i18n.use_locale(mail_language(user, payload)):
            subject, body = mail.password_reset(username=user.username, site=site, link=link, hours=RESET_HOURS)
        record_mail(session, user.email, subject, body)
        session.commit()


register_handler("reset_request", mail_reset_link)


def reset_password(session: Session, token: str, password: str) -> User:
    check_new_password(password)
    user, _row = consume_email_token(session, token, "reset")
    # A reset is the way back into an account someone else may hold: nothing of theirs stays valid.
    set_password(session, user, password, revoke_tokens=True)
    grant(user, "active")  # following the mailed link proves the address
    return user


# Login sessions ------------------------------------------------------------------------------

def authenticate(session: Session, name_or_email: str, password: str) -> User:
    user = find_user(session, name_or_email)
    if user is None:
        _burn(password)
        raise BadCredentials("The username or password is wrong.")
    if not check_password(user, password):
        raise BadCredentials("The username or password is wrong.")
    if user.banned_now:
        raise Banned(user)
    if user.pending_approval:
        raise PendingApproval("Your account is waiting for approval by a moderator. We will mail you when it "
                              "is decided.")
    if is_bcrypt(user.password_hash) or HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


_DUMMY_HASH = HASHER.hash("kiln-timing-equaliser")


def use_password_costs(security: SecuritySettings) -> None:
    """Hash passwords with the site's Argon2id costs from now on (``security.password_*``). The dummy hash
    that unknown names are checked against is re-made with them, so both answers still take as long."""
    global HASHER, _DUMMY_HASH
    if (HASHER.time_cost, HASHER.memory_cost) == (security.password_time_cost, security.password_memory_kib):
        return
    HASHER = PasswordHasher(time_cost=security.password_time_cost, memory_cost=security.password_memory_kib)
    _DUMMY_HASH = HASHER.hash("kiln-timing-equaliser")


def _burn(password: str) -> None:
    """Spend the same time as a real check, so unknown usernames cannot be told apart by timing."""
    with contextlib.suppress(VerificationError):
        HASHER.verify(_DUMMY_HASH, password)


def start_session(session: Session, user: User) -> str:
    token = secrets.token_urlsafe(32)
    user.last_seen = utcnow()  # logging in is being seen (and spares the first page the write)
    session.add(LoginSession(token_hash=digest(token), user_id=user.id,
                             expires=utcnow() + dt.timedelta(days=SESSION_DAYS)))
    return token


def session_user(session: Session, token: str, also: tuple[Any, ...] = ()) -> User | None:
    """The person logged in with ``token``, or None. One query: the login, its person and their
    privileges (every page asks for them), and ``also``, scalar columns correlated with
    ``LoginSession.user_id`` that the caller wants with them (the bell's count), kept as a tuple in
    ``session.info["also"]``. ``also`` should be one tuple made once: the statement is built once for
    it (building it and its cache key cost more than the lookup's own Python work)."""
    found = session.execute(_login_query(also), {"token_hash": digest(token)}).unique().first()
    if found is None:
        return None
    row = found[0]
    if row.expires < utcnow() or row.user.banned_now or row.user.pending_approval:
        return None
    session.info["also"] = tuple(found[1:])
    return row.user


@functools.lru_cache(maxsize=8)
def _login_query(also: tuple[Any, ...]) -> Any:
    return (select(LoginSession, *also).options(joinedload(LoginSession.user).joinedload(User.privileges))
            .where(LoginSession.token_hash == bindparam("token_hash")))


SEEN_EVERY = dt.timedelta(minutes=10)


def note_seen(engine: Engine, user: User) -> None:
    """Remember that ``user`` was here, at most once per SEEN_EVERY: one small UPDATE in its own
    short transaction (the request's may never commit), and none at all on most requests. It goes
    straight to the engine: nobody without an account sees it, so the site's change counter stays."""
    now = utcnow()
    if user.last_seen is not None and user.last_seen > now - SEEN_EVERY:
        return
    with engine.begin() as connection:
        connection.execute(update(User).where(User.id == user.id, (User.last_seen.is_(None))
                                              | (User.last_seen <= now - SEEN_EVERY)).values(last_seen=now))
    set_committed_value(user, "last_seen", now)  # not a change the request's session would write


def end_session(session: Session, token: str) -> None:
    session.execute(delete(LoginSession).where(LoginSession.token_hash == digest(token)))


# API tokens ----------------------------------------------------------------------------------

def create_api_token(session: Session, user: User, name: str = "", scope: str = "write") -> str:
    if scope not in ("read", "write"):
        raise InvalidInput("A token's scope is 'read' or 'write'.")
    token = "kiln_" + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=digest(token), user_id=user.id, name=name[:100], scope=scope))
    return token


def token_owner(session: Session, token: str) -> ApiToken | None:
    """The token's row, None if there is none; the token of a banned person raises Banned (why and
    until when), and works again when a ban for a time has ended."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is None:
        return None
    if row.user.banned_now:
        raise Banned(row.user)
    return row


def revoke_api_token(session: Session, user: User, token_id: int) -> None:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound("No such token.")
    session.delete(row)


def get_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise NotFound("There is no user named '%(name)s'.", name=username)
    return user
