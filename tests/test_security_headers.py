"""App pages send a strict CSP and the other hardening headers; every state-changing route refuses
cookie-authenticated requests without a CSRF token or from another site's page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from kiln.app import create_app
from kiln.config import BackendSettings, StorageSettings
from kiln.web.security import content_security_policy, media_origins
from tests.conftest import BASE_URL, csrf, form_post, register

SRC = Path(__file__).resolve().parents[1] / "src" / "kiln"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def test_app_pages_send_a_strict_policy_and_the_other_headers(client, settings):
    for path in ("/", "/auth/login", "/no-such-page"):
        resp = client.get(path)
        csp = directives(resp.headers["content-security-policy"])
        assert csp["default-src"] == ["'self'"]
        assert csp["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
        assert csp["style-src"] == ["'self'", "'sha256-PXtZZkJMMyc18o/DN1ZEFOJ2qEGq95IQbVaJFMOXOb0='"]
        assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
        assert csp["frame-ancestors"] == ["'none'"] and csp["form-action"] == ["'self'"]
        assert not any("unsafe-inline" in v or v == "*" for values in csp.values() for v in values)
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "same-origin"
        assert "camera=()" in resp.headers["permissions-policy"]
        assert "strict-transport-security" not in resp.headers  # plain HTTP


def test_hsts_only_over_tls_or_from_a_trusted_proxy(rt, settings):
    with TestClient(create_app(settings, rt), base_url="https://testserver") as tls:
        assert tls.get("/").headers["strict-transport-security"].startswith("max-age=31536000")
    with TestClient(create_app(settings, rt), base_url=BASE_URL) as plain:
        # Anyone can send the header; only a configured proxy is believed.
        assert "strict-transport-security" not in plain.get("/", headers={"X-Forwarded-Proto": "https"}).headers
    trusting = settings.model_copy(update={"security": settings.security.model_copy(
        update={"trusted_proxies": ["testclient"]})})
    with TestClient(create_app(trusting, rt), base_url=BASE_URL) as proxied:
        assert "strict-transport-security" in proxied.get("/", headers={"X-Forwarded-Proto": "https"}).headers


def test_media_origins_come_from_the_storage_settings(settings):
    storage = StorageSettings(backends={
        "local": BackendSettings(),
        "cdn": BackendSettings(type="s3", public_url="https://media.example.org/kiln/"),
        "bucket": BackendSettings(type="s3", endpoint_url="https://s3.example.net:9000", prefix="site"),
        "swift": BackendSettings(type="swift", auth_url="https://swift.example.com/auth/v1.0"),
    })
    configured = settings.model_copy(update={"storage": storage, "static_base_url": "https://static.example.org/s"})
    assert media_origins(configured) == ["https://media.example.org", "https://s3.example.net:9000",
                                         "https://site-public.s3.example.net:9000", "https://swift.example.com"]
    csp = directives(content_security_policy(configured))
    for name in ("img-src", "media-src", "connect-src"):
        assert {"https://media.example.org", "https://s3.example.net:9000"} <= set(csp[name])
    assert "https://static.example.org" in csp["script-src"]
    assert "https://media.example.org" not in csp["script-src"]  # user bytes never count as script
    assert media_origins(settings) == []  # local only: everything is 'self'


def test_templates_have_no_inline_script_handlers_or_styles():
    """The CSP forbids these; one left behind is a broken button in production. A data block
    (`<script type="application/json">`) is never run, so the CSP leaves it alone."""
    found = []
    for path in [*SRC.glob("web/templates/**/*.html"), *SRC.glob("mediatypes/**/*.html")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if (re.search(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", line)
                    or re.search(r"\son[a-z]+\s*=", line) or re.search(r"\sstyle\s*=", line) or "javascript:" in line):
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert found == []


def unsafe_routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Every (method, path) that changes state, through included routers too."""
    routes = []
    for route in iter_route_contexts(app.routes):
        for method in sorted(set(getattr(route, "methods", None) or ()) & UNSAFE):
            routes.append((method, re.sub(r"\{[^}]+\}", "1", route.path)))
    return routes


@pytest.fixture
def logged_in(client, settings):  # type: ignore[no-untyped-def]
    register(client, settings, "alice")
    token = csrf(client, "/")
    return client, token


def test_every_state_changing_route_refuses_missing_token_and_foreign_origin(logged_in):
    client, token = logged_in
    routes = unsafe_routes(client.app)
    assert len(routes) >= 20 and ("POST", "/upload") in routes
    json = {"Accept": "application/json"}
    for method, path in routes:
        if (method, path) == ("POST", "/unsubscribe"):  # RFC 8058 one-click: the signed token is the proof
            for origin in ({}, {"Origin": "https://mail.example"}):
                bad = client.request(method, path + "?token=forged", headers={**json, **origin})
                assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_unsubscribe"
            continue
        if path in ("/inbox", "/u/1/inbox"):  # ActivityPub: an HTTP Signature is the proof, not a cookie
            for origin in ({}, {"Origin": "https://social.example"}):
                bad = client.request(method, path.replace("/1/", "/alice/"), headers={**json, **origin},
                                     json={"type": "Follow", "actor": "https://social.example/users/x"})
                assert bad.status_code == 401 and bad.json()["error"]["code"] == "unsigned", (path, bad.text)
            continue
        missing = client.request(method, path, headers=json, data={"x": "1"})
        assert missing.status_code == 403, (method, path, missing.status_code, missing.text[:200])
        assert missing.json()["error"]["code"] == "csrf_failed", (method, path)
        foreign = client.request(method, path, data={"csrf_token": token},
                                 headers={**json, "X-CSRF-Token": token, "Origin": "https://evil.example"})
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "csrf_failed", (method, path)
        # The control: with the token and no foreign origin the CSRF check lets it through.
        own = client.request(method, path, data={"csrf_token": token}, headers={**json, "X-CSRF-Token": token})
        assert own.status_code < 500, (method, path, own.text[:200])
        assert not (own.status_code == 403 and own.json()["error"]["code"] == "csrf_failed"), (method, path)
        if path == "/auth/logout" or path.startswith("/account/password"):
            register_again(client)


def register_again(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/auth/login", data={"username": "alice", "password": "correct horse",
                                     "csrf_token": csrf(client)})


def test_api_token_requests_need_no_csrf_token(client, settings):
    register(client, settings, "alice")
    page = form_post(client, "/account/tokens", {"name": "t", "scope": "write"}, page="/account")
    token = re.search(r"kiln_[\w-]+", page.text).group(0)
    bare = TestClient(client.app, base_url=BASE_URL)
    resp = bare.post("/api/v1/media", headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"},
                     files={"file": ("a.txt", b"hello", "text/plain")})
    assert resp.status_code != 403, resp.text


def test_head_answers_like_get_without_a_body(client, rt, images):
    """Feeds, files, pages and the API answer HEAD with GET's status and headers, and no body."""
    from tests.test_api import make_user, token_for

    make_user(rt)
    with images["plain"].open("rb") as fh:
        item = client.post("/api/v1/media", headers=token_for(client), files={"file": ("p.jpg", fh)}).json()
    thumb = item["renditions"]["thumbnail"]["url"].removeprefix("http://testserver")
    for path in ("/", "/feeds/atom", f"/u/alice/m/{item['id']}", f"/api/v1/media/{item['id']}", thumb,
                 "/static/kiln.css", "/u/nobody"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        for name in ("content-type", "etag", "cache-control"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
