"""Counting attempts (logins, sign-ups, reset mails) per account and per address, and pausing the noisy.

The counters live in the memory of one web process: a site run with N web processes lets through up
to N times the configured number before every process has paused a key. That bounds password
guessing to a few hundred tries an hour per account instead of the ~20 a second one core can verify.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kiln.config import SecuritySettings
from kiln.errors import KilnError

MAX_KEYS = 100_000  # beyond this, forget the quietest keys first so memory stays bounded


class Throttled(KilnError):
    code = "too_many_attempts"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Counter:
    hits: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    strikes: int = 0  # how many pauses in a row, for the doubling
    seen: float = 0.0


def _wait_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


class Throttle:
    """Keys are strings like ``"login-account:alice"``. ``check`` raises :class:`Throttled` while a key
    is paused; ``hit`` counts one attempt and pauses the key once ``limit`` attempts fall in ``window``
    seconds; ``clear`` forgets a key (a successful login)."""

    def __init__(self, settings: SecuritySettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._counters: dict[str, _Counter] = {}
        self._lock = threading.Lock()

    def check(self, key: str, message: str) -> None:
        with self._lock:
            counter = self._counters.get(key)
            now = self.clock()
            if counter is not None and counter.blocked_until > now:
                wait = max(1, math.ceil(counter.blocked_until - now))
                raise Throttled(f"{message} Try again in {_wait_words(wait)}.", retry_after=wait)

    def hit(self, key: str, limit: int, window: float, *, lockout: float | None = None) -> None:
        """Count an attempt. With ``lockout`` None the pause lasts until the oldest attempt leaves the
        window (a plain rate); otherwise it starts at ``lockout`` seconds and doubles each time."""
        with self._lock:
            now = self.clock()
            counter = self._counters.get(key)
            if counter is None:
                self._forget_if_full(now)
                counter = self._counters[key] = _Counter()
            counter.seen = now
            counter.hits = [t for t in counter.hits if t > now - window]
            counter.hits.append(now)
            if len(counter.hits) < limit:
                return
            if lockout is None:
                counter.blocked_until = counter.hits[-limit] + window
            else:
                pause = min(lockout * 2 ** counter.strikes, self.settings.max_lockout_seconds)
                counter.strikes += 1
                counter.blocked_until = now + pause
                counter.hits.clear()

    def clear(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)

    def _forget_if_full(self, now: float) -> None:
        if len(self._counters) < MAX_KEYS:
            return
        idle = sorted(self._counters, key=lambda k: self._counters[k].seen)
        for key in idle[: MAX_KEYS // 10]:
            if self._counters[key].blocked_until <= now:
                del self._counters[key]

    # The three uses ------------------------------------------------------------------------------

    def before_login(self, name: str, ip: str) -> None:
        message = "Too many failed logins."
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
        self.check(key, "Too many sign-ups from your network.")
        self.hit(key, self.settings.registrations_per_ip_per_hour, 3600)

    def reset_mail(self, email: str, ip: str) -> None:
        message = "Too many password reset requests."
        account, address = f"reset-account:{email.strip().lower()}", f"reset-ip:{ip}"
        self.check(address, message)
        self.check(account, message)
        self.hit(address, self.settings.reset_mails_per_ip_per_hour, 3600)
        self.hit(account, self.settings.reset_mails_per_account_per_hour, 3600)
