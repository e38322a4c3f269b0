"""One world per module for the security tests: an app on SQLite, people in every role, and media
in every state (public, failed and, once the column exists, private and unlisted).

Cookie roles get a fresh login session and a CSRF token on every request, so a test of a
state-changing route tests authorization, not CSRF, and logging out does not log the role out.
"""

from __future__ import annotations

import importlib
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from kiln.accounts import services as accounts
from kiln.accounts.models import ApiToken, UserPrivilege
from kiln.app import create_app
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.processing.dispatch import InlineDispatcher
from kiln.processing.service import process_media
from kiln.runtime import Runtime, build_runtime
from kiln.web.deps import CSRF_COOKIE, SESSION_COOKIE
from tests.conftest import BASE_URL, PG_URL, fresh_database, make_settings
from tests.fixtures_images import make_truncated_jpeg

PASSWORD = "correct horse"
UNTHROTTLED = {name: 1_000_000 for name in (
    "login_failures_per_account", "login_failures_per_ip", "registrations_per_ip_per_hour",
    "reset_mails_per_account_per_hour", "reset_mails_per_ip_per_hour", "comments_per_user_per_hour")}
HAS_VISIBILITY = hasattr(MediaEntry, "visibility")
COOKIE_ROLES = ("owner", "other", "moderator", "admin", "banned", "unverified")
TOKEN_ROLES = ("token_read_owner", "token_write_owner", "token_read_other", "token_write_other")
ROLES = ("anonymous", *COOKIE_ROLES, *TOKEN_ROLES)
# Some role names are reserved usernames.
USERNAMES = {"owner": "olivia", "other": "otto", "moderator": "mona", "admin": "ada", "banned": "bert",
             "unverified": "uma"}


@dataclass
class World:
    rt: Runtime
    client: TestClient
    folder: Path
    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    media: dict[str, int] = field(default_factory=dict)
    spare_token_id: int = 0
    rendition_paths: dict[str, str] = field(default_factory=dict)
    # Path parameters other than media ids ({collection_id}, {comment_id}, ...), filled by the
    # ``setup(world)`` of each tests/security/area_*.py module.
    ids: dict[str, Any] = field(default_factory=dict)

    def headers(self, role: str, writes: bool) -> dict[str, str]:
        """Request headers that make a request come from ``role`` (with CSRF for cookie roles)."""
        if role in TOKEN_ROLES:
            return {"Authorization": f"Bearer {self.tokens[role]}"}
        if role == "anonymous":
            csrf = secrets.token_urlsafe(16)
            return {"Cookie": f"{CSRF_COOKIE}={csrf}", "X-CSRF-Token": csrf} if writes else {}
        with self.rt.sessions() as session:
            user = session.get(accounts.User, self.users[role])
            login = accounts.start_session(session, user)
            session.commit()
        csrf = secrets.token_urlsafe(16)
        return {"Cookie": f"{SESSION_COOKIE}={login}; {CSRF_COOKIE}={csrf}", "X-CSRF-Token": csrf}

    def request(self, role: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        writes = method not in ("GET", "HEAD", "OPTIONS")
        headers = {**self.headers(role, writes), **kwargs.pop("headers", {})}
        self.client.cookies.clear()
        try:
            return self.client.request(method, path, headers=headers, follow_redirects=False, **kwargs)
        finally:
            self.client.cookies.clear()

    def upload(self, owner: str, path: Path, title: str, **fields: Any) -> int:
        with self.rt.sessions() as session:
            user = session.get(accounts.User, self.users[owner])
            with path.open("rb") as fh:
                entry = media_service.submit(self.rt, session, user, fh, path.name,
                                             media_service.MediaFields(title=title, tags="matrix", **fields))
            return entry.id

    def make_private(self, media_id: int) -> None:
        """Turn a public item private the way its owner would (the edit form and PATCH do this)."""
        with self.rt.sessions() as session:
            media = session.get(MediaEntry, media_id)
            user = session.get(accounts.User, self.users["owner"])
            media_service.update(self.rt, session, user, media,  # type: ignore[arg-type]
                                 media_service.MediaFields(visibility="private"))  # type: ignore[call-arg]

    def rendition_path(self, name: str) -> str:
        with self.rt.sessions() as session:
            thumb = session.get(MediaEntry, self.media[name]).rendition("thumbnail")  # type: ignore[union-attr]
            assert thumb is not None, name
            return "/media/" + "/".join(thumb.key)

    def fresh_media(self, private: bool = False) -> int:
        """A new processed item of the owner's, for requests that would delete what they touch."""
        media_id = self.upload("owner", self.folder / "small.png", "Disposable")
        if private:
            self.make_private(media_id)
        return media_id


def _make_user(session, name: str, *, verified: bool = True, admin: bool = False,  # type: ignore[no-untyped-def]
               moderator: bool = False, banned: bool = False) -> int:
    username = USERNAMES[name]
    user = accounts.create_user(session, username, f"{username}@example.com", PASSWORD, verified=verified, admin=admin)
    if moderator:
        user.privileges.append(UserPrivilege(name="moderator"))
    user.banned = banned
    session.flush()
    return user.id


def build_world(rt: Runtime, client: TestClient, folder: Path) -> World:
    world = World(rt=rt, client=client, folder=folder)
    Image.new("RGB", (64, 48), (200, 80, 20)).save(folder / "small.png")
    with rt.sessions() as session:
        for name, options in {"owner": {}, "other": {}, "moderator": {"moderator": True}, "admin": {"admin": True},
                              "banned": {"banned": True}, "unverified": {"verified": False}}.items():
            world.users[name] = _make_user(session, name, **options)
        session.commit()
        for role in TOKEN_ROLES:
            _, scope, whose = role.split("_")
            user = session.get(accounts.User, world.users[whose])
            world.tokens[role] = accounts.create_api_token(session, user, role, scope)
        spare = accounts.create_api_token(session, session.get(accounts.User, world.users["owner"]), "spare")
        session.commit()
        world.spare_token_id = accounts.token_owner(session, spare).id  # type: ignore[union-attr]
        assert session.query(ApiToken).count() == 5
    world.media["public"] = world.upload("owner", folder / "small.png", "Public")
    world.media["failed"] = world.upload("owner", make_truncated_jpeg(folder), "Damaged")
    world.rendition_paths["public"] = world.rendition_path("public")
    if HAS_VISIBILITY:
        world.media["unlisted"] = world.upload("owner", folder / "small.png", "Unlisted", visibility="unlisted")
        world.media["private"] = world.upload("owner", folder / "small.png", "Private")
        world.rendition_paths["was_public"] = world.rendition_path("private")
        world.make_private(world.media["private"])
        world.rendition_paths["private"] = world.rendition_path("private")
    with rt.sessions() as session:
        states = {name: session.get(MediaEntry, mid).state for name, mid in world.media.items()}  # type: ignore[union-attr]
    assert states["public"] == "processed" and states["failed"] == "failed", states
    for path in sorted(Path(__file__).parent.glob("area_*.py")):
        setup = getattr(importlib.import_module(f"tests.security.{path.stem}"), "setup", None)
        if setup is not None:
            setup(world)
    return world


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The module may set ``WORLD_SETTINGS`` (settings overrides); the default turns the throttles off."""
    overrides = getattr(request.module, "WORLD_SETTINGS", {"security": UNTHROTTLED})
    folder = tmp_path_factory.mktemp("security")
    # Every role types a password on several routes: the suite's cheap hashing costs (tests/conftest.py)
    # keep the matrix fast.
    with fresh_database(folder) as url:
        # Every role logs in and asks for mail from one address: the throttles would answer 429.
        settings = make_settings(folder / "data", url, **overrides)
        holder: dict[str, Runtime] = {}
        runtime = build_runtime(settings, dispatcher=InlineDispatcher(lambda mid: process_media(holder["rt"], mid)))
        holder["rt"] = runtime
        try:
            with TestClient(create_app(settings, runtime), base_url=BASE_URL) as client:
                yield build_world(runtime, client, folder)
        finally:
            runtime.close()
            if not PG_URL:
                shutil.rmtree(folder / "data", ignore_errors=True)
