"""Parts of pages kept once rendered, for logged-in pages too: a gallery grid looks the same to everyone
who may see it, so its HTML is made once per language and change-counter generation.

The page cache (``kiln.web.caching``) reads the change counter before the route runs and leaves the
generation in the request's state; ``{% call cached_fragment(request, "grid", ...) %}...{% endcall %}``
then keys the body by (language, generation, the names given). The rows a route reads are at least as
new as that generation, so a kept fragment is never older than its key says; any visible change moves
the generation and the old fragments are never asked for again (the LRU drops them). Without a
generation (the page cache off, a test app) the body is simply rendered.

Only what looks the same to every viewer of it goes in a fragment: nothing with a CSRF token, a
viewer's name or a choice only they see; and only what a visitor could see, since changes nobody
without an account can see (a private item edited, a step claimed) leave the generation alone. The
caller says so with ``keep``: an owner's own view of their gallery, with private and unfinished items,
is never kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from markupsafe import Markup

from kiln import i18n

MAX_ENTRIES = 2000
MAX_BYTES = 32 * 1024 * 1024
MAX_VALUES = 5000
T = TypeVar("T")


class FragmentCache:
    """A bounded LRU of rendered fragments, shared by the threads of one process."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict[tuple[Hashable, ...], str] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Hashable, ...]) -> str | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[Hashable, ...], html: str) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._items[key] = html
            self._bytes += len(html)
            while self._items and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)


class KeptValues:
    """A bounded LRU of small values read from the database (ids, titles), shared by the threads of one
    process; kept per generation like the fragments (``kept``)."""

    def __init__(self, max_entries: int = MAX_VALUES) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[Hashable, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Hashable, ...], missing: Any = None) -> Any:
        with self._lock:
            if key not in self._items:
                return missing
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: tuple[Hashable, ...], value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


def generation(request: Any) -> int | None:
    """The change counter's generation this request was served at (None: nothing may be kept)."""
    scope = getattr(request, "scope", {})
    return (scope.get("state") or {}).get("generation")


def _app_state(request: Any) -> Any:
    return getattr(getattr(request, "scope", {}).get("app"), "state", None)


_MISSING = object()


def kept(request: Any, key: tuple[Hashable, ...], make: Callable[[], T]) -> T:
    """``make()``, kept per generation under ``key``: only for what every viewer may be shown the same
    way (or filters for themselves, like the collections an item is in, filtered by who may see each)."""
    found_generation = generation(request)
    state = _app_state(request)
    cache: KeptValues | None = getattr(state, "kept", None)
    if found_generation is None or cache is None:
        return make()
    full = (found_generation, *key)
    value = cache.get(full, _MISSING)
    if value is _MISSING:
        value = make()
        cache.put(full, value)
    return cast(T, value)


def keep_html(request: Any, key: tuple[Hashable, ...], make: Callable[[], str]) -> str:
    """A whole part of a page, rendered once per (language, generation, key): the media page's body for
    everyone but its owner and admins (kiln.web.pages), with marks where each viewer's own bits go."""
    found_generation = generation(request)
    state = _app_state(request)
    cache: FragmentCache | None = getattr(state, "fragments", None)
    if found_generation is None or cache is None:
        return make()
    full = (i18n.current(), found_generation, *key)
    html = cache.get(full)
    if html is None:
        html = make()
        cache.put(full, html)
    return html


def cached_fragment(request: Any, keep: bool, *names: Hashable, caller: Callable[[], str]) -> Markup:
    """The body of a ``{% call %}`` block, rendered once per (language, generation, names) when ``keep``
    (public content only), in the app's own cache (``app.state.fragments``: one site's generations
    mean nothing to another's)."""
    if not keep:
        return Markup(caller())  # noqa: S704 - the block's own output, escaped by Jinja as it rendered
    return Markup(keep_html(request, names, lambda: str(caller())))  # noqa: S704 - as above
