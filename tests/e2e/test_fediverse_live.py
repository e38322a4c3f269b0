"""Kiln against ActivityPub software nobody here wrote, and what people see of federation in a browser,
on one real `kiln serve` that federates on loopback (one server for the module: each part has accounts
of its own on it).

fediverse-pasture (the Fediverse pasture project's test tools):

- its actor verifier (``ActorVerifier``: the tool behind pasture's "verify actor" page) fetches Kiln's
  actor as each of its test actors, WebFinger included, and posts a signed activity to its inbox;
- a pasture actor fetches a published item's Note (signed GET) and bovine's parser reads it;
- pasture's activity runner (``ActivitySender`` + ``ActivityRunner``) sends a reply to that item,
  which Kiln shows as a comment;
- a pasture actor whose inbox takes only signed posts follows Kiln's account, and pasture verifies
  the signature of the ``Accept`` Kiln sends it (with bovine's HTTP Signatures, fetching Kiln's key).

Pasture's actors are served by pasture's own ``BlueprintForActors`` (a Quart app) on 127.0.0.1, so
Kiln fetches their keys from pasture itself.

bovine-herd (an ActivityPub server on bovine and Quart): an account on bovine follows a Kiln account,
receives a new Kiln photo's ``Create`` in its inbox, and replies to it and likes it; Kiln shows the
comment and counts the favourite. bovine's account is made as its own tools make one
(``bovine_admin_store``: an actor with an RSA key for HTTP Signatures, and a did:key whose Ed25519 secret
its client signs its own requests with, Moo-Auth-1), and the account acts through bovine's client
(``BovineClient``) posting to its outbox, as a person's app would. bovine-herd keeps its default of
answering only signed reads of its actors, so every key Kiln fetches from it is fetched with a
signature (Kiln's site actor, kiln.federation.instance) that bovine checks.

In Chromium: the profile's fediverse handle selects whole at one click (to copy); beside a real remote
reply (a peer on 127.0.0.1, signing with apsig) a logged-in person blocks its author in one step,
without JavaScript, on a 390 px phone, and is brought back to the reply with a message; the blocks page
and the deliveries page pass axe (tests/e2e/test_a11y_browser.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import secrets
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.federating import (
    PASSWORD,
    account,
    asgi_on_loopback,
    federating_kiln,
    free_port,
    kiln,
    offline_bovine,
    published_photo,
    run_async,
    wait_for,
)
from tests.federation import peer as peer_kit

pytestmark = pytest.mark.slow
# Found without importing them: importing bovine opens a file in the working directory.
if importlib.util.find_spec("fediverse_pasture") is None or importlib.util.find_spec("bovine_herd") is None:
    pytest.skip("fediverse-pasture and bovine-herd are test dependencies", allow_module_level=True)

AP = "application/activity+json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
PHONE = {"width": 390, "height": 844}
in_a_browser = pytest.mark.browser


@pytest.fixture(scope="module")
def rig(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Kiln with ada (an admin) and two published photos, the second with a reply from rita (a test
    peer on another port); pasture's actors on a port of their own."""
    folder = tmp_path_factory.mktemp("fediverse")
    offline_bovine(folder / "bovine")
    from fediverse_pasture.data_provider import DataProvider
    from fediverse_pasture.server import BlueprintForActors
    from quart import Quart

    with federating_kiln(folder / "kiln") as server, peer_kit.serve() as rita:
        api = account(server, "ada")
        kiln(server, "makeadmin", "ada")
        item = published_photo(api, folder, "Harbour at dusk")
        replied = published_photo(api, folder, "Boats at noon")
        note = f"{server.url}/u/ada/m/{replied['id']}"
        reply = {"id": f"{rita.base}/notes/1/activity", "type": "Create", "actor": rita.actor_id,
                 "object": {"id": f"{rita.base}/notes/1", "type": "Note", "attributedTo": rita.actor_id,
                            "inReplyTo": note, "content": "<p>Lovely light!</p>", "to": [PUBLIC]}}
        body, headers = rita.signed(f"{server.url}/inbox", reply)
        answer = httpx.post(f"{server.url}/inbox", content=body, headers=headers, timeout=30)
        assert answer.status_code == 202, answer.text
        wait_for(lambda: api.get(f"/api/v1/media/{replied['id']}").json()["comments"] == 1, "rita's reply kept",
                 30, server.log)

        data = DataProvider.generate()
        actors = [data.one_actor, *data.possible_actors]
        received: list[dict[str, Any]] = []

        async def keep(activity: dict[str, Any]) -> None:  # only after pasture verified the signature
            received.append(activity)

        app = Quart("pasture")
        app.register_blueprint(BlueprintForActors(actors, on_inbox=keep).blueprint)
        port = free_port()
        with asgi_on_loopback(app, port) as pasture_url:
            yield {"kiln": server, "server": server, "api": api, "item": item, "actors": actors,
                   "domain": f"127.0.0.1:{port}", "pasture": pasture_url, "received": received,
                   "page": f"/u/ada/m/{replied['id']}", "rita": rita, "folder": folder}


# fediverse-pasture ----------------------------------------------------------------------------------

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


# bovine-herd -----------------------------------------------------------------------------------------

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


def test_bovine_follows_kiln_receives_a_photo_replies_and_likes(rig, tmp_path):
    (tmp_path / "bovine").mkdir()
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

    kiln = rig["kiln"]
    with asgi_on_loopback(herd, port):
        api = account(kiln, "bea")
        ada = f"{kiln.url}/u/bea"
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
        followers = "/api/v1/users/bea/followers"
        wait_for(lambda: api.get(followers).json()["items"], "Kiln keeping bovine's follow", 30, log)
        assert [f["url"] for f in api.get(followers).json()["items"]] == [milo]

        item = published_photo(api, tmp_path, "Gulls at dawn")
        note_id = f"{kiln.url}/u/bea/m/{item['id']}"

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
        page = api.get(f"/u/bea/m/{item['id']}").text
        assert "Lovely light, from bovine" in page and "@milo@127.0.0.1" in page


# In a browser ----------------------------------------------------------------------------------------

def logged_in(browser, server, **options: Any):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=server.url, **options)
    page = context.new_page()
    page.goto("/auth/login")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form[action='/auth/login'] button[type=submit]").click()  # in any language
    expect(page.locator("form[action='/auth/logout']")).to_have_count(1)
    return page


@in_a_browser
def test_the_handle_selects_whole_at_one_click(browser, rig):
    server = rig["server"]
    page = browser.new_context(base_url=server.url, viewport=PHONE).new_page()
    page.goto("/u/ada")
    handle = page.locator(".fediverse-handle .handle-copy")
    expected = f"@ada@{server.url.split('//')[1]}"
    expect(handle).to_have_text(expected)
    expect(page.locator(".fediverse-handle")).to_contain_text("Follow from Mastodon and other servers")
    handle.click()
    assert page.evaluate("window.getSelection().toString()") == expected
    box = handle.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]  # it wraps rather than overflows
    page.context.close()


@in_a_browser
def test_a_phone_without_javascript_blocks_a_remote_replys_author_in_one_step(browser, rig):
    server = rig["server"]
    anonymous = browser.new_context(base_url=server.url, viewport=PHONE, java_script_enabled=False).new_page()
    anonymous.goto(rig["page"])
    expect(anonymous.locator("article.comment")).to_contain_text("Lovely light!")
    expect(anonymous.locator("form.remote-block")).to_have_count(0)  # for people logged in only
    anonymous.context.close()

    page = logged_in(browser, server, viewport=PHONE, java_script_enabled=False)
    page.goto(rig["page"])
    button = page.locator("article.comment form.remote-block button")
    expect(button).to_have_text("Block @rita@127.0.0.1")
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    button.click()
    expect(page.locator("[role=status]").filter(has_text="You blocked @rita@127.0.0.1.")).to_be_visible()
    assert page.url.split("#")[0].endswith(rig["page"]) and page.url.endswith(f"#comment-{_comment_id(page)}")
    page.goto("/account/blocks")
    expect(page.locator("#remote")).to_contain_text("@rita@127.0.0.1")
    page.context.close()


def _comment_id(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("article.comment").first.get_attribute("id").removeprefix("comment-")  # type: ignore[union-attr]


@in_a_browser
@pytest.mark.parametrize(("language", "viewport", "scheme"), [("en", {"width": 1280, "height": 900}, "light"),
                                                              ("ar", PHONE, "dark")])
def test_the_federation_pages_have_no_serious_violations(browser, rig, language, viewport, scheme):
    from tests.e2e.test_a11y_browser import AXE, check

    assert AXE.exists(), f"axe-core is missing: run `npm ci --prefix {AXE.parents[2]}`"
    server = rig["server"]
    page = logged_in(browser, server, viewport=viewport, color_scheme=scheme, bypass_csp=True,
                     extra_http_headers={"Accept-Language": language})
    page.goto("/account/blocks")  # a remote block listed (made here when run alone)
    if "@rita@127.0.0.1" not in (page.locator("#remote ul.people").all_inner_texts() or [""])[0]:
        page.fill("#remote input[name=account]", "@rita@127.0.0.1")
        page.locator("#remote form.form button").click()
    found: list[str] = []
    for path in ("/u/ada", rig["page"], "/account/blocks", "/admin/federation"):
        check(page, path, found, "ada", server)
    page.context.close()
    assert not found, json.dumps(found, indent=1)
