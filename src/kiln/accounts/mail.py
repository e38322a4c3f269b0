"""Outgoing mail: SMTP when configured, otherwise printed and written under DATA/mail/."""

from __future__ import annotations

import email.policy
import smtplib
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from kiln.config import MailSettings, Settings
from kiln.db.base import utcnow
from kiln.i18n import _, interpolate, ngettext

_LONG_HEADERS = email.policy.default.clone(max_line_length=998)


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str, headers: dict[str, str] | None = None) -> None: ...


def _message(sender: str, to: str, subject: str, body: str, headers: dict[str, str] | None = None) -> EmailMessage:
    """``headers``: extra ones, e.g. List-Unsubscribe (RFC 8058) on notification mail. Their lines may be
    as long as RFC 5322 allows: a URL folded at 78 characters would be RFC 2047-encoded, which mail
    clients do not read as an address."""
    msg = EmailMessage(policy=_LONG_HEADERS) if headers else EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    for name, value in (headers or {}).items():
        msg[name] = value
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="kiln.local")
    msg.set_content(body)
    return msg


class FileMailer:
    """Writes each message as an .eml file (and prints it), so people and tests can follow links."""

    def __init__(self, folder: Path, sender: str, echo: bool = True) -> None:
        self.folder, self.sender, self.echo = folder, sender, echo

    def send(self, to: str, subject: str, body: str, headers: dict[str, str] | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        msg = _message(self.sender, to, subject, body, headers)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        safe_to = "".join(c if c.isalnum() or c in "@._-" else "_" for c in to)
        (self.folder / f"{stamp}-{safe_to}.eml").write_bytes(bytes(msg))
        if self.echo:
            print(f"\n--- mail to {to}: {subject} ---\n{body}\n--- end of mail ---\n", file=sys.stderr)


class SmtpMailer:
    """Sends through the configured server. Every socket operation waits at most ``smtp_timeout``
    seconds; only the outbox's worker calls this, never a web request."""

    def __init__(self, cfg: MailSettings) -> None:
        self.cfg = cfg

    def send(self, to: str, subject: str, body: str, headers: dict[str, str] | None = None) -> None:
        assert self.cfg.smtp_host
        with smtplib.SMTP(self.cfg.smtp_host, self.cfg.smtp_port, timeout=self.cfg.smtp_timeout) as smtp:
            if self.cfg.smtp_starttls:
                smtp.starttls()
            if self.cfg.smtp_user:
                smtp.login(self.cfg.smtp_user, self.cfg.smtp_password or "")
            smtp.send_message(_message(self.cfg.sender, to, subject, body, headers))


def make_mailer(settings: Settings) -> Mailer:
    if settings.mail.smtp_host:
        return SmtpMailer(settings.mail)
    return FileMailer(settings.mail_dir, settings.mail.sender)


# The mails Kiln writes to people, in the current language (``i18n.use_locale`` around the call) --------

def verification(*, username: str, site: str, link: str, hours: int) -> tuple[str, str]:
    """The subject and body of the mail confirming an address (at sign-up or a change of address)."""
    subject = interpolate(_("Confirm your email address for %(site)s"), {"site": site})
    body = interpolate(_("Hello %(username)s,\n\nconfirm your email address by opening this link:\n\n"
                         "%(link)s\n\n"), {"username": username, "link": link})
    body += interpolate(ngettext(
        "The link works once and for %(n)s hour. If you did not ask for this, ignore it.\n",
        "The link works once and for %(n)s hours. If you did not ask for this, ignore it.\n", hours), {"n": hours})
    return subject, body


def password_reset(*, username: str, site: str, link: str, hours: int) -> tuple[str, str]:
    """The subject and body of the mail carrying a password reset link."""
    subject = interpolate(_("Reset your %(site)s password"), {"site": site})
    body = interpolate(_("Hello %(username)s,\n\nsomeone asked to reset your password. Choose a new one here:"
                         "\n\n%(link)s\n\n"), {"username": username, "link": link})
    body += interpolate(ngettext(
        "The link works once and for %(n)s hour. If it was not you, ignore this mail.\n\n",
        "The link works once and for %(n)s hours. If it was not you, ignore this mail.\n\n", hours), {"n": hours})
    body += _("A password set through this link logs your account out everywhere and revokes all of its API "
              "tokens (in case someone else has them); make new tokens on your account page after.\n")
    return subject, body


def registration_approved(*, username: str, site: str, link: str) -> tuple[str, str]:
    """The mail telling someone who asked to join that a moderator approved their account."""
    subject = interpolate(_("Your account on %(site)s is approved"), {"site": site})
    body = interpolate(_("Hello %(username)s,\n\na moderator approved your request to join %(site)s. "
                         "You can log in now:\n\n%(link)s\n"), {"username": username, "site": site, "link": link})
    return subject, body


def registration_rejected(*, username: str, site: str, reason: str) -> tuple[str, str]:
    """The mail telling someone who asked to join that their request was not accepted."""
    subject = interpolate(_("Your request to join %(site)s"), {"site": site})
    body = interpolate(_("Hello %(username)s,\n\na moderator did not accept your request to join %(site)s, "
                         "and the account you asked for was not made.\n"), {"username": username, "site": site})
    if reason:
        body += interpolate(_("\nThe reason given: %(reason)s\n"), {"reason": reason})
    return subject, body
