"""Markdown descriptions, rendered and sanitised; tags parsed into slugs."""

from __future__ import annotations

import functools
import html
import re
import unicodedata

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("strikethrough")
_TAGS = {"p", "br", "em", "strong", "a", "ul", "ol", "li", "blockquote", "code", "pre", "h3", "h4", "s", "hr"}


CACHED_CHARS = 5000  # texts up to this long (every comment) are kept rendered: a page shows fifty at once


def render_markdown(text: str) -> Markup:
    """Markdown as sanitised HTML: the allow-list's tags only, links to http, https and mailto only,
    each with rel="nofollow ugc noopener". Short texts come from a small per-process cache (rendering
    costs about 0.2 ms; a page of comments renders fifty)."""
    text = text or ""
    return _render_cached(text) if len(text) <= CACHED_CHARS else _render(text)


def _render(text: str) -> Markup:
    return _sanitise(_MD.render(text))


_render_cached = functools.lru_cache(maxsize=2048)(_render)


def _sanitise(markup: str) -> Markup:
    clean = nh3.clean(markup, tags=_TAGS, attributes={"a": {"href", "title"}}, link_rel="nofollow ugc noopener",
                      url_schemes={"http", "https", "mailto"})
    return Markup(clean)  # noqa: S704 - sanitised by nh3 just above


def sanitise_html(markup: str) -> Markup:
    """HTML from elsewhere (a reply from another server) through the same allow-list as rendered
    Markdown: the same tags, links to http, https and mailto only, each with rel="nofollow ugc noopener"."""
    markup = markup or ""
    return _sanitise_cached(markup) if len(markup) <= CACHED_CHARS * 2 else _sanitise(markup)


_sanitise_cached = functools.lru_cache(maxsize=1024)(_sanitise)


def html_text(markup: str) -> str:
    """The text of some HTML, tags dropped and entities read (how long a reply is, what a report quotes)."""
    return html.unescape(nh3.clean(markup or "", tags=set())).strip()


def plain_summary(text: str, limit: int = 200) -> str:
    """A Markdown description as one line of plain text, at most ``limit`` characters (cut at a word,
    with an ellipsis): for link previews (OpenGraph, oEmbed), which show text, not HTML."""
    words = html.unescape(nh3.clean(str(render_markdown(text)), tags=set())).split()
    flat = " ".join(words)
    if len(flat) <= limit:
        return flat
    cut = flat[:limit - 1].rsplit(" ", 1)[0] if " " in flat[:limit - 1] else flat[:limit - 1]
    return cut.rstrip(" .,;:") + "…"


MAX_TAGS = 30


def slugify(text: str) -> str:
    value = unicodedata.normalize("NFKC", text).strip().lower()
    value = re.sub(r"[^\w\s-]", "", value)
    return re.sub(r"[\s_-]+", "-", value).strip("-")[:64]


def parse_tags(raw: str | list[str] | None) -> list[tuple[str, str]]:
    """'Sunset, beach,  sunset' -> [('sunset', 'Sunset'), ('beach', 'beach')]."""
    if not raw:
        return []
    items = raw if isinstance(raw, list) else raw.split(",")
    seen: dict[str, str] = {}
    for item in items:
        name = " ".join(item.split())[:64]
        slug = slugify(name)
        if slug and slug not in seen:
            seen[slug] = name
    return list(seen.items())[:MAX_TAGS]
