"""Counting attempts (logins, sign-ups, reset mails) per account and per address, and pausing the noisy.

The counters live in the database table ``throttle_keys``, so every web process of a site (``kiln serve
--workers N``) counts into the same rows and a restart forgets nothing. That bounds password guessing
to a few hundred tries an hour per account instead of the ~20 a second one core can verify.

Each operation runs in its own short transaction, apart from the request's session: a failure counted
stays counted even if the request later rolls back or raises. Counting locks the key's row (``SELECT ...
FOR UPDATE`` on PostgreSQL; on SQLite the transaction starts with ``BEGIN IMMEDIATE``, taking the write
lock before reading), so concurrent attempts from several processes are counted one after the other.
Keys idle for longer than the longest window (and pause) are deleted whenever a new key is added, so
the table stays as small as the set of recently active keys.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from kiln import i18n
from kiln.accounts.models import ThrottleKey
from kiln.config import SecuritySettings
from kiln.db.session import transaction
from kiln.errors import KilnError
from kiln.i18n import N_, interpolate, ngettext

HOUR = 3600
FORGET_BATCH = 1000  # idle keys deleted per new key: the table shrinks faster than it can grow
MAX_KEY_CHARS = 200  # longer (or unprintable) keys are stored as a digest; the column holds 300


class Throttled(KilnError):
    """A pause: the reason (a whole sentence, a msgid) and when to try again, a second whole sentence
    with its own plural (seconds under 90, minutes after), both said in the reader's language."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after  # before KilnError's __init__, which may say the message
        super().__init__(message)
        with i18n.use_locale(i18n.SOURCE):
            self.args = (self.message,)

    @property
    def message(self) -> str:
        return f"{i18n.translate(self.msgid, self.params)} {_wait_sentence(self.retry_after)}"


def _wait_sentence(seconds: int) -> str:
    if seconds < 90:
        return interpolate(ngettext("Try again in %(n)s second.", "Try again in %(n)s seconds.", seconds),
                           {"n": seconds})
    minutes = math.ceil(seconds / 60)
    return interpolate(ngettext("Try again in %(n)s minute.", "Try again in %(n)s minutes.", minutes),
                       {"n": minutes})


def stored_key(key: str) -> str:
    """The row's key: ``key`` itself when short and printable, else its kind and a digest, so a
    username of any length or content (a NUL byte, say) still fits the column and is counted."""
    if len(key) <= MAX_KEY_CHARS and key.isprintable():
        return key
    kind = key.split(":", 1)[0][:40] if key[:40].isprintable() else "key"
    return f"{kind}:sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"


class Throttle:
    """Keys are strings like ``"login-account:alice"``. ``check`` raises :class:`Throttled` while a key
    is paused; ``hit`` counts one attempt and pauses the key once ``limit`` attempts fall in ``window``
    seconds; ``clear`` forgets a key (a successful login).

    ``sessions`` makes sessions on the site's database; ``clock`` gives epoch seconds, since the rows are
    shared by processes. On SQLite, do not call ``hit`` or ``clear`` while the same thread holds an
    uncommitted write in another session: they would wait for that session's write lock."""

    def __init__(self, settings: SecuritySettings, sessions: sessionmaker[Session],
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self._longest_window = float(max(settings.login_window_seconds, HOUR))

    def check(self, key: str, message: str) -> None:
        with self.sessions() as session:
            blocked_until = session.scalar(select(ThrottleKey.blocked_until)
                                           .where(ThrottleKey.key == stored_key(key)))
        now = self.clock()
        if blocked_until is not None and blocked_until > now:
            wait = max(1, math.ceil(blocked_until - now))
            raise Throttled(message, retry_after=wait)

    def hit(self, key: str, limit: int, window: float, *, lockout: float | None = None) -> None:
        """Count an attempt. With ``lockout`` None the pause lasts until the oldest attempt leaves the
        window (a plain rate); otherwise it starts at ``lockout`` seconds and doubles each time."""
        self._longest_window = max(self._longest_window, window)
        now = self.clock()
        with self._locked(stored_key(key), now) as counter:
            counter.seen = now
            hits = [t for t in counter.hits if t > now - window]
            hits.append(now)
            if len(hits) >= limit:
                if lockout is None:
                    counter.blocked_until = hits[-limit] + window
                else:
                    counter.blocked_until = now + min(lockout * 2 ** counter.strikes,
                                                      self.settings.max_lockout_seconds)
                    counter.strikes += 1
                    hits = []
            counter.hits = hits  # a new list: the JSON column only notices assignment

    def clear(self, key: str) -> None:
        with transaction(self.sessions) as session:
            session.execute(delete(ThrottleKey).where(ThrottleKey.key == stored_key(key)))

    @contextmanager
    def _locked(self, key: str, now: float) -> Iterator[ThrottleKey]:
        """The key's row (created if new), locked against other writers until the transaction commits."""
        with transaction(self.sessions) as session:
            connection = session.connection()
            if connection.dialect.name == "sqlite":
                # Take the write lock before reading, so no other process reads the count we are changing.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            if _insert_if_new(connection, key, now):
                self._forget_idle(session, now)
            yield session.execute(select(ThrottleKey).where(ThrottleKey.key == key)
                                  .with_for_update()).scalar_one()

    def _forget_idle(self, session: Session, now: float) -> None:
        """Delete keys with neither an attempt nor a pause for the longest window or pause. Their hits
        are all outside any window; their strike count goes too, which is harmless: waiting that long
        between rounds lets through no more than staying at the longest pause would."""
        cutoff = now - max(self._longest_window, self.settings.max_lockout_seconds)
        idle = (select(ThrottleKey.key).where(ThrottleKey.seen < cutoff, ThrottleKey.blocked_until < cutoff)
                .limit(FORGET_BATCH).with_for_update(skip_locked=True))
        session.execute(delete(ThrottleKey).where(ThrottleKey.key.in_(idle)))

    # The three uses ------------------------------------------------------------------------------

    def before_login(self, name: str, ip: str) -> None:
        message = N_("Too many failed logins.")
        self.check(f"login-ip:{ip}", message)
        self.check(f"login-account:{name.strip().lower()}", message)

    def login_failed(self, name: str, ip: str) -> None:
        s = self.settings
        self.hit(f"login-ip:{ip}", s.login_failures_per_ip, s.login_window_seconds, lockout=s.lockout_seconds)
        self.hit(f"login-account:{name.strip().lower()}", s.login_failures_per_account, s.login_window_seconds,
                 lockout=s.lockout_seconds)

    def login_succeeded(self, name: str) -> None:
        self.clear(f"login-account:{name.strip().lower()}")

    def registration(self, ip: str) -> None:
        key = f"register-ip:{ip}"
        self.check(key, N_("Too many sign-ups from your network."))
        self.hit(key, self.settings.registrations_per_ip_per_hour, HOUR)

    def reset_mail(self, email: str, ip: str) -> None:
        message = N_("Too many password reset requests.")
        account, address = f"reset-account:{email.strip().lower()}", f"reset-ip:{ip}"
        self.check(address, message)
        self.check(account, message)
        self.hit(address, self.settings.reset_mails_per_ip_per_hour, HOUR)
        self.hit(account, self.settings.reset_mails_per_account_per_hour, HOUR)


def _insert_if_new(connection: Connection, key: str, now: float) -> bool:
    """Add an empty row for ``key`` unless one exists (another process may be adding it right now);
    True if this call added it. Kiln runs on PostgreSQL and SQLite, which both have this upsert."""
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    result = connection.execute(dialect_insert(ThrottleKey)
                                .values(key=key, hits=[], blocked_until=0.0, strikes=0, seen=now)
                                .on_conflict_do_nothing(index_elements=["key"]).returning(ThrottleKey.key))
    return result.first() is not None  # RETURNING, not rowcount, which psycopg did not report reliably here
