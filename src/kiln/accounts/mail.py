"""Outgoing mail: SMTP when configured, otherwise printed and written under DATA/mail/."""

from __future__ import annotations

import smtplib
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from kiln.config import MailSettings, Settings
from kiln.db.base import utcnow


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


def _message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="kiln.local")
    msg.set_content(body)
    return msg


class FileMailer:
    """Writes each message as an .eml file (and prints it), so people and tests can follow links."""

    def __init__(self, folder: Path, sender: str, echo: bool = True) -> None:
        self.folder, self.sender, self.echo = folder, sender, echo

    def send(self, to: str, subject: str, body: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        msg = _message(self.sender, to, subject, body)
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

    def send(self, to: str, subject: str, body: str) -> None:
        assert self.cfg.smtp_host
        with smtplib.SMTP(self.cfg.smtp_host, self.cfg.smtp_port, timeout=self.cfg.smtp_timeout) as smtp:
            if self.cfg.smtp_starttls:
                smtp.starttls()
            if self.cfg.smtp_user:
                smtp.login(self.cfg.smtp_user, self.cfg.smtp_password or "")
            smtp.send_message(_message(self.cfg.sender, to, subject, body))


def make_mailer(settings: Settings) -> Mailer:
    if settings.mail.smtp_host:
        return SmtpMailer(settings.mail)
    return FileMailer(settings.mail_dir, settings.mail.sender)
