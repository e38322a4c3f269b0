"""Helpers for browser tests that need people and items fast: an account signed up in the browser,
an API client with its token, small generated photos, uploads through the API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.e2e.test_kinds_browser import PASSWORD, sign_up


def api_user(page, server, username: str) -> httpx.Client:  # type: ignore[no-untyped-def]
    """Sign ``username`` up in the browser (the page stays logged in) and return an API client
    holding a write token of theirs."""
    sign_up(page, server, username)
    resp = httpx.post(server.url + "/api/v1/tokens", json={"username": username, "password": PASSWORD}, timeout=30)
    resp.raise_for_status()
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {resp.json()['token']}"},
                        timeout=60)


def photo(folder: Path, name: str, colour: tuple[int, int, int], size: tuple[int, int] = (1600, 1000)) -> Path:
    """A JPEG of one colour with a white band, large enough to have a medium smaller than itself."""
    image = Image.new("RGB", size, colour)
    image.paste((255, 255, 255), (0, size[1] // 2 - 20, size[0], size[1] // 2 + 20))
    path = folder / name
    image.save(path, quality=85)
    return path


def upload(api: httpx.Client, path: Path, **fields: str) -> dict[str, Any]:
    with path.open("rb") as fh:
        resp = api.post("/api/v1/media", files={"file": (path.name, fh, "application/octet-stream")}, data=fields)
    assert resp.status_code == 202, resp.text
    return resp.json()  # type: ignore[no-any-return]


def wait_processed(api: httpx.Client, ids: list[int], limit: float = 120.0) -> list[dict[str, Any]]:
    """The items, once every one has finished processing (in the order of ``ids``)."""
    deadline = time.monotonic() + limit
    while True:
        items = [api.get(f"/api/v1/media/{i}").json() for i in ids]
        if all(item["state"] == "processed" for item in items):
            return items
        assert not [i for i in items if i["state"] == "failed"], items
        assert time.monotonic() < deadline, [(i["id"], i["state"]) for i in items]
        time.sleep(0.3)
