"""The one way Kiln talks to other servers: httpx with timeouts, a size limit, and no requests to
loopback, private or otherwise non-public addresses (unless ``[federation] allow_private_addresses``),
checked again on every redirect.

The address check resolves the name (within ``connect_timeout``: the system resolver has no timeout
of its own) and the connection is then made to the very address checked (``_PinnedBackend``), while TLS
(SNI, the certificate check) and the Host header still use the name: a name whose DNS answer changes
between the check and the connection (DNS rebinding) cannot reach a private address.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import httpcore
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


# Failures of a server as a whole (not of one document on it): a name that does not resolve, a server
# that cannot be reached or is too slow, an address Kiln does not connect to.
SERVER_FAILURES = ("unreachable", "too_slow", "address_refused")


class AddressRefused(FetchError):
    code = "address_refused"
    status = 400


class ServerBlocked(FetchError):
    """The address (or a redirect's target) is on a server this site's administrators blocked."""

    code = "domain_blocked"
    status = 403


# Name resolution runs here, so that a resolver that hangs costs a thread, never the caller's time.
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="kiln-resolve")


def _resolve(host: str, port: int, timeout: float) -> list[Any]:
    future = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError as exc:
        future.cancel()
        raise FetchError("The name %(host)s could not be resolved in time.", code="unreachable",
                         host=host[:100]) from exc
    except (OSError, UnicodeError) as exc:
        raise FetchError("The name %(host)s could not be resolved.", code="unreachable", host=host[:100]) from exc


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether Kiln may connect to ``address``: global, and so is any IPv4 address an IPv6 address
    carries (IPv4-mapped, 6to4, NAT64, which ``is_global`` does not look into); the deprecated
    IPv4-compatible form and Teredo are refused outright."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    if address in _IPV4_COMPATIBLE or address.teredo is not None:
        return False
    embedded = address.ipv4_mapped or address.sixtofour
    if embedded is None and any(address in network for network in _NAT64):
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return embedded is None or embedded.is_global


def check_url(url: str, settings: FederationSettings) -> str:
    """Refuse (AddressRefused) what Kiln must not connect to: schemes other than https (and http with
    private addresses allowed, for tests), credentials in the address, names that resolve to a
    non-public address. Returns the address checked, which the connection must use."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise AddressRefused("That address could not be read.") from exc
    allowed = ("https", "http") if settings.allow_private_addresses else ("https",)
    if parts.scheme not in allowed or not parts.hostname or parts.username or parts.password:
        raise AddressRefused("Kiln only fetches https:// addresses of other servers.")
    answers = _resolve(parts.hostname, port, settings.connect_timeout)
    addresses = [ipaddress.ip_address(str(answer[4][0]).split("%")[0]) for answer in answers]
    for address in addresses:
        if not is_public(address) and not settings.allow_private_addresses:
            raise AddressRefused("%(host)s is a private or local address; Kiln does not connect there.",
                                 host=parts.hostname[:100])
    if not addresses:
        raise FetchError("The name %(host)s could not be resolved.", host=parts.hostname[:100])
    return str(addresses[0])


class _PinnedBackend(httpcore.SyncBackend):
    """Connects to the address ``check_url`` checked for a name, not to whatever the name resolves to
    by then; TLS and the Host header still use the name (httpcore passes it on to ``start_tls``).

    It also keeps a duplicate of each connection's socket, so that ``abort`` (the deadline's watchdog,
    from another thread) can shut every connection down: a read blocked on a server that drips its
    headers (or its TLS handshake) a byte at a time ends at once, whatever the per-read timeouts."""

    def __init__(self) -> None:
        self.pins: dict[str, str] = {}
        self.watched: list[socket.socket] = []
        self.aborted = False
        self.lock = threading.Lock()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        pinned = self.pins.get(normal_host(host))
        if pinned is None:  # only names checked a moment ago are connected to
            raise httpcore.ConnectError(f"{host} was not checked before connecting")
        if self.aborted:
            raise httpcore.ConnectError("the deadline has passed")
        stream = super().connect_tcp(pinned, port, timeout, local_address, socket_options)
        with self.lock:
            self.watched.append(stream.get_extra_info("socket").dup())
            if self.aborted:
                self._shut(self.watched[-1])
        return stream

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the socket, not the descriptor: the connection's other ends too
            sock.shutdown(socket.SHUT_RDWR)

    def abort(self) -> None:
        with self.lock:
            self.aborted = True
            for sock in self.watched:
                self._shut(sock)

    def release(self) -> None:
        with self.lock:
            for sock in self.watched:
                sock.close()
            self.watched.clear()


class _Client(httpx.Client):
    """An httpx client whose connections go only to checked addresses (``checked``), all of them shut
    down when ``deadline`` (time.monotonic) passes."""

    def __init__(self, settings: FederationSettings, backend: _PinnedBackend, deadline: float) -> None:
        timeout = httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout,
                                write=settings.read_timeout, pool=settings.connect_timeout)
        transport = httpx.HTTPTransport(trust_env=False)
        # httpx builds its httpcore pool itself; the network backend is the one part swapped here.
        transport._pool._network_backend = backend  # noqa: SLF001
        super().__init__(timeout=timeout, follow_redirects=False, trust_env=False, transport=transport,
                         headers={"User-Agent": USER_AGENT})
        self.settings, self.backend = settings, backend
        self.watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), backend.abort)
        self.watchdog.daemon = True
        self.watchdog.start()

    def close(self) -> None:
        self.watchdog.cancel()
        try:
            super().close()
        finally:
            self.backend.release()

    def late(self) -> FetchError:
        return FetchError("The server did not answer within %(seconds)s seconds.", code="too_slow",
                          seconds=round(self.settings.connect_timeout + 3 * self.settings.read_timeout, 1))

    def checked(self, url: str) -> str:
        """Check ``url`` and pin its name to the address checked; returns the URL."""
        self.backend.pins[normal_host(urlsplit(url).hostname or "")] = check_url(url, self.settings)
        return url


def deadline_of(settings: FederationSettings) -> float:
    """When a whole fetch or delivery (redirects, headers and body included) must be over."""
    return time.monotonic() + settings.connect_timeout + 3 * settings.read_timeout


def _client(settings: FederationSettings, deadline: float | None = None) -> _Client:
    return _Client(settings, _PinnedBackend(), deadline_of(settings) if deadline is None else deadline)


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


def normal_host(host: str) -> str:
    """A host name as Kiln compares, pins and blocks it: lower case, no trailing dot, IDNA-encoded
    (``Bücher.Example.`` -> ``xn--bcher-kva.example``); an address in brackets loses them."""
    value = (host or "").strip().strip("[]").rstrip(".").lower()
    try:
        return value.encode("idna").decode("ascii") if value and not value.isascii() else value
    except UnicodeError:
        return value


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, normalised host, port) of an address, or None when it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    host = normal_host(parts.hostname or "")
    return (parts.scheme.lower(), host, port) if parts.scheme and host else None


def is_activity_type(content_type: str) -> bool:
    """Whether a Content-Type is ActivityStreams: ``application/activity+json``, or
    ``application/ld+json`` with the ActivityStreams profile."""
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    return media == ACTIVITY_JSON or (media == "application/ld+json"
                                      and "https://www.w3.org/ns/activitystreams" in params)


def get_json(url: str, settings: FederationSettings, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """GET a JSON object, following at most a few redirects, each checked."""
    return get_document(url, settings, headers)[0]


def get_activity(url: str, settings: FederationSettings,
                 sign: Callable[[str, str], Mapping[str, str]] | None = None,
                 refuse: Callable[[str], None] | None = None) -> tuple[dict[str, Any], str]:
    """GET an ActivityStreams document: (the JSON object, the final address it came from after
    redirects). FetchError unless its Content-Type is ActivityStreams. ``sign``, ``refuse``: see
    get_document."""
    return get_document(url, settings, activity=True, sign=sign, refuse=refuse)


def get_document(url: str, settings: FederationSettings, headers: Mapping[str, str] | None = None,
                 activity: bool = False, sign: Callable[[str, str], Mapping[str, str]] | None = None,
                 refuse: Callable[[str], None] | None = None) -> tuple[dict[str, Any], str]:
    """GET a JSON object, following at most a few redirects, each checked: (the object, the final
    address). ``activity``: its Content-Type must be ActivityStreams. ``sign(method, url)``: the
    headers that sign each request (each redirect's target signed anew, since a signature covers one
    target), for servers that refuse unsigned reads (kiln.federation.instance). ``refuse(url)``: asked
    before each request, the first and every redirect's, and raises to stop there (a server this site
    has blocked is neither asked nor sent a signature)."""
    deadline = deadline_of(settings)
    with _client(settings, deadline) as client:
        for _ in range(MAX_REDIRECTS + 1):
            if refuse is not None:
                refuse(url)
            client.checked(url)
            try:
                try:
                    signed = sign("GET", url) if sign is not None else {}
                except ValueError as exc:
                    raise FetchError("Kiln cannot read the address %(url)s.", code="bad_address",
                                     url=url[:200]) from exc
                with client.stream("GET", url, headers={"Accept": ACCEPT, **(headers or {}), **signed}) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code == 410:
                        raise FetchError("The document is gone (410).", code="gone")
                    if response.status_code != 200:
                        raise FetchError("The server answered %(status)s.", status=response.status_code)
                    if activity and not is_activity_type(response.headers.get("content-type", "")):
                        raise FetchError("The server's answer is not an ActivityStreams document (its "
                                         "Content-Type is %(type)s).", code="not_activity",
                                         type=response.headers.get("content-type", "none")[:100])
                    body = _read_capped(response, settings.max_document_bytes, deadline)
            except httpx.HTTPError as exc:
                if client.backend.aborted:
                    raise client.late() from exc
                raise FetchError("The server could not be reached (%(error)s).", code="unreachable",
                                 error=type(exc).__name__) from exc
            try:
                document = json.loads(body)
            except (ValueError, RecursionError) as exc:
                raise FetchError("The server's answer is not JSON.") from exc
            if not isinstance(document, dict):
                raise FetchError("The server's answer is not a JSON object.")
            return document, url
    raise FetchError("Too many redirects.")


POST_ANSWER_BYTES = 4096  # what is read of an inbox's answer: the status matters, the body does not


def post(url: str, body: bytes, headers: Mapping[str, str], settings: FederationSettings) -> int:
    """POST ``body`` (no redirects followed: a signature covers one target). Returns the status, having
    read at most a few KB of the answer (streamed, then the connection closed, within the overall
    deadline): an inbox answering a flood costs nothing. A network failure raises httpx's error, so
    that the outbox retries."""
    deadline = deadline_of(settings)
    with _client(settings, deadline) as client, client.stream(
            "POST", client.checked(url), content=body, headers={"Content-Type": ACTIVITY_JSON, **headers}) as response:
        read = 0
        for chunk in response.iter_raw(1024):
            read += len(chunk)
            if read >= POST_ANSWER_BYTES or time.monotonic() > deadline:
                break
        return response.status_code


def download(url: str, settings: FederationSettings, into: BinaryIO, limit: int, seconds: float) -> int:
    """GET a file (a followed account's picture, video or sound) into ``into``, following at most a few
    redirects, each checked, within ``seconds`` all told and at most ``limit`` bytes (FetchError
    past either). Returns the number of bytes written; what the bytes are is for the caller to find out."""
    deadline = time.monotonic() + seconds
    with _client(settings, deadline) as client:
        for _ in range(MAX_REDIRECTS + 1):
            client.checked(url)
            try:
                with client.stream("GET", url, headers={"Accept": "image/*, video/*, audio/*"}) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code == 410:
                        raise FetchError("The file is gone (410).", code="gone")
                    if response.status_code != 200:
                        code = "server_error" if response.status_code >= 500 or response.status_code == 429 \
                            else "fetch_failed"
                        raise FetchError("The server answered %(status)s.", code=code, status=response.status_code)
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise FetchError("The file is larger than Kiln copies (%(n)s bytes).", code="too_large",
                                         n=limit)
                    size = 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise FetchError("The file is larger than Kiln copies (%(n)s bytes).",
                                             code="too_large", n=limit)
                        into.write(chunk)
                    return size
            except httpx.HTTPError as exc:
                if client.backend.aborted:
                    raise client.late() from exc
                raise FetchError("The server could not be reached (%(error)s).", code="unreachable",
                                 error=type(exc).__name__) from exc
    raise FetchError("Too many redirects.")
