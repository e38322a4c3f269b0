"""People, their privileges, login sessions, API tokens and emailed one-time tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    false,
    or_,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiln.db.base import NEVER_REUSE_IDS, Base, utcnow

# The privileges MediaGoblin has; "active" means the email address was verified.
PRIVILEGES = ("admin", "moderator", "uploader", "commenter", "reporter", "active")
DEFAULT_PRIVILEGES = ("uploader", "commenter", "reporter")


class User(Base):
    __tablename__ = "users"
    # find_user compares lower(username): without this index, every gallery page the cache does not
    # hold reads the whole table (~200 ms at a million people, docs/scaling.md).
    __table_args__ = (Index("ix_users_lower_username", text("lower(username)")), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(30), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(100), default="")
    bio: Mapped[str] = mapped_column(String(2000), default="")
    default_license: Mapped[str] = mapped_column(String(100), default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Banned now or until ``banned_until`` (None: for good). A ban whose time has passed no longer
    # counts (``banned_now``, ``not_banned``): nobody has to act when it ends. Only
    # kiln.moderation.people changes these three.
    banned: Mapped[bool] = mapped_column(default=False)
    banned_until: Mapped[dt.datetime | None]
    ban_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # When this person last used a login session or token, to within SEEN_EVERY (kiln.accounts.services).
    last_seen: Mapped[dt.datetime | None]
    # This person's largest upload in bytes; None means the site's max_upload_bytes.
    upload_limit_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # The language Kiln speaks to this person (pages, mail); None: their browser's, or the site's.
    locale: Mapped[str | None] = mapped_column(String(16))
    # The avatar's square renditions: {"64": key, "256": key} in the public store; None: initials.
    avatar: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Links on the profile: [{"label": ..., "url": ...}], at most a handful.
    links: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list, server_default="[]")
    # Whether others may comment on this person's media (each item can also turn comments off).
    comments_enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Followers on other servers wait for the account's approval (kiln.federation.requests).
    approve_followers: Mapped[bool] = mapped_column(default=False, server_default=false())
    # How this person wants mail about each notification type ({"comment": "digest", ...}); a type
    # missing here has its default (kiln.social.notify.MAIL_DEFAULTS).
    notify_mail: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # When the last daily digest was mailed.
    digest_sent: Mapped[dt.datetime | None]
    # Signed up in approval mode and not yet approved: cannot log in (kiln.accounts.signup).
    pending_approval: Mapped[bool] = mapped_column(default=False, server_default=false())
    # How many blocks and mutes change what this person sees (theirs, and blocks of them); only
    # kiln.social.blocks changes it. 0: nothing is hidden from them, and pages take their shared,
    # kept path without reading a block list.
    hiding: Mapped[int] = mapped_column(default=0, server_default="0")

    # Loaded when first asked for (the person making a request): not for every owner and author a
    # listing shows, which never needs them.
    privileges: Mapped[list[UserPrivilege]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="select"
    )

    def has(self, privilege: str) -> bool:
        """Whether this person holds ``privilege`` now (one suspended until later does not count)."""
        return any(p.name == privilege and p.in_force() for p in self.privileges)

    @property
    def banned_now(self) -> bool:
        """Banned, and the ban has no end or has not ended yet."""
        return self.banned and (self.banned_until is None or self.banned_until > utcnow())

    @property
    def is_admin(self) -> bool:
        return self.has("admin")

    @property
    def is_active(self) -> bool:
        return self.has("active") and not self.banned_now

    @property
    def privilege_names(self) -> list[str]:
        """The privileges in force now."""
        return sorted(p.name for p in self.privileges if p.in_force())

    @property
    def suspensions(self) -> list[tuple[str, dt.datetime]]:
        """(privilege, until when) of each privilege taken away for a time that has not ended."""
        return sorted((p.name, p.suspended_until) for p in self.privileges
                      if p.suspended_until is not None and not p.in_force())


def not_banned(now: dt.datetime | None = None) -> ColumnElement[bool]:
    """SQL for ``not User.banned_now``: never banned, or the ban's time has passed."""
    return or_(User.banned.is_(False), and_(User.banned_until.is_not(None), User.banned_until <= (now or utcnow())))


class UserPrivilege(Base):
    __tablename__ = "user_privileges"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(20))
    # Taken away until then (kiln.moderation.people.revoke); it is back by itself once the time passes.
    suspended_until: Mapped[dt.datetime | None]
    user: Mapped[User] = relationship(back_populates="privileges")

    def in_force(self) -> bool:
        return self.suspended_until is None or self.suspended_until <= utcnow()


class LoginSession(Base):
    """A browser login. Only the SHA-256 of the cookie value is stored."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires: Mapped[dt.datetime]
    user: Mapped[User] = relationship(lazy="joined")


class ApiToken(Base):
    """A personal access token for the API. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    scope: Mapped[str] = mapped_column(String(10), default="write")  # "read" or "write"
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used: Mapped[dt.datetime | None]
    user: Mapped[User] = relationship(lazy="joined")


class EmailToken(Base):
    """A single-use emailed token (verify an address, reset a password). Stored hashed."""

    __tablename__ = "email_tokens"
    __table_args__ = (Index("ix_email_tokens_user_purpose", "user_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))  # "verify" or "reset"
    email: Mapped[str] = mapped_column(String(254))  # the address the token was sent to
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires: Mapped[dt.datetime]
    used: Mapped[dt.datetime | None]


class ThrottleKey(Base):
    """Recent attempts under one key ("login-account:alice"), shared by every web process."""

    __tablename__ = "throttle_keys"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    hits: Mapped[list[float]] = mapped_column(JSON, default=list)  # epoch seconds of recent attempts
    blocked_until: Mapped[float] = mapped_column(Float, default=0.0)  # epoch seconds
    strikes: Mapped[int] = mapped_column(default=0)  # pauses in a row, for the doubling
    seen: Mapped[float] = mapped_column(Float, default=0.0, index=True)


class RegistrationRequest(Base):
    """A sign-up waiting for a moderator (approval mode): the account exists with
    ``pending_approval`` set; approving clears it, rejecting deletes the account (and this row)."""

    __tablename__ = "registration_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    answer: Mapped[str] = mapped_column(Text, default="")  # to the site's registration_question
    locale: Mapped[str | None] = mapped_column(String(16))  # the language of the outcome's mail
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user: Mapped[User] = relationship(lazy="joined")


class Invite(Base):
    """An invite link (``/auth/register?invite=CODE``): works ``max_uses`` times until ``expires``
    (None: no end) unless revoked."""

    __tablename__ = "invites"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires: Mapped[dt.datetime | None]
    max_uses: Mapped[int] = mapped_column(default=1)
    uses: Mapped[int] = mapped_column(default=0)
    revoked: Mapped[dt.datetime | None]
    creator: Mapped[User] = relationship(lazy="joined")


class HeldUsername(Base):
    """The username of a deleted account, held back until ``until`` so nobody can take it at once and
    pass for the person who left (``kiln.accounts.leaving``). Nothing else of theirs is kept here."""

    __tablename__ = "held_usernames"

    username: Mapped[str] = mapped_column(String(30), primary_key=True)
    until: Mapped[dt.datetime] = mapped_column(index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
