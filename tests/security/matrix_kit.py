"""The authorization matrix's vocabulary: role groups, expected statuses, cases and request bodies.

``test_matrix.py`` holds the cases of the core routes; each ``area_*.py`` module next to it may add
``CASES`` (and a ``setup(world)`` that makes what they need), so a capability owns its own entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.security.conftest import PASSWORD, ROLES, World

# Roles that behave alike. A banned user's login cookie is ignored, so they are anonymous.
GROUPS: dict[str, tuple[str, ...]] = {
    "anon": ("anonymous", "banned"),
    "owner_side": ("owner", "token_read_owner", "token_write_owner"),
    "strangers": ("other", "moderator", "unverified", "token_read_other", "token_write_other"),
    "read_tokens": ("token_read_owner", "token_read_other"),
    "write_tokens": ("token_write_owner", "token_write_other"),
    "tokens": ("token_read_owner", "token_write_owner", "token_read_other", "token_write_other"),
    "logged_in": ("owner", "other", "moderator", "admin", "unverified", "token_read_owner", "token_write_owner",
                  "token_read_other", "token_write_other"),
}


def E(default: int, **by_role: int | tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Expected statuses: ``default`` for everyone, then each keyword (a role or a group) in order."""
    out: dict[str, tuple[int, ...]] = {role: (default,) for role in ROLES}
    for key, status in by_role.items():
        for role in GROUPS.get(key, (key,)):
            assert role in out, key
            out[role] = status if isinstance(status, tuple) else (status,)
    return out


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # the route's template, exactly as the router has it
    expect: dict[str, tuple[int, ...]]
    target: str = "public"  # which media fills {media_id}; "fresh..." = a new item once the last was deleted
    send: Callable[[World], dict[str, Any]] = field(default=lambda w: {})
    note: str = ""
    # Other path parameters: {param: key in world.ids}; a parameter not named here is world.ids[param].
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}" + (f" [{self.note or self.target}]" if "{media_id}" in self.path
                                                or self.note else "")


def png(world: World) -> dict[str, Any]:
    return {"files": {"file": ("m.png", (world.folder / "small.png").read_bytes(), "image/png")}}


def vtt(world: World) -> dict[str, Any]:
    return {"files": {"file": ("c.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n", "text/vtt")},
            "data": {"language": "en"}}


def form(**data: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"data": data}


def body(**data: Any) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"json": data}


PAGE_OF_OWNER = E(404, owner_side=200, admin=200)  # items only the owner and admins may see
GET_LOGGED_IN = E(200, anon=303)  # a page behind login: anonymous visitors are sent to log in
OWNER_PAGE = E(403, anon=303, owner_side=200, admin=200)  # an owner's form: others are refused
OWNER_FORM_POST = E(403, anon=401, owner=303, admin=303)
__all__ = ["PASSWORD", "Case", "E", "GROUPS", "GET_LOGGED_IN", "OWNER_FORM_POST", "OWNER_PAGE", "PAGE_OF_OWNER",
           "body", "form", "png", "vtt"]

