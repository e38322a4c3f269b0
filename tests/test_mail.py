"""Outgoing mail: files under DATA/mail by default, SMTP when configured (a real SMTP server here)."""

from __future__ import annotations

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from kiln.accounts.mail import FileMailer, SmtpMailer, make_mailer
from kiln.config import load_settings
from tests.e2e.conftest import free_port


class Inbox(Message):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list = []

    def handle_message(self, message) -> None:  # type: ignore[no-untyped-def]
        self.messages.append(message)


def test_default_mailer_writes_files(tmp_path):
    settings = load_settings(data_dir=tmp_path)
    mailer = make_mailer(settings)
    assert isinstance(mailer, FileMailer)
    mailer.send("a@example.com", "Hello", "Body with a link http://x/y")
    [eml] = list((tmp_path / "mail").glob("*.eml"))
    assert b"Subject: Hello" in eml.read_bytes()


def test_smtp_mailer_delivers_to_a_real_smtp_server(tmp_path):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = load_settings(data_dir=tmp_path, mail={"smtp_host": "127.0.0.1", "smtp_port": port,
                                                          "smtp_starttls": False, "sender": "kiln@example.org"})
        mailer = make_mailer(settings)
        assert isinstance(mailer, SmtpMailer)
        mailer.send("bob@example.com", "Confirm your address", "Open http://kiln.test/auth/verify?token=abc")
    finally:
        controller.stop()
    [msg] = inbox.messages
    assert msg["To"] == "bob@example.com" and msg["From"] == "kiln@example.org"
    assert "auth/verify?token=abc" in msg.get_payload()
    assert not (tmp_path / "mail").exists()
