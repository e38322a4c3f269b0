"""Blocks and mutes in the authorization matrix (kiln.web.blocks): every logged-in person may block,
mute and undo either for anyone but themselves; read-only tokens may only list.

The forms and operations act on "tess", a person made here who takes no other part in the matrix, so
the blocks the roles make change no other entry's answer. Blocking oneself is refused (422): the
owner-side cases ask about the owner herself. What a *blocked* person sees of every media and
collection route is walked in tests/security/test_blocked.py.
"""

from __future__ import annotations

from kiln.accounts import services as accounts
from tests.security.conftest import PASSWORD, USERNAMES, World
from tests.security.matrix_kit import GET_LOGGED_IN, Case, E

BLOCKEE = "tess"


def setup(world: World) -> None:
    with world.rt.sessions() as session:
        accounts.create_user(session, BLOCKEE, f"{BLOCKEE}@example.com", PASSWORD, verified=True)
        session.commit()
    world.ids["blockee"] = BLOCKEE
    world.ids["self_name"] = USERNAMES["owner"]


TESS = {"username": "blockee"}
TESS_API = {"name": "blockee"}
SELF_API = {"name": "self_name"}
FORM = E(303, anon=401)
API_WRITE = E(200, anon=401, read_tokens=403)
# Muting the owner changes no answer here (a mute refuses nothing), and each is undone just after.
CASES: list[Case] = [
    Case("GET", "/account/blocks", GET_LOGGED_IN),
    Case("POST", "/u/{username}/block", FORM, ids=TESS, note="blocking tess"),
    Case("POST", "/u/{username}/unblock", FORM, ids=TESS, note="unblocking tess"),
    Case("POST", "/u/{username}/mute", FORM, ids=TESS, note="muting tess"),
    Case("POST", "/u/{username}/unmute", FORM, ids=TESS, note="unmuting tess"),
    Case("POST", "/u/{username}/mute", E(303, anon=401, owner=422), note="muting the owner: not herself"),
    Case("POST", "/u/{username}/unmute", FORM, note="unmuting the owner"),
    Case("PUT", "/api/v1/users/{name}/block", API_WRITE, ids=TESS_API, note="blocking tess"),
    Case("DELETE", "/api/v1/users/{name}/block", API_WRITE, ids=TESS_API, note="unblocking tess"),
    Case("PUT", "/api/v1/users/{name}/mute", API_WRITE, ids=TESS_API, note="muting tess"),
    Case("DELETE", "/api/v1/users/{name}/mute", API_WRITE, ids=TESS_API, note="unmuting tess"),
    Case("PUT", "/api/v1/users/{name}/mute", E(200, anon=401, read_tokens=403, owner=422, token_write_owner=422),
         ids=SELF_API, note="muting the owner: not herself"),
    Case("DELETE", "/api/v1/users/{name}/mute", API_WRITE, ids=SELF_API, note="unmuting the owner"),
    Case("GET", "/api/v1/account/blocks", E(200, anon=401)),
]
