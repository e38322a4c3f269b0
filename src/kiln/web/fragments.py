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
from typing import Any

from markupsafe import Markup

from kiln import i18n

MAX_ENTRIES = 2000
MAX_BYTES = 32 * 1024 * 1024


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


def cached_fragment(request: Any, keep: bool, *names: Hashable, caller: Callable[[], str]) -> Markup:
    """The body of a ``{% call %}`` block, rendered once per (language, generation, names) when ``keep``
    (public content only), in the app's own cache (``app.state.fragments``: one site's generations
    mean nothing to another's)."""
    scope = getattr(request, "scope", {})
    generation = (scope.get("state") or {}).get("generation")
    app = scope.get("app")
    cache: FragmentCache | None = getattr(getattr(app, "state", None), "fragments", None)
    if not keep or generation is None or cache is None:
        return Markup(caller())  # noqa: S704 - the block's own output, escaped by Jinja as it rendered
    key = (i18n.current(), generation, *names)
    html = cache.get(key)
    if html is None:
        html = str(caller())
        cache.put(key, html)
    return Markup(html)  # noqa: S704 - as above
