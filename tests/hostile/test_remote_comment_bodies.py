"""Hostile reply bodies from another server (issue #20): the comment corpus (tests/hostile/
test_comment_bodies.py) and HTML shapes of its own, each sent as a signed ``Create{Note}`` reply by the
test peer (tests/federation/peer.py). A remote reply's body is HTML, not Markdown: what the media page
and the API's ``body_html`` show of it must hold nothing active either (the same allow-list audit)."""

from __future__ import annotations

import re

import pytest

from kiln.media.text import html_text, sanitise_html
from kiln.social.models import COMMENT_MAX
from tests.federation.conftest import fed, fed_rt, peer  # noqa: F401 - the federation fixtures
from tests.federation.test_publish import upload
from tests.federation.test_receive import deliver, page, reply
from tests.hostile.test_comment_bodies import BODIES, problems

HTML_BODIES = {
    "div breakout": "<p>x</p></div><script>alert(1)</script><div>",
    "comment breakout": "<!--><script>alert(1)</script>-->",
    "cdata": "<![CDATA[<script>alert(1)</script>]]>",
    "mastodon mention with a javascript link": '<p><span class="h-card"><a href="javascript:alert(1)" '
                                               'class="u-url mention">@<span>x</span></a></span></p>',
    "img with srcset": '<img srcset="https://evil.example/a.png 1x" src="x">',
    "link with target and style": '<a href="https://example.org" target="_top" style="color:red">x</a>',
    "deep blockquotes": "<blockquote>" * 500 + "deep" + "</blockquote>" * 500,
    "video and audio": "<video src=x autoplay></video><audio src=x autoplay></audio>",
    "template": "<template><script>alert(1)</script></template>text",
    "unicode-escaped javascript": '<a href="&#x6A;avascript:alert(1)">x</a><a href="java\tscript:alert(1)">y</a>',
}


@pytest.mark.db
def test_no_hostile_remote_reply_renders_active_content(fed, fed_rt, peer, tmp_path):  # noqa: F811
    media_id = upload(fed_rt, tmp_path, "Target")
    bodies = {**BODIES, **HTML_BODIES}
    kept = 0
    for n, (label, body) in enumerate(bodies.items()):
        result = deliver(fed, fed_rt, peer, reply(peer, n, page(media_id), body))
        assert result in ("commented", "empty_or_too_long"), (label, result)
        kept += result == "commented"
        if result != "commented":  # only when nothing readable is left (a lone script), or too much
            left = html_text(str(sanitise_html(body)))
            assert not left or len(left) > COMMENT_MAX, (label, left[:80])
    assert kept >= len(bodies) // 2
    listed = fed.get(f"/api/v1/media/{media_id}/comments").json()["items"]
    assert len(listed) == kept
    for item in listed:
        assert item["remote"] and not problems(item["body_html"]), (item["body"][:80], problems(item["body_html"]))
    html = fed.get(f"/u/alice/m/{media_id}").text
    blocks = re.findall(r'<div class="comment-text" dir="auto">(.*?)</div>', html, re.S)
    assert len(blocks) == kept
    for fragment in blocks:
        assert not problems(fragment), problems(fragment)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert all(re.fullmatch(r'<script src="/static/[\w./-]+\?v=\w+" defer>', s) for s in scripts), scripts
