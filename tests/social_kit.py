"""Helpers for the social tests: people, their media, logging a test client in."""

from __future__ import annotations

import io
import re

from fastapi.testclient import TestClient
from PIL import Image

from kiln.accounts import services as accounts
from kiln.accounts.models import User
from kiln.media import services as media_service
from kiln.runtime import Runtime
from kiln.web.deps import CSRF_COOKIE, SESSION_COOKIE


def person(rt: Runtime, name: str, **fields: object) -> int:
    with rt.sessions() as session:
        user = accounts.create_user(session, name, f"{name}@example.com", "correct horse", verified=True)
        for key, value in fields.items():
            setattr(user, key, value)
        session.commit()
        return user.id


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def upload(rt: Runtime, owner_id: int, title: str, visibility: str = "public") -> int:
    """A processed item (the ``rt`` fixture processes inline)."""
    with rt.sessions() as session:
        owner = session.get(User, owner_id)
        assert owner is not None
        entry = media_service.submit(rt, session, owner, io.BytesIO(png()), "p.png",
                                     media_service.MediaFields(title=title, visibility=visibility))
        return entry.id


def log_in(client: TestClient, rt: Runtime, user_id: int) -> str:
    """Log ``client`` in as ``user_id``; returns a CSRF token its form posts can send."""
    with rt.sessions() as session:
        token = accounts.start_session(session, session.get(User, user_id))  # type: ignore[arg-type]
        session.commit()
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, token)
    client.cookies.set(CSRF_COOKIE, "test-csrf")
    return "test-csrf"


def post(client: TestClient, path: str, data: dict[str, object] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    return client.post(path, data={**(data or {}), "csrf_token": "test-csrf"}, follow_redirects=False,
                       **kwargs)  # type: ignore[arg-type]


def api(client: TestClient, method: str, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return client.request(method, path, headers={"X-CSRF-Token": "test-csrf"}, **kwargs)  # type: ignore[arg-type]


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
