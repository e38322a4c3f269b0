"""The app's routes as FastAPI tries them: one by one, in the order the routers were included. Kiln
orders its routers for speed (the pages read most come first, kiln.app), which is only safe while no
path could be answered by the routes of two different modules: then the order picks nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient


def _leaves(router: Any) -> Iterator[Any]:
    for route in router.routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaves(inner)
        elif getattr(route, "endpoint", None) is not None:
            yield route


def _could_share_a_path(a: str, b: str) -> bool:
    """Whether some path matches both templates: segment by segment, a parameter matches anything;
    a ``{name:path}`` parameter matches the rest of the path."""
    left, right = a.strip("/").split("/"), b.strip("/").split("/")
    for x, y in zip(left, right, strict=False):
        if x.endswith(":path}") or y.endswith(":path}"):
            return True
        if not (x.startswith("{") or y.startswith("{") or x == y):
            return False
    return len(left) == len(right)


def test_no_path_is_answered_by_the_routes_of_two_modules(client: TestClient) -> None:
    routes = list(_leaves(client.app.router))  # type: ignore[attr-defined]
    assert len(routes) > 150  # the routers were walked
    shared = sorted(
        f"{a.endpoint.__module__}: {sorted(a.methods & b.methods)} {a.path} / {b.endpoint.__module__}: {b.path}"
        for i, a in enumerate(routes) for b in routes[i + 1:]
        if a.endpoint.__module__ != b.endpoint.__module__ and a.methods & b.methods
        and _could_share_a_path(a.path, b.path))
    assert not shared, "\n".join(shared)
