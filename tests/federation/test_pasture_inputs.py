"""Real-world object shapes from ``fediverse-pasture-inputs`` (the interoperability corpus of the
Fediverse pasture project, which nobody here wrote): each of its examples (HTML tags good and bad,
mentions, hashtags, attachments, content warnings, language maps, odd inReplyTo and attributedTo
shapes, JSON-LD contexts...) is sent by the signing test peer as a reply to one of alice's items.
Each must be accepted (202), processed to a known outcome (never an error), and whatever becomes a
comment must show nothing active on the page or in the API (tests/hostile's audit)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

import pytest

from kiln.media.text import html_text, sanitise_html
from tests.federation.test_publish import upload
from tests.federation.test_receive import PUBLIC, deliver, page
from tests.hostile.test_comment_bodies import problems

pytestmark = pytest.mark.db
# "not_followed": an odd inReplyTo (none, not an address) makes a post of theirs, not a reply; nobody follows the peer.
KNOWN = {"commented", "duplicate", "ignored", "unknown_object", "empty_or_too_long", "not_followed"}


def examples() -> list[tuple[str, dict[str, Any]]]:
    from fediverse_pasture_inputs import inputs

    found = []
    for module in pkgutil.iter_modules(inputs.__path__):
        data = getattr(importlib.import_module(f"fediverse_pasture_inputs.inputs.{module.name}"), "data", None)
        for n, example in enumerate(getattr(data, "examples", None) or []):
            found.append((f"{module.name}/{n}", example))
    return found


def test_the_pasture_corpus_as_replies(fed, fed_rt, peer, tmp_path):
    corpus = examples()
    assert len(corpus) > 200
    media_id = upload(fed_rt, tmp_path, "Target")
    outcomes: dict[str, str] = {}
    for name, example in corpus:
        note: dict[str, Any] = {"type": "Note", "attributedTo": peer.actor_id, "to": [PUBLIC], "content": "Hello",
                                "inReplyTo": page(media_id)}
        note.update(example)
        if not name.startswith(("in_reply_to/", "attributed_to/", "object_type/")):
            note.update(inReplyTo=page(media_id), attributedTo=peer.actor_id)
        note["id"] = f"{peer.base}/pasture/{name}"
        activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{peer.base}/pasture/{name}/create",
                    "type": "Create", "actor": peer.actor_id, "object": note}
        outcomes[name] = deliver(fed, fed_rt, peer, activity)
    assert set(outcomes.values()) <= KNOWN, {k: v for k, v in outcomes.items() if v not in KNOWN}
    kept = [k for k, v in outcomes.items() if v == "commented"]
    assert len(kept) > len(corpus) // 2
    # The plain HTML examples all become comments, but for those with no text left once sanitised (a
    # lone script or image); only the inReplyTo, attribution and type shapes may be passed over otherwise.
    plain = {k: v for k, v in outcomes.items() if k.startswith(("html_tags/", "mentions/", "hashtags/"))}
    for name, outcome in plain.items():
        content = dict(corpus)[name].get("content")
        empty = not isinstance(content, str) or not html_text(str(sanitise_html(content)))
        assert outcome == ("empty_or_too_long" if empty else "commented"), (name, outcome)

    api = f"/api/v1/media/{media_id}/comments"
    listed, cursor = [], None
    while True:
        answer = fed.get(api, params={"cursor": cursor} if cursor else None).json()
        listed += answer["items"]
        cursor = answer["next"]
        if not cursor:
            break
    assert len(listed) == len(kept)
    for item in listed:
        assert not problems(item["body_html"]), (item["body"][:80], problems(item["body_html"]))
    html = fed.get(f"/u/alice/m/{media_id}").text
    for fragment in re.findall(r'<div class="comment-text" dir="auto">(.*?)</div>', html, re.S):
        assert not problems(fragment), problems(fragment)
