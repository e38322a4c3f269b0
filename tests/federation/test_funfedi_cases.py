"""Real-world activity shapes from ``funfedi-parsing-test-cases`` (the funfedi.dev project's corpus,
which nobody here wrote; the sister of ``fediverse-pasture-inputs``, tests/federation/test_pasture_inputs.py):
each case of its activity suites (the Create's properties missing, null or lists, its ``@context``,
``to`` and ``cc`` varied, ``Announce(Create(Note))``) and of its Note, Event and poll (``Question``)
suites is built by the package's own ``Environment`` as the signing test peer's and sent to alice twice:
once with its object made a reply to one of alice's items, once as a post of the peer after bob
follows it. Each must be answered 202 or refused with a sentence (never 5xx), be processed to a known
outcome, and whatever is kept (a comment, a remote post) must show nothing active. The case's status
is respected: only ``may_fail`` (or ``should_fail``) cases may be refused, and a ``should_fail``
case is never kept; every Create of a Note with text that is accepted is kept both ways."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kiln.app import create_app
from kiln.federation.models import InboxActivity
from tests.conftest import BASE_URL, register
from tests.federation.peer import Peer
from tests.federation.test_following import follow_peer
from tests.federation.test_publish import upload
from tests.federation.test_receive import page
from tests.hostile.test_comment_bodies import problems

funfedi = pytest.importorskip("funfedi_parsing_test_cases")

pytestmark = pytest.mark.db
ALICE = "http://testserver/u/alice"
KEPT = {"commented", "post_kept"}
# What else processing may make of them: passed over (an object Kiln does not keep: an Event, a poll,
# a list of objects, a boost of someone's Create), a reply with no text, a post with no text.
KNOWN = KEPT | {"ignored", "unknown_object", "empty_or_too_long", "empty"}


def cases() -> list[tuple[str, Any]]:
    suites = [funfedi.activity_suite, funfedi.notes_suite, funfedi.event_suite, funfedi.poll_suite]
    return [(f"{suite.name}/{sub}/{case.name}", case) for suite in suites for sub, found in suite.tests.items()
            for case in found]


def objects(value: Any, object_id: str) -> Iterator[dict[str, Any]]:
    """Every copy of the case's object in the activity (an Announce carries it in a Create; one case
    gives the object as a list)."""
    if isinstance(value, list):
        for item in value:
            yield from objects(item, object_id)
    elif isinstance(value, dict):
        if value.get("id") == object_id:
            yield value
        yield from objects(value.get("object"), object_id)


def send(fed: TestClient, fed_rt, peer: Peer, activity: dict[str, Any], path: str) -> str:  # type: ignore[no-untyped-def]
    """Post the signed activity; what processing made of it, or the status and sentence it was refused with."""
    with fed_rt.sessions() as session:
        before = session.scalar(select(func.max(InboxActivity.id))) or 0
    body, headers = peer.signed(f"http://testserver{path}", activity)
    answer = fed.post(path, content=body, headers=headers)
    assert answer.status_code == 202 or 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    if answer.status_code != 202:
        message = answer.json()["error"]["message"]
        assert re.fullmatch(r"[A-Z].* .*\.", message), message
        return f"refused {answer.status_code}"
    with fed_rt.sessions() as session:
        (outcome,) = session.scalars(select(InboxActivity.outcome).where(InboxActivity.id > before)).all()
        return outcome


def test_the_funfedi_corpus_as_replies_and_as_posts(fed, fed_rt, peer, tmp_path):
    corpus = cases()
    assert len(corpus) > 70
    statuses = {str(case.status) for _, case in corpus}
    assert statuses <= {s.value for s in funfedi.TestCaseStatus}
    env = funfedi.Environment(sending_actor_profile=peer.actor(), receiving_actor=ALICE)
    media_id = upload(fed_rt, tmp_path, "Target")

    replies: dict[str, str] = {}
    kinds: dict[str, str] = {}  # the type of the case's object
    keepable: set[str] = set()  # a Create of one Note with text, which Kiln keeps
    for name, case in corpus:
        made = case.maker.to_send(env)
        found = list(objects(made.activity, made.object_id))
        assert found, name
        for obj in found:
            obj["inReplyTo"] = page(media_id)
        kinds[name] = str(found[0].get("type"))
        if made.activity.get("type") == "Create" and made.activity["object"] is found[0] \
                and kinds[name] == "Note" and found[0].get("content"):
            keepable.add(name)
        replies[name] = send(fed, fed_rt, peer, made.activity, "/u/alice/inbox")

    with TestClient(create_app(fed_rt.settings, fed_rt), base_url=BASE_URL) as bob:
        register(bob, fed_rt.settings, "bob")
        follow_peer(bob, fed, fed_rt, peer)
        posts = {name: send(fed, fed_rt, peer, case.maker.to_send(env).activity, "/inbox") for name, case in corpus}
        timeline, listed, cursor = bob.get("/timeline").text, [], None
        while True:
            answer = bob.get("/api/v1/timeline", params={"cursor": cursor} if cursor else None).json()
            listed += answer["remote_posts"]
            cursor = answer["next"]
            if not cursor:
                break

    for outcomes in (replies, posts):
        odd = {k: v for k, v in outcomes.items() if v not in KNOWN and not v.startswith("refused 4")}
        assert not odd, odd
    status = funfedi.TestCaseStatus
    for name, case in corpus:
        both = (replies[name], posts[name])
        if case.status == status.should_fail:
            assert not KEPT & set(both), (name, both)
        refused = any(o.startswith("refused") for o in both)
        if case.status in (status.recommended, status.unknown):  # only those that may fail are refused
            assert not refused, (name, both)
        if name in keepable and not refused:  # whatever its @context, addressing or missing properties
            assert both == ("commented", "post_kept"), (name, both)
        if kinds[name] in ("Event", "Question"):  # Kiln keeps neither events nor polls
            assert both == ("ignored", "ignored"), (name, both)

    comments, cursor = [], None
    while True:
        answer = fed.get(f"/api/v1/media/{media_id}/comments", params={"cursor": cursor} if cursor else None).json()
        comments += answer["items"]
        cursor = answer["next"]
        if not cursor:
            break
    assert len(comments) == list(replies.values()).count("commented")
    assert len(listed) == list(posts.values()).count("post_kept")
    for fragment in [c["body_html"] for c in comments] + [p["content_html"] for p in listed]:
        assert not problems(fragment), problems(fragment)
    html = fed.get(f"/u/alice/m/{media_id}").text
    on_page = re.findall(r'<div class="comment-text" dir="auto">(.*?)</div>', html, re.S)
    on_timeline = re.findall(r'<div class="remote-content" dir="auto">(.*?)</div>', timeline, re.S)
    assert on_page and on_timeline
    for fragment in on_page + on_timeline:
        assert not problems(fragment), problems(fragment)
