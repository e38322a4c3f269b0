"""Every parameter of every route, HTML pages included, with hostile values: NUL characters,
numbers past every integer type, non-ASCII digits, empty and huge strings, traversal and control
characters. Each must be answered with a 4xx and a sentence (or a normal answer), never a 5xx.

The parameters come from the routes themselves (path, query, form fields and JSON bodies, through
their dependencies), so a new route or a new parameter is covered without editing this file.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from tests.conftest import BASE_URL, PG_URL
from tests.security.conftest import USERNAMES, World

pytestmark = pytest.mark.db

HOSTILE = ("a\x00b", "1-2147483648", "99999999999999999999", "9223372036854775808-1", "١٢٣-٤", "-1", "",
           "x" * 3000, "../../etc/passwd", "\x07\x1b[31m\u202e", "1e309")
# The PostgreSQL run sends the values whose fate can differ there (NUL, which its text refuses; numbers past
# its integer types; lengths past its varchar limits; what casts and parses), not the traversal and the
# control characters, which meet the same code on either database (the SQLite run sends every value).
ON_THIS_DATABASE = HOSTILE if PG_URL is None else tuple(v for v in HOSTILE if v not in ("../../etc/passwd",
                                                                                       "\x07\x1b[31m\u202e"))
ROLES = ("anonymous", "owner", "token_write_owner")


def _fields(route: Any) -> tuple[list[str], list[str], list[str], dict[str, Any]]:
    """Path, query and form parameter names, and a JSON body template, of a route and its dependencies."""
    def walk(dependant: Dependant) -> Iterator[Dependant]:
        yield dependant
        for sub in dependant.dependencies:
            yield from walk(sub)

    parts = list(walk(route.dependant))
    path = sorted({p.alias for d in parts for p in d.path_params})
    query = sorted({p.alias for d in parts for p in d.query_params})
    form: list[str] = []
    body: dict[str, Any] = {}
    for param in (p for d in parts for p in d.body_params):
        annotation = param.field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            body = {name: "x" for name in annotation.model_fields}
        else:
            form.append(param.alias)
    return path, query, form, body


def _valid(name: str, world: World) -> str:
    return {"username": USERNAMES["owner"], "media_id": str(world.media["public"]), "slug": "matrix",
            "name": "thumbnail", "token_id": str(world.spare_token_id), "path": "x.jpg",
            "collection_id": str(world.ids["collection_id"]), "link_id": str(world.ids["link_id"]),
            "notification_id": str(world.ids["notification_id"]), "collection": "followers"}.get(name, "x")


def _routes(app: FastAPI) -> Iterator[tuple[str, Any]]:
    """(path template, route) of every API route, through included routers."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route.path, route
        elif hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                if isinstance(context.original_route, APIRoute):
                    yield context.path, context


def _requests(app: FastAPI, world: World) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for template, route in _routes(app):
        path_names, query, form, body = _fields(route)
        for method in sorted(set(route.methods) - {"HEAD"}):
            for value in ON_THIS_DATABASE:
                for target in path_names:  # one path parameter hostile at a time, the others valid
                    url = template
                    for name in path_names:
                        url = url.replace("{" + name + "}", quote(value, safe="") if name == target
                                          else _valid(name, world))
                    yield method, url, {}
                base = template
                for name in path_names:
                    base = base.replace("{" + name + "}", _valid(name, world))
                for name in query:  # one at a time: a hostile value must reach the code that reads it
                    yield method, base, {"params": {name: value}}
                if form and method != "GET":
                    yield method, base, {"data": {name: value for name in form}}
                if body and method != "GET":
                    yield method, base, {"json": {name: value for name in body}}


def test_no_parameter_of_any_route_gives_a_server_error(world: World) -> None:
    app: FastAPI = world.client.app  # type: ignore[assignment]
    crashed: list[str] = []
    checked = 0
    headers = {role: world.headers(role, writes=True) for role in ROLES}  # one login per role
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        for method, url, kwargs in _requests(app, world):
            for role in ROLES:
                if role.startswith("token") and not url.startswith("/api/"):
                    continue
                client.cookies.clear()
                response = client.request(method, url, headers=headers[role], follow_redirects=False, **kwargs)
                checked += 1
                if response.status_code >= 500:
                    crashed.append(f"{role} {method} {url[:80]!r} {str(kwargs)[:80]}: {response.status_code}")
    assert checked > 1000, checked  # the routes were found
    assert not crashed, f"{len(crashed)} server errors:\n" + "\n".join(crashed[:40])


def test_oembed_parameters_with_hostile_values_next_to_a_good_address(world: World) -> None:
    """The generic walk above sends one hostile parameter at a time, so ``maxwidth`` and ``format`` never
    meet a real item there: here each meets the address of a public item (kiln.web.oembed), and the
    address itself gets hostile schemes, hosts and paths. A 4xx with a JSON sentence, or a normal answer."""
    page = f"{BASE_URL}/u/{USERNAMES['owner']}/m/{world.media['public']}"
    public, private = world.media["public"], world.media["private"]
    addresses = (*HOSTILE, f"{page}\x00", f"{page}/../../../etc/passwd", f"{page}?share=x" + "y" * 3000,
                 f"http://[::1]:99999/u/x/m/{public}", "file:///etc/passwd", f"//testserver/m/{public}/embed",
                 f"{BASE_URL}/m/{private}/embed", f"HTTP://TESTSERVER/u/{USERNAMES['owner']}/m/1e309")
    sizes = [{"url": page, name: value} for name in ("maxwidth", "maxheight", "format") for value in HOSTILE]
    wrong = []
    with TestClient(world.client.app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        for params in [{"url": address} for address in addresses] + sizes:
            answer = client.get("/oembed", params=params)
            if answer.status_code >= 500 or (answer.status_code >= 400 and not answer.json()["error"]["message"]):
                wrong.append(f"{str(params)[:100]}: {answer.status_code}")
    assert not wrong, "\n".join(wrong)


def _hostile_activities() -> list[tuple[str, bytes, dict[str, str]]]:
    """Bodies and headers other servers could post to an inbox: broken JSON, wrong shapes, huge and
    deeply nested documents, NUL and control characters, scripts, forged or garbled signatures."""
    follow = {"type": "Follow", "actor": "https://remote.example/actor", "object": f"{BASE_URL}/u/olivia"}
    signature = ('keyId="{key}",algorithm="rsa-sha256",headers="(request-target) host date digest",'
                 'signature="AAAA"')
    out: list[tuple[str, bytes, dict[str, str]]] = [
        ("empty", b"", {}), ("not JSON", b"{nope", {}), ("not UTF-8", b"\xff\xfe{}", {}),
        ("a number", b"1e309", {}), ("a list", b"[]", {}), ("null", b"null", {}),
        ("deeply nested", b"[" * 50_000 + b"]" * 50_000, {}),
        ("nested object", json.dumps(functools.reduce(lambda inner, _: {"a": inner}, range(900), {})).encode(), {}),
        ("huge", json.dumps({**follow, "pad": "x" * (2 * 1024**2)}).encode(), {}),
    ]
    for value in HOSTILE:
        for field in ("type", "actor", "id", "object"):
            out.append((f"{field}={value[:20]!r}", json.dumps({**follow, field: value}).encode(), {}))
    for field, value in (("type", 123), ("actor", ["a", "b"]), ("id", {"x": 1}), ("actor", {"id": None}),
                         ("object", "<script>alert(1)</script>")):
        out.append((f"{field} of the wrong type", json.dumps({**follow, field: value}).encode(), {}))
    for key in ("http://127.0.0.1:1/actor#key", "http://[::1]/a", "file:///etc/passwd", "", "x" * 3000,
                "https://user:pw@10.0.0.1/a", "\x00"):
        out.append((f"keyId {key[:20]!r}", json.dumps(follow).encode(),
                    {"Signature": signature.format(key=key), "Date": "Mon, 07 Dec 2026 12:00:00 GMT",
                     "Digest": "SHA-256=AAAA"}))
    key = "http://127.0.0.1:1/actor#key"
    for param in ('created=' + "9" * 400, 'expires=' + "9" * 400 + ".", "expires=99999999999999999999",
                  "created=99999999999999999999", "created=.", "expires=1e9"):
        out.append((f"Signature {param[:20]!r}", json.dumps(follow).encode(),
                    {"Signature": signature.format(key=key).replace('headers=', f"{param},headers="),
                     "Date": "Mon, 07 Dec 2026 12:00:00 GMT", "Digest": "SHA-256=AAAA"}))
    for date in ("Mon, 07 Dec 99999999999999 12:00:00 GMT", "07 Dec 2026 12:00:00 +9999999999999999999",
                 "Mon, 99 Dec 2026 12:00:00 GMT", "x" * 5000, "\x00"):
        out.append((f"Date {date[:20]!r}", json.dumps(follow).encode(),
                    {"Signature": signature.format(key=key), "Date": date, "Digest": "SHA-256=AAAA"}))
    for garbled in ('keyId="a",signature="!!!"', "keyId", 'keyId="a' + '"' * 5000, "Signature " * 1000, "\x07"):
        out.append((f"Signature {garbled[:20]!r}", json.dumps(follow).encode(), {"Signature": garbled}))
    out.append(("Signature-Input garbled", json.dumps(follow).encode(),
                {"Signature-Input": 'sig1=("@method";keyid="x"', "Signature": "sig1=:AAAA:"}))
    out.append(("Signature-Input twice", json.dumps(follow).encode(),
                {"Signature-Input": 'a=("@method");keyid="x", b=("@method");keyid="y"',
                 "Signature": "a=:AA==:, b=:AA==:"}))
    return out


def test_hostile_activities_posted_to_the_inboxes_get_a_4xx_and_a_sentence(world: World) -> None:
    wrong = []
    with TestClient(world.client.app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        for name, body, headers in _hostile_activities():
            for path in ("/inbox", f"/u/{USERNAMES['owner']}/inbox"):
                answer = client.post(path, content=body, headers={"Content-Type": "application/activity+json",
                                                                  **headers})
                if not 400 <= answer.status_code < 500 or not answer.text:
                    wrong.append(f"{path} {name}: {answer.status_code} {answer.text[:120]}")
    assert not wrong, "\n".join(wrong)
