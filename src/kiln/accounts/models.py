"""People, their privileges, login sessions, API tokens and emailed one-time tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiln.db.base import NEVER_REUSE_IDS, Base, utcnow

# The privileges MediaGoblin has; "active" means the email address was verified.
PRIVILEGES = ("admin", "moderator", "uploader", "commenter", "reporter", "active")
DEFAULT_PRIVILEGES = ("uploader", "commenter", "reporter")


class User(Base):
    __tablename__ = "users"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(30), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(100), default="")
    bio: Mapped[str] = mapped_column(String(2000), default="")
    default_license: Mapped[str] = mapped_column(String(100), default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    banned: Mapped[bool] = mapped_column(default=False)
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
    # How this person wants mail about each notification type ({"comment": "digest", ...}); a type
    # missing here has its default (kiln.social.notify.MAIL_DEFAULTS).
    notify_mail: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # When the last daily digest was mailed.
    digest_sent: Mapped[dt.datetime | None]

    # Loaded when first asked for (the person making a request): not for every owner and author a
    # listing shows, which never needs them.
    privileges: Mapped[list[UserPrivilege]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="select"
    )

    def has(self, privilege: str) -> bool:
        return any(p.name == privilege for p in self.privileges)

    @property
    def is_admin(self) -> bool:
        return self.has("admin")

    @property
    def is_active(self) -> bool:
        return self.has("active") and not self.banned

    @property
    def privilege_names(self) -> list[str]:
        return sorted(p.name for p in self.privileges)


class UserPrivilege(Base):
    __tablename__ = "user_privileges"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(20))
    user: Mapped[User] = relationship(back_populates="privileges")


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
