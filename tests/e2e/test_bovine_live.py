"""bovine-herd (an ActivityPub server nobody here wrote, on bovine and Quart) beside a real `kiln serve`,
both on loopback: an account on bovine follows a Kiln account, receives a new Kiln photo's `Create` in
its inbox, and replies to it and likes it; Kiln shows the comment and counts the favourite.

bovine's account is made as its own tools make one (``bovine_admin_store``: an actor with an RSA key
for HTTP Signatures, and a did:key whose Ed25519 secret its client signs its own requests with, Moo-Auth-1),
and the account acts through bovine's client (``BovineClient``) posting to its outbox, as a person's app would.
bovine-herd keeps its default of answering only signed reads of its actors, so every key Kiln fetches
from it is fetched with a signature (Kiln's site actor, kiln.federation.instance) that bovine checks."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import Any

import httpx
import pytest

from tests.e2e.federating import (
    account,
    asgi_on_loopback,
    federating_kiln,
    free_port,
    offline_bovine,
    published_photo,
    wait_for,
)

pytestmark = pytest.mark.slow
# Found without importing it: importing bovine opens a file in the working directory.
if importlib.util.find_spec("bovine_herd") is None:
    pytest.skip("bovine-herd is a test dependency", allow_module_level=True)

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


async def make_bovine_account(db_url: str, domain: str) -> str:
    """An account ``milo`` on bovine, as bovine's tools make one; returns the secret its client signs with."""
    from bovine.crypto import generate_ed25519_private_key, private_key_to_did_key
    from bovine_store import bovine_admin_store

    secret = generate_ed25519_private_key()
    from tortoise import Tortoise

    async with bovine_admin_store(db_url, domain=domain) as store:
        await Tortoise.generate_schemas()  # a new database (the server makes its tables too, on start)
        name = await store.register("milo")
        await store.add_identity_string_to_actor(name, "client", private_key_to_did_key(secret))
    return secret


def test_bovine_follows_kiln_receives_a_photo_replies_and_likes(tmp_path):
    offline_bovine(tmp_path / "bovine")  # before bovine is imported
    import aiohttp
    from bovine import BovineClient
    from bovine_herd import BovineHerd
    from quart import Quart

    bovine_log = tmp_path / "bovine" / "bovine.log"  # what bovine-herd says, for a failure's message
    handler = logging.FileHandler(bovine_log)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    port = free_port()
    bovine_url = f"http://127.0.0.1:{port}"
    db_url = f"sqlite://{tmp_path / 'bovine' / 'herd.sqlite3'}"
    secret = asyncio.run(make_bovine_account(db_url, bovine_url))
    herd = BovineHerd(Quart("bovine"), db_url=db_url)  # its defaults: signed reads only

    with federating_kiln(tmp_path / "kiln") as kiln, asgi_on_loopback(herd, port):
        api = account(kiln, "ada")
        ada = f"{kiln.url}/u/ada"
        log = kiln.log

        async def as_milo(act: Any) -> Any:
            async with aiohttp.ClientSession() as session:
                client = BovineClient(domain=bovine_url, secret=secret)
                await client.init(session=session)
                return await act(client)

        async def follow(client: Any) -> str:
            activity = client.activity_factory.follow(ada).build()
            response = await client.send_to_outbox(activity)
            assert response.status < 300, await response.text()
            return str(client.actor_id)

        async def actor_id(client: Any) -> str:
            return str(client.actor_id)

        milo = asyncio.run(as_milo(actor_id))
        unsigned = httpx.get(milo, headers={"Accept": "application/activity+json"}, timeout=10)
        # bovine-herd wants signed reads ("authorized fetch"): Kiln's fetch of milo's key is signed as the
        # site's actor (/actor), whose key bovine fetches to check it.
        assert unsigned.status_code == 401
        assert asyncio.run(as_milo(follow)) == milo
        followers = "/api/v1/users/ada/followers"
        wait_for(lambda: api.get(followers).json()["items"], "Kiln keeping bovine's follow", 30, log)
        assert [f["url"] for f in api.get(followers).json()["items"]] == [milo]

        item = published_photo(api, tmp_path, "Harbour at dusk")
        note_id = f"{kiln.url}/u/ada/m/{item['id']}"

        async def inbox_has_the_note(client: Any) -> bool:
            async for activity in client.inbox():
                obj = activity.get("object")
                named = obj.get("id") if isinstance(obj, dict) else obj
                if activity.get("type") == "Create" and named == note_id:
                    return True
            return False

        wait_for(lambda: asyncio.run(as_milo(inbox_has_the_note)), "the photo's Create in bovine's inbox", 30, log)

        async def reply_and_like(client: Any) -> None:
            note = client.object_factory.reply({"id": note_id, "attributedTo": ada, "to": [PUBLIC]},
                                               content="<p>Lovely light, from bovine</p>").build()
            for activity in (client.activity_factory.create(note).build(),
                             client.activity_factory.like(note_id).as_public().build()):
                activity.setdefault("to", [])
                if ada not in activity["to"]:
                    activity["to"].append(ada)
                response = await client.send_to_outbox(activity)
                assert response.status < 300, await response.text()

        asyncio.run(as_milo(reply_and_like))
        comments = f"/api/v1/media/{item['id']}/comments"
        comment = wait_for(lambda: next(iter(api.get(comments).json()["items"]), None), "the reply as a comment",
                           30, log)
        assert comment["remote"] is True and comment["author"] == "@milo@127.0.0.1", comment
        assert "Lovely light, from bovine" in comment["body"] and comment["author_url"] == milo
        wait_for(lambda: api.get(f"/api/v1/media/{item['id']}").json()["favourites"] == 1, "the like counted", 30, log)
        page = api.get(f"/u/ada/m/{item['id']}").text
        assert "Lovely light, from bovine" in page and "@milo@127.0.0.1" in page
