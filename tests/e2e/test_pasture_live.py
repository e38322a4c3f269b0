"""fediverse-pasture (the Fediverse pasture project's test tools, nobody here wrote them) against a real
`kiln serve` on loopback:

- its actor verifier (``ActorVerifier``: the tool behind pasture's "verify actor" page) fetches Kiln's
  actor as each of its test actors, WebFinger included, and posts a signed activity to its inbox;
- a pasture actor fetches a published item's Note (signed GET) and bovine's parser reads it;
- pasture's activity runner (``ActivitySender`` + ``ActivityRunner``) sends a reply to that item,
  which Kiln shows as a comment;
- a pasture actor whose inbox takes only signed posts follows Kiln's account, and pasture verifies
  the signature of the ``Accept`` Kiln sends it (with bovine's HTTP Signatures, fetching Kiln's key).

Pasture's actors are served by pasture's own ``BlueprintForActors`` (a Quart app) on 127.0.0.1, so
Kiln fetches their keys from pasture itself."""

from __future__ import annotations

import importlib.util
import secrets
from typing import Any

import pytest

from tests.e2e.federating import (
    account,
    asgi_on_loopback,
    federating_kiln,
    free_port,
    offline_bovine,
    published_photo,
    run_async,
    wait_for,
)

pytestmark = pytest.mark.slow
# Found without importing it: importing bovine opens a file in the working directory.
if importlib.util.find_spec("fediverse_pasture") is None:
    pytest.skip("fediverse-pasture is a test dependency", allow_module_level=True)

AP = "application/activity+json"


@pytest.fixture(scope="module")
def rig(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Kiln with one account and a published photo; pasture's actors on a port of their own."""
    folder = tmp_path_factory.mktemp("pasture")
    offline_bovine(folder / "bovine")
    from fediverse_pasture.data_provider import DataProvider
    from fediverse_pasture.server import BlueprintForActors
    from quart import Quart

    with federating_kiln(folder / "kiln") as kiln:
        api = account(kiln, "ada")
        item = published_photo(api, folder, "Harbour at dusk")
        data = DataProvider.generate()
        actors = [data.one_actor, *data.possible_actors]
        received: list[dict[str, Any]] = []

        async def keep(activity: dict[str, Any]) -> None:  # only after pasture verified the signature
            received.append(activity)

        app = Quart("pasture")
        app.register_blueprint(BlueprintForActors(actors, on_inbox=keep).blueprint)
        port = free_port()
        with asgi_on_loopback(app, port) as pasture_url:
            yield {"kiln": kiln, "api": api, "item": item, "actors": actors, "domain": f"127.0.0.1:{port}",
                   "pasture": pasture_url, "received": received}


def pasture_actor(rig: dict[str, Any], name: str = "actor") -> tuple[Any, Any]:
    from fediverse_pasture.data_provider import bovine_actor_for_actor_data

    data = next(a for a in rig["actors"] if a.actor_name == name)
    return bovine_actor_for_actor_data(f"{rig['pasture']}/{name}", data)


def unknown_terms(data: Any) -> list[str]:
    """What a JSON-LD reader could not name (bovine writes such a term or type as "_:term")."""
    if isinstance(data, dict):
        return [k for k in data if k.startswith("_:")] + [t for v in data.values() for t in unknown_terms(v)]
    if isinstance(data, list):
        return [t for v in data for t in unknown_terms(v)]
    return [data] if isinstance(data, str) and data.startswith("_:") else []


def test_pastures_actor_verifier_fetches_kilns_actor_and_posts_to_its_inbox(rig):
    from fediverse_pasture.server.verify_actor import ActorVerifier
    from fediverse_pasture.types import Message

    message = Message()
    verifier = ActorVerifier(actor_list=rig["actors"], remote_uri=f"{rig['kiln'].url}/u/ada", domain=rig["domain"],
                             message=message, timeout=20)
    result = run_async(verifier.verify)
    log = "\n".join(map(str, message.steps)) + "\n" + rig["kiln"].log.read_text()[-3000:]
    assert result["webfinger"] is True, log  # acct:ada@host finds the same actor
    # Every actor, signing or not, fetches the actor and finds its inbox.
    assert all(result[name]["get_actor"] for name in ("alice", "bob", "claire", "dean", "emily", "frank")), result
    # Signed posts are accepted, also from actors whose server wants a signed fetch of their key (claire,
    # frank: Kiln's fetch is signed as its site actor, which pasture checks) ...
    assert all(result[name]["post_inbox"] for name in ("bob", "claire", "emily", "frank")), (result, log)
    # ... and unsigned posts (alice, dean) are refused: every inbox needs a signature.
    assert not any(result[name]["post_inbox"] for name in ("alice", "dean")), result


def test_a_pasture_actor_reads_kilns_actor_and_note_with_bovines_parser(rig):
    import aiohttp
    from bovine.clients import lookup_uri_with_webfinger
    from bovine.parse import Actor, Object

    kiln, item = rig["kiln"], rig["item"]
    note_url = f"{kiln.url}/u/ada/m/{item['id']}"

    async def fetch() -> tuple[dict[str, Any], dict[str, Any], str | None]:
        bovine_actor, _ = pasture_actor(rig)
        async with aiohttp.ClientSession() as session:
            await bovine_actor.init(session=session)
            actor_doc = await bovine_actor.get(f"{kiln.url}/u/ada")
            note_doc = await bovine_actor.get(note_url)
            # The acct: address the actor's preferredUsername and host make, looked up over plain http
            # (bovine's own Actor.validate_acct_uri asks https only).
            acct = Actor(actor_doc).unvalidated_acct_uri
            found, _ = await lookup_uri_with_webfinger(session, acct, kiln.url)
            return actor_doc, note_doc, found

    actor_doc, note_doc, found = run_async(fetch)
    actor = Actor(actor_doc)
    assert actor.id == f"{kiln.url}/u/ada" and found == actor.id
    assert actor.unvalidated_acct_uri == f"acct:ada@{kiln.url.split('//')[1]}"
    assert actor.publicKeyPem(f"{kiln.url}/u/ada#main-key").startswith("-----BEGIN PUBLIC KEY-----")
    note = Object(note_doc)
    assert note.identifier == note_url and note.attributed_to_id == actor.id
    assert note_doc["type"] == "Note" and "Harbour at dusk" in note_doc["content"]
    # Read as JSON-LD: a Hashtag is one only when the Note's context names the term (it was not, at first).
    assert [t["name"] for t in note.tags if t.get("type") == "Hashtag"] == ["#harbour"], note.data
    assert not unknown_terms(note.data) and not unknown_terms(actor.data), (note.data, actor.data)
    (picture,) = note_doc["attachment"]
    assert picture["type"] == "Image" and picture["url"].startswith(kiln.url)


def test_pastures_activity_runner_sends_a_reply_kiln_shows(rig):
    import aiohttp
    from fediverse_pasture.runner import ActivityRunner, ActivitySender
    from fediverse_pasture.types import ApplicationAdapterForLastActivity

    kiln, api, item = rig["kiln"], rig["api"], rig["item"]
    words = f"Lovely light {secrets.token_hex(4)}"
    comments_url = f"/api/v1/media/{item['id']}/comments"

    async def fetch_comment(_object_id: str) -> dict[str, Any] | None:
        return next((c for c in api.get(comments_url).json()["items"] if words in c["body"]), None)

    async def run() -> dict[str, Any] | None:
        bovine_actor, actor_object = pasture_actor(rig)
        async with aiohttp.ClientSession() as session:
            await bovine_actor.init(session=session)
            sender = ActivitySender.for_actor(bovine_actor, actor_object)
            kiln_app = ApplicationAdapterForLastActivity(actor_uri=f"{kiln.url}/u/ada", application_name="kiln",
                                                         fetch_activity=fetch_comment)
            runner = ActivityRunner(sender, [kiln_app], wait_time=0.3, tries=60)
            note_url = f"{kiln.url}/u/ada/m/{item['id']}"
            result = await runner.run_for_modifier(lambda note: {**note, "content": f"<p>{words}</p>",
                                                                 "inReplyTo": note_url})
            return result

    result = run_async(run)
    assert result is not None and result["kiln"] is not None, kiln.log.read_text()[-4000:]
    comment = result["kiln"]
    assert comment["remote"] is True and comment["author"].startswith("@actor@127.0.0.1"), comment
    page = api.get(f"/u/ada/m/{item['id']}").text
    assert words in page and "@actor@127.0.0.1" in page
    wait_for(lambda: api.get(f"/api/v1/media/{item['id']}").json()["comments"] == 1, "the comment counted")


def test_pasture_verifies_the_signature_of_kilns_accept(rig):
    import aiohttp

    kiln = rig["kiln"]
    follow_id = f"{rig['pasture']}/bob/follows/{secrets.token_hex(4)}"

    async def follow() -> int:
        bovine_actor, _ = pasture_actor(rig, "bob")  # bob's inbox refuses unsigned posts
        async with aiohttp.ClientSession() as session:
            await bovine_actor.init(session=session)
            answer = await bovine_actor.post(f"{kiln.url}/u/ada/inbox", {
                "@context": "https://www.w3.org/ns/activitystreams", "id": follow_id, "type": "Follow",
                "actor": f"{rig['pasture']}/bob", "object": f"{kiln.url}/u/ada"})
            return int(answer.status)

    assert run_async(follow) == 202

    def accepted() -> dict[str, Any] | None:
        return next((a for a in rig["received"] if a.get("type") == "Accept" and follow_id in (
            a.get("object"), (a.get("object") or {}).get("id") if isinstance(a.get("object"), dict) else None)), None)

    accept = wait_for(accepted, "Kiln's Accept verified by pasture", 30, kiln.log)
    assert accept["actor"] == f"{kiln.url}/u/ada"
