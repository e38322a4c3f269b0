"""The one way Kiln talks to other servers: httpx with timeouts, a size limit, and no requests to
loopback, private or otherwise non-public addresses (unless ``[federation] allow_private_addresses``),
checked again on every redirect.

The address check resolves the name, then httpx resolves it again to connect: a name whose answer
changes in between (DNS rebinding) could slip through; pinning the connection to the checked address is
left for later (docs/federation.md).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from kiln.config import FederationSettings
from kiln.errors import KilnError

ACTIVITY_JSON = "application/activity+json"
LD_JSON = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
ACCEPT = f"{ACTIVITY_JSON}, {LD_JSON}"
USER_AGENT = "Kiln (ActivityPub)"
MAX_REDIRECTS = 3


class FetchError(KilnError):
    """Another server could not be asked, or its answer was refused."""

    code = "fetch_failed"
    status = 502


class AddressRefused(FetchError):
    code = "address_refused"
    status = 400


def check_url(url: str, settings: FederationSettings) -> None:
    """Refuse (AddressRefused) what Kiln must not connect to: schemes other than https (and http with
    private addresses allowed, for tests), credentials in the address, names that resolve to a
    non-public address."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise AddressRefused("That address could not be read.") from exc
    allowed = ("https", "http") if settings.allow_private_addresses else ("https",)
    if parts.scheme not in allowed or not parts.hostname or parts.username or parts.password:
        raise AddressRefused("Kiln only fetches https:// addresses of other servers.")
    try:
        answers = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchError("The name %(host)s could not be resolved.", host=parts.hostname[:100]) from exc
    for answer in answers:
        address = ipaddress.ip_address(str(answer[4][0]).split("%")[0])
        if not address.is_global and not settings.allow_private_addresses:
            raise AddressRefused("%(host)s is a private or local address; Kiln does not connect there.",
                                 host=parts.hostname[:100])


def _client(settings: FederationSettings) -> httpx.Client:
    timeout = httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout,
                            write=settings.read_timeout, pool=settings.connect_timeout)
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                        headers={"User-Agent": USER_AGENT})


def _read_capped(response: httpx.Response, limit: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchError("The document is larger than Kiln accepts (%(n)s bytes).", n=limit)
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchError("The document is larger than Kiln accepts (%(n)s bytes).", n=limit)
        if time.monotonic() > deadline:
            raise FetchError("The server sent its answer too slowly.")
        chunks.append(chunk)
    return b"".join(chunks)


def get_json(url: str, settings: FederationSettings, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """GET an ActivityStreams document (a JSON object), following at most a few redirects, each checked."""
    deadline = time.monotonic() + settings.connect_timeout + 3 * settings.read_timeout
    with _client(settings) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, settings)
            try:
                with client.stream("GET", url, headers={"Accept": ACCEPT, **(headers or {})}) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code == 410:
                        raise FetchError("The document is gone (410).", code="gone")
                    if response.status_code != 200:
                        raise FetchError("The server answered %(status)s.", status=response.status_code)
                    body = _read_capped(response, settings.max_document_bytes, deadline)
            except httpx.HTTPError as exc:
                raise FetchError("The server could not be reached (%(error)s).",
                                 error=type(exc).__name__) from exc
            try:
                document = json.loads(body)
            except (ValueError, RecursionError) as exc:
                raise FetchError("The server's answer is not JSON.") from exc
            if not isinstance(document, dict):
                raise FetchError("The server's answer is not a JSON object.")
            return document
    raise FetchError("Too many redirects.")


def post(url: str, body: bytes, headers: Mapping[str, str], settings: FederationSettings) -> int:
    """POST ``body`` (no redirects followed: a signature covers one target). Returns the status;
    a network failure raises httpx's error, so that the outbox retries."""
    check_url(url, settings)
    with _client(settings) as client:
        response = client.post(url, content=body, headers={"Content-Type": ACTIVITY_JSON, **headers})
        return response.status_code
