"""HTTP caching and compression for the app's own responses (an ASGI middleware, outermost).

Three jobs, in one pass over each response:

- **Anonymous page cache.** A GET that carries no login cookie, no flash message and no API token, to
  a public listing, media page, feed or API read, gets the same bytes for every visitor. Those responses
  are kept per process, already compressed (brotli and gzip), and served without touching the app until
  the site's change counter (``kiln.db.changes``) moves: every change a visitor could see bumps it in the
  same transaction, so the processing worker that publishes an item and any web process that edits one
  invalidate every process's cache by committing. One primary-key read checks it, shared by the
  requests that arrive while it runs, never blocking the event loop (``kiln.web.counter``); when the
  database does not answer in time, the request goes to the app uncached (503 if it needs the database).
- **Conditional requests.** Complete 200 responses get a weak ETag (and cached pages a Last-Modified,
  the time of the last change); a matching If-None-Match, or an If-Modified-Since not older than it,
  answers 304 without a body.
- **Compression.** HTML, JSON, Atom, CSS, JS and text responses sent in one piece are compressed with
  brotli or gzip, as the client asks. Streamed bodies (files, ranges) pass through untouched.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime

import brotli
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiln.config import WebSettings
from kiln.db.session import WEB, Timeouts
from kiln.web.counter import CounterReads
from kiln.web.deps import FLASH_COOKIE, SESSION_COOKIE

# Paths whose anonymous GET responses are the same for everyone. (Not an item's API record: it carries
# live step progress, which changes without a visible change.)
CACHEABLE_PATHS = ("/", "/tags", "/explore", "/api/v1/media", "/search", "/api/v1/search", "/opensearch.xml",
                   "/oembed")
CACHEABLE_PREFIXES = ("/u/", "/tag/", "/feeds/", "/c/")
# Pages only people who are logged in see, whose parts may still be kept (kiln.web.fragments).
LOGGED_IN_PATHS = ("/timeline", "/favourites")
COMPRESSIBLE = ("text/html", "application/json", "application/atom+xml", "text/css", "text/javascript",
                "application/javascript", "text/plain", "application/xml", "image/svg+xml")
ENCODINGS = ("br", "gzip")


def is_cacheable_request(scope: Scope, headers: Headers) -> bool:
    if scope["method"] != "GET":
        return False
    path: str = scope["path"]
    if path not in CACHEABLE_PATHS and not path.startswith(CACHEABLE_PREFIXES):
        return False
    if "authorization" in headers:
        return False
    cookie = headers.get("cookie", "")
    return SESSION_COOKIE not in cookie and FLASH_COOKIE not in cookie


def _has_fragments(path: str) -> bool:
    return path in CACHEABLE_PATHS or path in LOGGED_IN_PATHS or path.startswith(CACHEABLE_PREFIXES)


def choose_encoding(accept_encoding: str) -> str | None:
    """The best of brotli and gzip the client accepts (q > 0), or None for the plain bytes."""
    offered: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if name:
            offered[name.strip()] = q
    for name in ENCODINGS:
        q = offered.get(name, offered.get("*", 0.0))
        if q > 0:
            return name
    return None


def compress(body: bytes, encoding: str, *, thorough: bool = False) -> bytes:
    if encoding == "br":
        return brotli.compress(body, quality=6 if thorough else 4)
    return gzip.compress(body, compresslevel=9 if thorough else 6, mtime=0)


def etag_of(body: bytes) -> str:
    return 'W/"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _compressible(headers: MutableHeaders) -> bool:
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type in COMPRESSIBLE and "content-encoding" not in headers


def not_modified(request: Headers, etag: str | None, last_modified: dt.datetime | None) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since; weak comparison for GET."""
    if_none_match = request.get("if-none-match")
    if if_none_match is not None:
        if etag is None:
            return False
        wanted = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in wanted or etag.removeprefix("W/") in wanted
    since = request.get("if-modified-since")
    if since and last_modified is not None:
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return last_modified.replace(microsecond=0) <= when
    return False


# Headers that describe one response on the wire, never stored with a cached page.
_PER_RESPONSE = {"content-length", "content-encoding", "date", "set-cookie", "etag", "last-modified",
                 "vary", "cache-control"}


@dataclass
class Entry:
    generation: int
    stored: float
    etag: str
    last_modified: dt.datetime
    headers: list[tuple[bytes, bytes]]
    bodies: dict[str | None, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.bodies.values())


class PageCache:
    """A bounded LRU of anonymous responses, valid for one change-counter generation and a time limit."""

    def __init__(self, max_entries: int, max_bytes: int, max_age: float) -> None:
        self.max_entries, self.max_bytes, self.max_age = max_entries, max_bytes, max_age
        self._entries: OrderedDict[tuple[str, ...], Entry] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[str, ...], generation: int) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None or entry.generation != generation or time.monotonic() - entry.stored > self.max_age:
            if entry is not None:
                self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[str, ...], entry: Entry) -> None:
        if entry.size > self.max_bytes // 8:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        self._bytes += entry.size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: tuple[str, ...]) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size


class HttpCaching:
    def __init__(self, app: ASGIApp, db_url: str, settings: WebSettings, timeouts: Timeouts = WEB) -> None:
        self.app = app
        self.counter = CounterReads(db_url, timeouts)
        self._rendering: dict[tuple[str, ...], tuple[int, asyncio.Future[Entry | None]]] = {}
        self.cache = PageCache(settings.page_cache_entries, settings.page_cache_mib * 1024 * 1024,
                               settings.page_cache_seconds) if settings.page_cache_entries else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        encoding = choose_encoding(headers.get("accept-encoding", ""))
        if self.cache is not None and is_cacheable_request(scope, headers):
            await self._cached(scope, receive, send, headers, encoding)
            return
        if self.cache is not None and scope["method"] == "GET" and _has_fragments(scope["path"]):
            # A page rendered for one person (logged in) may still reuse fragments others' pages made.
            counted = await self.counter.read()
            if counted is not None:
                scope.setdefault("state", {})["generation"] = counted[0]
        await self.app(scope, receive, _Shaper(send, headers, encoding, scope["method"]).send)

    async def _cached(self, scope: Scope, receive: Receive, send: Send, headers: Headers,
                      encoding: str | None) -> None:
        assert self.cache is not None
        counted = await self.counter.read()
        if counted is None:  # the app answers for itself (503 if the page needs the database)
            await self.app(scope, receive, _Shaper(send, headers, encoding, scope["method"]).send)
            return
        generation, changed_at = counted
        scope.setdefault("state", {})["generation"] = generation  # for kiln.web.fragments
        key = (scope["scheme"], headers.get("host", ""), scope["path"], scope["query_string"].decode("latin-1"),
               scope.get("state", {}).get("locale", ""))
        entry = self.cache.get(key, generation)
        if entry is None:
            # One render per page and generation: visitors who ask while it is being made wait for it
            # (after a change, fifty connections asking for the front page cost one render, not fifty).
            pending = self._rendering.get(key)
            if pending is not None and pending[0] == generation:
                entry = await asyncio.shield(pending[1])
            if entry is None:
                entry = await self._render(key, generation, changed_at, scope, receive, send, headers, encoding)
            if entry is None:
                return
        await _send_entry(entry, headers, encoding, send)

    async def _render(self, key: tuple[str, ...], generation: int, changed_at: dt.datetime, scope: Scope,
                      receive: Receive, send: Send, headers: Headers, encoding: str | None) -> Entry | None:
        """Ask the app for the plain bytes (compression happens once, for every later visitor) and keep
        them if they may be shared. Returns None once it has sent a response that may not."""
        assert self.cache is not None
        future: asyncio.Future[Entry | None] = asyncio.get_running_loop().create_future()
        self._rendering[key] = (generation, future)
        entry = None
        try:
            plain_scope = {**scope, "headers": [(k, v) for k, v in scope["headers"]
                                                if k not in (b"accept-encoding", b"if-none-match",
                                                             b"if-modified-since")]}
            captured = _Capture()
            await self.app(plain_scope, receive, captured.send)
            entry = captured.entry(generation, changed_at)
            if entry is None:  # not shareable (an error, a cookie): send it as it came, shaped like any other
                await captured.replay(_Shaper(send, headers, encoding, scope["method"]).send)
            else:
                self.cache.put(key, entry)
            return entry
        finally:
            future.set_result(entry)  # waiters given None ask the app themselves
            if self._rendering.get(key, (None, None))[1] is future:
                del self._rendering[key]


async def _send_entry(entry: Entry, request: Headers, encoding: str | None, send: Send) -> None:
    head = MutableHeaders(raw=list(entry.headers))
    head["etag"] = entry.etag
    head["last-modified"] = format_datetime(entry.last_modified.astimezone(dt.UTC), usegmt=True)
    head["cache-control"] = "no-cache"
    head["vary"] = "Accept-Encoding, Accept-Language, Cookie"
    if not_modified(request, entry.etag, entry.last_modified):
        del head["content-type"]
        await send({"type": "http.response.start", "status": 304, "headers": head.raw})
        await send({"type": "http.response.body", "body": b""})
        return
    if encoding is not None and encoding not in entry.bodies and len(entry.bodies[None]) >= 256:
        entry.bodies[encoding] = compress(entry.bodies[None], encoding, thorough=True)
    if encoding is not None and encoding in entry.bodies:
        body = entry.bodies[encoding]
        head["content-encoding"] = encoding
    else:  # a body too small to be worth compressing
        body = entry.bodies[None]
    head["content-length"] = str(len(body))
    await send({"type": "http.response.start", "status": 200, "headers": head.raw})
    await send({"type": "http.response.body", "body": body})


class _Capture:
    """Collects a response in memory (pages and JSON are small) to decide whether to share it."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    def entry(self, generation: int, changed_at: dt.datetime) -> Entry | None:
        if self.start is None or self.start["status"] != 200:
            return None
        head = MutableHeaders(raw=self.start["headers"])
        if "set-cookie" in head or "content-encoding" in head or "no-store" in head.get("cache-control", ""):
            return None
        if not _compressible(head):
            return None
        body = b"".join(self.chunks)
        kept = [(k, v) for k, v in head.raw if k.decode("latin-1").lower() not in _PER_RESPONSE]
        return Entry(generation=generation, stored=time.monotonic(), etag=etag_of(body),
                     last_modified=changed_at, headers=kept, bodies={None: body})

    async def replay(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


class _Shaper:
    """Wraps ``send`` for responses that are not shared: 304 on a matching ETag; for text bodies up to
    BUFFER_LIMIT, an ETag of the bytes and compression; anything else (files, ranges, big bodies) passes
    through as it streams."""

    BUFFER_LIMIT = 1024 * 1024

    def __init__(self, send: Send, request: Headers, encoding: str | None, method: str) -> None:
        self._send, self.request, self.encoding, self.method = send, request, encoding, method
        self.start: Message | None = None  # held while the body is gathered
        self.chunks: list[bytes] = []
        self.size = 0
        self.swallow = False

    async def send(self, message: Message) -> None:
        if self.swallow:
            return
        if message["type"] == "http.response.start":
            head = MutableHeaders(raw=message["headers"])
            if message["status"] == 200 and "etag" in head and not_modified(self.request, head["etag"], None):
                await self._not_modified(head)
            elif message["status"] == 200 and _compressible(head):
                self.start = message
            else:
                await self._send(message)
            return
        if self.start is None or message["type"] != "http.response.body":
            await self._send(message)
            return
        body = message.get("body", b"")
        self.chunks.append(body)
        self.size += len(body)
        if message.get("more_body", False):
            if self.size > self.BUFFER_LIMIT:  # too big to hold: stream it unchanged from here on
                start, self.start = self.start, None
                await self._send(start)
                await self._send({"type": "http.response.body", "body": b"".join(self.chunks), "more_body": True})
            return
        await self._finish()

    async def _finish(self) -> None:
        assert self.start is not None
        start, self.start = self.start, None
        head = MutableHeaders(raw=start["headers"])
        body = b"".join(self.chunks)
        if self.method == "GET" and "etag" not in head:
            head["etag"] = etag_of(body)
            if not_modified(self.request, head["etag"], None):
                await self._not_modified(head)
                return
        if "cache-control" not in head:
            head["cache-control"] = "private, no-cache"
        head.add_vary_header("Accept-Encoding")
        if self.encoding is not None and len(body) >= 256:
            body = compress(body, self.encoding)
            head["content-encoding"] = self.encoding
        if self.method == "GET":
            head["content-length"] = str(len(body))
        await self._send({**start, "headers": head.raw})
        await self._send({"type": "http.response.body", "body": body})

    async def _not_modified(self, head: MutableHeaders) -> None:
        self.swallow = True
        kept = [(k, v) for k, v in head.raw if k.lower() not in (b"content-length", b"content-type")]
        await self._send({"type": "http.response.start", "status": 304, "headers": kept})
        await self._send({"type": "http.response.body", "body": b""})
