"""The authorization matrix: every route of the app and every operation of the OpenAPI schema,
requested as every role, answers exactly the status written here.

A route without an entry fails ``test_every_route_is_in_the_matrix``: a new route must say who may
use it. Cookie roles send a valid CSRF token, so these are answers about authorization.
API tokens count only under /api/ (and on a private item's files): see ``expected``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import BASE_URL
from tests.security.conftest import HAS_VISIBILITY, PASSWORD, ROLES, USERNAMES, World
from tests.security.matrix_kit import (
    GET_LOGGED_IN,
    GROUPS,
    OWNER_FORM_POST,
    OWNER_PAGE,
    PAGE_OF_OWNER,
    Case,
    E,
    body,
    form,
    png,
    vtt,
)

pytestmark = pytest.mark.db

CASES: list[Case] = [
    # Public pages and feeds
    Case("GET", "/", E(200)),
    Case("GET", "/u/{username}", E(200)),
    Case("GET", "/u/{username}/m/{media_id}", E(200)),
    Case("GET", "/u/{username}/m/{media_id}", PAGE_OF_OWNER, target="failed"),
    Case("GET", "/tag/{slug}", E(200)),
    Case("GET", "/tags", E(200)),
    Case("GET", "/tags", E(200), send=lambda w: {"params": {"sort": "name"}}, note="A to Z"),
    Case("GET", "/favicon.ico", E(200)),
    Case("GET", "/feeds/atom", E(200)),
    Case("GET", "/feeds/u/{username}/atom", E(200)),
    Case("GET", "/feeds/tag/{slug}/atom", E(200)),
    Case("GET", "/media/{path:path}", E(200), note="a public rendition"),
    Case("GET", "/m/{media_id}/r/{name}", E(200), note="a public item's thumbnail through the app"),
    Case("GET", "/static", E(200), note="a stylesheet"),
    Case("GET", "/api/openapi.json", E(200)),
    Case("GET", "/api/docs", E(200)),
    Case("GET", "/api/docs/assets", E(200), note="Swagger UI's stylesheet"),
    # Accounts
    Case("GET", "/auth/register", E(200)),
    Case("POST", "/auth/register", E(409), note="a taken name",
         send=form(username=USERNAMES["owner"], email="new@example.com", password=PASSWORD)),
    Case("GET", "/auth/verify", E(400), note="a bad token"),
    Case("POST", "/auth/resend", E(303, anon=401)),
    Case("GET", "/auth/login", E(200)),
    Case("GET", "/login", E(308), note="to /auth/login"),
    Case("GET", "/register", E(308), note="to /auth/register"),
    Case("POST", "/auth/login", E(401), send=form(username=USERNAMES["owner"], password="wrong password"),
         note="a wrong password"),
    Case("POST", "/auth/logout", E(303)),
    Case("GET", "/auth/forgot", E(200)),
    Case("POST", "/auth/forgot", E(200), send=form(email="nobody@example.com")),
    Case("GET", "/auth/reset", E(200)),
    Case("POST", "/auth/reset", E(400), send=form(token="bogus", password="another horse"), note="a bad token"),
    Case("GET", "/account", GET_LOGGED_IN),
    Case("POST", "/account/password", E(303, anon=401),
         send=form(current=PASSWORD, password=PASSWORD)),
    Case("POST", "/account/email", E(400, anon=401),
         send=form(current="wrong password", email="x@example.com"), note="a wrong password"),
    Case("POST", "/account/profile", E(303, anon=401),
         send=form(display_name="Someone")),
    Case("POST", "/account/language", E(303, anon=401), send=form(locale="en")),
    Case("POST", "/account/tokens", E(200, anon=401), send=form(name="t", scope="write")),
    Case("POST", "/account/tokens/{token_id}/revoke", E(303, anon=401),
         note="the owner's spare token"),
    # Uploading, editing, deleting
    Case("GET", "/upload", GET_LOGGED_IN),
    Case("POST", "/upload", E(303, anon=401, unverified=403), send=png),
    Case("GET", "/m/{media_id}/edit", OWNER_PAGE),
    Case("POST", "/m/{media_id}/edit", OWNER_FORM_POST, send=form(title="Edited", description="", tags="matrix",
                                                                   license="")),
    Case("GET", "/m/{media_id}/delete", OWNER_PAGE),
    Case("POST", "/m/{media_id}/delete", OWNER_FORM_POST, target="fresh"),
    Case("GET", "/m/{media_id}/status", OWNER_PAGE),
    # Captions: the matrix's items are pictures, so the owner passes the checks and is told captions are
    # for video and audio (422); removing a language the item does not have is 404.
    Case("POST", "/m/{media_id}/captions", E(403, anon=401, owner=422, admin=422), send=vtt),
    Case("POST", "/m/{media_id}/captions/{language}/delete", E(403, anon=401, owner=404, admin=404)),
    Case("POST", "/api/v1/media/{media_id}/captions", E(403, anon=401, owner=422, admin=422, token_write_owner=422,
                                                         read_tokens=403), send=vtt),
    Case("DELETE", "/api/v1/media/{media_id}/captions/{language}", E(403, anon=401, owner=404, admin=404,
                                                                      token_write_owner=404, read_tokens=403)),
    Case("GET", "/panel", GET_LOGGED_IN),
    Case("GET", "/panel.json", GET_LOGGED_IN),
    # A failed item is unfinished: to others it does not exist, exactly like a missing id (404, not 403).
    Case("POST", "/m/{media_id}/retry", E(404, anon=401, owner=303, admin=303), target="failed"),
    Case("GET", "/admin/processing", E(403, anon=303, admin=200)),
    Case("POST", "/admin/processing/retry", E(403, anon=401, admin=303)),
    # The API
    Case("POST", "/api/v1/tokens", E(401), send=body(username=USERNAMES["owner"], password="wrong password"),
         note="a wrong password"),
    Case("POST", "/api/v1/media", E(202, anon=401, unverified=403, read_tokens=403), send=png),
    Case("GET", "/api/v1/media", E(200)),
    Case("GET", "/api/v1/media", E(403, owner_side=200, admin=200),
         send=lambda w: {"params": {"user": USERNAMES["owner"], "state": "failed"}}, note="unfinished items"),
    Case("GET", "/api/v1/media/{media_id}", E(200)),
    Case("GET", "/api/v1/media/{media_id}", PAGE_OF_OWNER, target="failed"),
    Case("PATCH", "/api/v1/media/{media_id}", E(403, anon=401, owner=200, admin=200, token_write_owner=200),
         send=body(title="Patched")),
    Case("PATCH", "/api/v1/media/{media_id}", E(404, anon=401, owner=200, admin=200, token_write_owner=200,
                                                 read_tokens=403), target="failed", send=body(title="Patched")),
    Case("DELETE", "/api/v1/media/{media_id}", E(403, anon=401, owner=204, admin=204, token_write_owner=204),
         target="fresh"),
    Case("POST", "/api/v1/media/{media_id}/retry", E(404, anon=401, owner=200, admin=200, token_write_owner=200,
                                                      read_tokens=403), target="failed"),
    Case("GET", "/api/v1/admin/processing", E(403, anon=401, admin=200)),
]

if HAS_VISIBILITY:
    # Private: 404 for everyone but the owner and admins; unlisted: reachable by its link.
    CASES += [
        Case("GET", "/u/{username}/m/{media_id}", PAGE_OF_OWNER, target="private"),
        Case("GET", "/u/{username}/m/{media_id}", E(200), target="unlisted"),
        Case("GET", "/api/v1/media/{media_id}", PAGE_OF_OWNER, target="private"),
        Case("GET", "/api/v1/media/{media_id}", E(200), target="unlisted"),
        Case("GET", "/m/{media_id}/edit", E(404, anon=303, owner_side=200, admin=200), target="private"),
        Case("POST", "/m/{media_id}/edit", E(404, anon=401, owner=303, admin=303),
             target="private", send=form(title="Mine", description="", tags="matrix", license="",
                                         visibility="private")),
        Case("GET", "/m/{media_id}/status", E(404, anon=303, owner_side=200, admin=200), target="private"),
        Case("POST", "/m/{media_id}/captions", E(404, anon=401, owner=422, admin=422), target="private", send=vtt),
        Case("POST", "/api/v1/media/{media_id}/captions", E(404, anon=401, owner=422, admin=422,
                                                             token_write_owner=422, read_tokens=403),
             target="private", send=vtt),
        Case("DELETE", "/api/v1/media/{media_id}", E(404, anon=401, read_tokens=403, owner=204, admin=204,
                                                      token_write_owner=204), target="fresh_private"),
        Case("PATCH", "/api/v1/media/{media_id}", E(404, anon=401, owner=200, admin=200, token_write_owner=200,
                                                     read_tokens=403), target="private", send=body(title="Mine")),
        Case("GET", "/media/{path:path}", E(404), target="was_public",
             note="the public URL a private item's thumbnail had"),
        Case("GET", "/m/{media_id}/r/{name}", PAGE_OF_OWNER, target="private"),
        Case("GET", "/m/{media_id}/r/{name}", E(200), target="unlisted"),
    ]

# Each capability's own entries: tests/security/area_*.py (see matrix_kit).
AREAS = sorted(path.stem for path in Path(__file__).parent.glob("area_*.py"))
for _area in AREAS:
    CASES += getattr(importlib.import_module(f"tests.security.{_area}"), "CASES", [])


def fill(case: Case, world: World, fresh: int = 0) -> str:
    """The concrete URL for ``case``: its path template with values from the world."""
    if case.path == "/media/{path:path}":
        return world.rendition_paths[case.target]
    if case.path == "/static":
        return "/static/kiln.css"
    if case.path == "/api/docs/assets":
        return "/api/docs/assets/swagger-ui.css"
    media_id = fresh if case.target.startswith("fresh") else world.media.get(case.target, 0)
    values = {"name": "thumbnail", "username": USERNAMES["owner"], "slug": "matrix", "media_id": media_id,
              "token_id": world.spare_token_id, "language": "en", **world.ids}
    values.update({param: world.ids[key] for param, key in case.ids.items()})
    url = case.path.format(**values)
    if case.path in ("/auth/verify", "/auth/reset"):
        url += "?token=bogus"
    return url


def app_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every route the app answers, through included routers; HEAD is GET's twin."""
    for route in app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else None
        items = [(c.path, c.original_route) for c in contexts] if contexts is not None else [(route.path, route)]
        for path, original in items:
            methods = getattr(original, "methods", None) or {"GET"}  # a mount serves GET
            for method in sorted(methods - {"HEAD"}):
                yield method, path


def test_every_route_is_in_the_matrix(world: World) -> None:
    app: FastAPI = world.client.app  # type: ignore[assignment]
    covered = {(c.method, c.path) for c in CASES}
    routes = set(app_routes(app))
    operations = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert operations <= routes
    missing = sorted(routes - covered)
    assert not missing, "routes without an entry in the authorization matrix: " + ", ".join(
        f"{m} {p}" for m, p in missing)
    stale = sorted(covered - routes)
    assert not stale, "matrix entries for routes that do not exist: " + ", ".join(f"{m} {p}" for m, p in stale)


TOKENS = GROUPS["tokens"]
# Routes whose proof is not a login cookie: a signed token in the URL, an HTTP Signature (ActivityPub
# inboxes), or an API token that counts there too (files: a private item's, copies of posts from elsewhere).
NO_LOGIN_WRITES = ("/m/{media_id}/r/{name}", "/remote/files/{attachment_id}", "/unsubscribe", "/inbox",
                   "/u/{username}/inbox")


def expected(case: Case, role: str) -> tuple[int, ...]:
    """API tokens count only on the API and on a private item's files. Elsewhere a token is ignored:
    a token role reads pages as anonymous does, and its form posts fail the CSRF check (403), so a
    read-only token can never reach a form that only asks whether someone is logged in. /unsubscribe asks
    for no login and no form token (its signed token is the proof), nor do the ActivityPub inboxes (an HTTP
    Signature is), so a token changes nothing there."""
    if role not in TOKENS or case.path.startswith("/api/") or case.path in NO_LOGIN_WRITES:
        return case.expect[role]
    if case.method in ("GET", "HEAD"):
        return case.expect["anonymous"]
    return (403,)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matrix(world: World, case: Case) -> None:
    wrong = []
    fresh = 0
    for role in ROLES:
        if case.target.startswith("fresh") and not fresh:  # a new item once the last one was deleted
            fresh = world.fresh_media(private=case.target == "fresh_private")
        response = world.request(role, case.method, fill(case, world, fresh), **case.send(world))
        if response.status_code < 400:
            fresh = 0
        want = expected(case, role)
        if response.status_code not in want:
            wrong.append(f"{role}: got {response.status_code}, expected {'/'.join(map(str, want))}")
        assert response.status_code < 500, f"{case.name} as {role}: {response.text[:300]}"
    assert not wrong, f"{case.name}\n  " + "\n  ".join(wrong)


def test_ids_beyond_the_database_integer_are_not_found(world: World) -> None:
    """An id (of media, a collection, a comment ...) too large for the database column is a missing row
    (404 or 422), never a crash."""
    app: FastAPI = world.client.app  # type: ignore[assignment]
    crashed = []
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        for method, path in sorted(set(app_routes(app))):
            ids = [name for name in re.findall(r"{(\w+)}", path) if name.endswith("_id")]
            if not ids:
                continue
            for big in (2**31, 2**63):  # past PostgreSQL's integer, past SQLite's
                values = {**world.ids, "username": USERNAMES["owner"], "name": "thumbnail", "language": "en",
                          **{name: big for name in ids}}
                url = path.format(**values)
                client.cookies.clear()
                headers = {"Authorization": f"Bearer {world.tokens['token_write_owner']}"}
                status = client.request(method, url, headers=headers, follow_redirects=False).status_code
                # The API answers for the token (422: out of range); pages ignore tokens and send the
                # visitor to log in (303) or refuse the form (403). Never a server error.
                allowed = (404, 422) if path.startswith("/api/") else (303, 403, 404, 422)
                if status not in allowed:
                    crashed.append(f"{method} {url}: {status}")
    assert not crashed, "\n".join(crashed)
