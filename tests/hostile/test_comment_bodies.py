"""Hostile comment bodies (issue 16): script, style, event handlers, javascript: and data: links, SVG,
mutation-XSS shapes, huge bodies, deep nesting and bidi overrides. Posted through the API; the body
as the media page and the API's ``body_html`` render it must hold nothing active: only the allow-list's
tags (kiln.media.text), only href/title/rel on links, and links only to http, https, mailto or this site.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from kiln.runtime import Runtime
from kiln.social.models import COMMENT_MAX
from tests.test_comments import Site, make_site

ALLOWED_TAGS = {"p", "br", "em", "strong", "a", "ul", "ol", "li", "blockquote", "code", "pre", "h3", "h4", "s",
                "hr"}
SAFE_SCHEMES = {"", "http", "https", "mailto"}
BODIES = {
    "script": "<script>alert(1)</script>",
    "script in markdown": "Hello <script src=//evil.example/x.js></script> **there**",
    "style": "<style>body{display:none}</style>",
    "style attribute": '<p style="position:fixed;inset:0">cover</p>',
    "event handler": "<img src=x onerror=alert(1)>",
    "handler on a link": "<a href=https://example.org onmouseover=alert(1)>x</a>",
    "javascript link": "[click](javascript:alert(1))",
    "mixed-case javascript": "[click](JaVaScRiPt:alert(1))",
    "entity javascript": "[click](&#106;avascript:alert(1))",
    "spaced javascript": "[click](<  javascript:alert(1)>)",
    "javascript autolink": "<javascript:alert(1)>",
    "vbscript link": "[x](vbscript:msgbox(1))",
    "reference javascript": "[x][1]\n\n[1]: javascript:alert(1)",
    "html javascript link": '<a href="javascript:alert(1)">x</a>',
    "data link": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "data image": "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "tracking image": "![pixel](https://evil.example/p.gif)",
    "svg": "<svg onload=alert(1)><script>alert(1)</script></svg>",
    "svg link": '<svg><a xlink:href="javascript:alert(1)"><text y="20">x</text></a></svg>',
    "iframe": "<iframe src=//evil.example></iframe>",
    "object and embed": "<object data=x></object><embed src=x>",
    "base and meta": '<base href=//evil.example><meta http-equiv="refresh" content="0;url=//evil.example">',
    "form": "<form action=//evil.example><input name=password><button>Log in</button></form>",
    "math mutation": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "noscript mutation": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "title breakout": '[x](https://example.org "a\\" onmouseover=\\"alert(1)")',
    "code span": "`<script>alert(1)</script>`",
    "fenced code": "```html\n<script>alert(1)</script>\n```",
    "deep quotes": "> " * 1000 + "deep",
    "deep lists": "".join("  " * n + "- item\n" for n in range(60)),
    "deep emphasis": "*" * 2000 + "x" + "*" * 2000,
    "bidi override": "\u202egpj.exe\u202c and \u2067isolate\u2069 and [\u202elink](https://example.org)",
    "longest allowed": ("[a](https://example.org) " * 250)[:COMMENT_MAX],
}


@pytest.fixture
def site(rt: Runtime, client: TestClient) -> Site:
    return make_site(rt, client)


class Audit(HTMLParser):
    """Every tag and attribute of a fragment, and what is wrong with them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if tag != "a" or name not in ("href", "title", "rel"):
                self.problems.append(f"attribute {name} on <{tag}>")
            elif name == "href":
                scheme = urlsplit((value or "").strip()).scheme.lower()
                if scheme not in SAFE_SCHEMES:
                    self.problems.append(f"link to {value!r}")
            elif name == "rel" and set((value or "").split()) != {"nofollow", "ugc", "noopener"}:
                self.problems.append(f"rel {value!r}")

    handle_startendtag = handle_starttag


def problems(fragment: str) -> list[str]:
    audit = Audit()
    audit.feed(fragment)
    audit.close()
    return audit.problems


@pytest.mark.db
def test_no_hostile_comment_body_renders_active_content(site: Site) -> None:
    site.rt.settings.security.comments_per_user_per_hour = 10_000
    url = f"/api/v1/media/{site.media_id}/comments"
    posted = {}
    for label, body in BODIES.items():
        resp = site.request("POST", url, headers=site.api("bob"), json={"body": body})
        assert resp.status_code == 201, (label, resp.text)
        posted[resp.json()["id"]] = label
        assert not problems(resp.json()["body_html"]), (label, problems(resp.json()["body_html"]))
    listed = site.request("GET", url).json()["items"]
    assert {c["id"] for c in listed} == set(posted)
    page = site.request("GET", f"/u/alice/m/{site.media_id}", headers=site.page("carol")).text
    # Each body sits in its own direction-isolating block; nested <div>s are not in the allow-list, so
    # the first </div> ends it.
    blocks = re.findall(r'<article class="comment" id="comment-(\d+)">.*?<div class="comment-text" dir="auto">'
                        r"(.*?)</div>", page, re.S)
    assert {int(cid) for cid, _ in blocks} == set(posted)
    for cid, fragment in blocks:
        assert not problems(fragment), (posted[int(cid)], problems(fragment))
    # The page's only scripts are its own files: no inline script and no other source.
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all(re.fullmatch(r'<script src="/static/[\w./-]+\?v=\w+" defer>', s) for s in scripts), scripts
    assert "\u202e" in page  # kept as written, but only inside its isolated comment (and the CSS isolates it)
    assert "onerror" not in page.replace("onerror=alert(1)&gt;", "")  # only as escaped text


@pytest.mark.db
def test_a_huge_body_is_refused_with_a_reason(site: Site) -> None:
    url = f"/api/v1/media/{site.media_id}/comments"
    api = site.request("POST", url, headers=site.api("bob"), json={"body": "x" * 1_000_000})
    assert api.status_code in (413, 422)
    form = site.request("POST", f"/m/{site.media_id}/comments", headers=site.page("bob"),
                        data={"body": "y" * (COMMENT_MAX + 1)})
    assert form.status_code == 422 and "at most 5,000 characters" in form.text
