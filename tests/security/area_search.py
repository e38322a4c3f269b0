"""Search in the authorization matrix (kiln.web.search): the page, the API, the feed of a search and
the OpenSearch description answer everyone. What each role *finds* (never another's unlisted or
private item) is walked in tests/security/test_search_privacy.py."""

from __future__ import annotations

from tests.security.matrix_kit import Case, E

CASES: list[Case] = [
    Case("GET", "/search", E(200), send=lambda w: {"params": {"q": "private"}}),
    Case("GET", "/search", E(422), send=lambda w: {"params": {"q": "x", "sort": "random"}}, note="a bad order"),
    Case("GET", "/api/v1/search", E(200), send=lambda w: {"params": {"tag": "matrix"}}),
    Case("GET", "/api/v1/search", E(422), note="nothing asked"),
    Case("GET", "/feeds/search/atom", E(200), send=lambda w: {"params": {"q": "private"}}),
    Case("GET", "/opensearch.xml", E(200)),
    Case("GET", "/explore", E(200)),
]
