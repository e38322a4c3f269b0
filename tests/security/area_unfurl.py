"""Links that unfurl in the authorization matrix (kiln.web.unfurl, kiln.web.oembed): the embed page and
oEmbed answer alike for every role, logged in or not: they describe what anybody may see (public and
unlisted items). A private or unfinished item is missing for everyone, its owner and the admins
included, so nothing of it reaches a page on another site. (Someone the owner blocked gets 404 for all
of it: tests/security/test_blocked.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.conftest import BASE_URL
from tests.security.conftest import USERNAMES, World
from tests.security.matrix_kit import Case, E


def described(target: str) -> Callable[[World], dict[str, Any]]:
    """oEmbed asked about the page of ``target`` (one of the world's items)."""
    return lambda w: {"params": {"url": f"{BASE_URL}/u/{USERNAMES['owner']}/m/{w.media[target]}"}}


CASES: list[Case] = [
    Case("GET", "/m/{media_id}/embed", E(200)),
    Case("GET", "/m/{media_id}/embed", E(200), target="unlisted"),
    Case("GET", "/m/{media_id}/embed", E(404), target="private", note="not even for its owner"),
    Case("GET", "/m/{media_id}/embed", E(404), target="failed"),
    Case("GET", "/oembed", E(200), send=described("public"), note="a public item"),
    Case("GET", "/oembed", E(200), send=described("unlisted"), note="an unlisted item"),
    Case("GET", "/oembed", E(404), send=described("private"), note="a private item: not even for its owner"),
    Case("GET", "/oembed", E(404), send=described("failed"), note="an item that failed processing"),
]
