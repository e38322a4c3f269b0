"""HTTP Signatures: signing Kiln's requests and verifying other servers' (pure functions, no I/O).

Two forms are spoken:

- **draft-cavage** (``Signature: keyId=...,algorithm=...,headers=...,signature=...``), what Mastodon,
  PixelFed, PeerTube and BookWyrm send and accept. Kiln signs with it (``rsa-sha256`` over
  ``(request-target) host date digest``) and verifies ``rsa-sha256`` and ``hs2019`` with an RSA key.
  It is small enough to write here over ``cryptography``'s primitives.
- **RFC 9421** (``Signature-Input`` + ``Signature``), which Mastodon also accepts: verified through the
  ``http-message-signatures`` package, which implements the RFC's structured fields and signature base
  (``rsa-v1_5-sha256``, ``Content-Digest``).

A request is accepted when its signature is valid, covers the method and target, the host, the date
(within ``max_age`` in the past and ``max_future`` ahead) and, when it has a body, a digest of that
body which matches. Everything else raises :class:`SignatureError` with a sentence for the sender.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from kiln.errors import KilnError

SIGNED_HEADERS = ("(request-target)", "host", "date", "digest")
ALGORITHMS = ("rsa-sha256", "hs2019")
_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([0-9.]+))\s*(?:,|$)')
MAX_SIGNATURE_HEADER = 8192


class SignatureError(KilnError):
    """The request's signature is missing, malformed, stale or wrong (401)."""

    code = "bad_signature"
    status = 401


@dataclass(frozen=True)
class SignedRequest:
    """What verification reads of a request: ``target`` is the path with its query, as sent;
    ``url`` the absolute address (RFC 9421 covers it); header names are lower case."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes
    url: str = ""


@dataclass(frozen=True)
class CavageSignature:
    key_id: str
    algorithm: str
    headers: tuple[str, ...]
    signature: bytes
    created: int | None = None
    expires: int | None = None


# Keys --------------------------------------------------------------------------------------------

def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_private(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM; a key of another type or shape is refused (SignatureError)."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii", "replace"))
    except (ValueError, TypeError) as exc:
        raise SignatureError("The signing key published by your server could not be read.",
                             code="bad_key") from exc
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 1024:
        raise SignatureError("Kiln verifies RSA keys of at least 1024 bits; your server published another kind.",
                             code="bad_key")
    return key


# Digests and dates -------------------------------------------------------------------------------

def digest_header(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def http_date(when: dt.datetime | None = None) -> str:
    return format_datetime((when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC), usegmt=True)


def _check_digest(value: str, body: bytes) -> None:
    """``Digest: SHA-256=...`` (several algorithms may be listed; a known one must match)."""
    known = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    checked = False
    for part in value.split(","):
        name, sep, encoded = part.strip().partition("=")
        make = known.get(name.strip().lower())
        if not sep or make is None:
            continue
        if base64.b64encode(make(body).digest()).decode("ascii") != encoded.strip():
            raise SignatureError("The Digest header does not match the body: it was changed on the way, or "
                                 "signed before it was finished.", code="digest_mismatch")
        checked = True
    if not checked:
        raise SignatureError("The Digest header names no algorithm Kiln checks (SHA-256 or SHA-512).",
                             code="digest_unknown")


MAX_TIMESTAMP = 10**11  # about the year 5000: anything later is garbage, and datetime cannot hold it


def _timestamp(params: Mapping[str, str], name: str) -> int | None:
    """A signature's ``created`` or ``expires`` (seconds since 1970), bounded; SignatureError otherwise."""
    if name not in params:
        return None
    text = params[name]
    try:
        value = float(text) if len(text) <= 30 else float("inf")
    except ValueError:
        value = float("nan")
    if not 0 <= value <= MAX_TIMESTAMP:  # also NaN and infinity
        raise SignatureError("The signature's %(name)s is not a time Kiln can read.", code="bad_date", name=name)
    return int(value)


def _parse_date(text: str) -> dt.datetime:
    """The Date header, read; SignatureError with a sentence for anything unreadable or out of range."""
    try:
        dated = parsedate_to_datetime(text[:100])
        if dated.tzinfo is None:
            dated = dated.replace(tzinfo=dt.UTC)
        return dated.astimezone(dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError, IndexError) as exc:
        raise SignatureError("The Date header could not be read.", code="bad_date") from exc


def _check_time(when: dt.datetime, now: dt.datetime, max_age: float, max_future: float) -> None:
    age = (now - when).total_seconds()
    if age > max_age:
        raise SignatureError("The request's date is too old (more than %(hours)s hours ago); sign it again.",
                             code="signature_expired", hours=round(max_age / 3600, 1))
    if -age > max_future:
        raise SignatureError("The request's date lies in the future; check the sending server's clock.",
                             code="signature_future")


def _authority(value: str, scheme: str) -> str:
    """``host[:port]`` compared: lower case, no trailing dot, no port when it is the scheme's own."""
    host, colon, port = value.strip().lower().rpartition(":")
    if not colon or not port.isdigit():
        host, port = value.strip().lower(), ""
    default = "443" if scheme == "https" else "80"
    return host.rstrip(".") + (f":{port}" if port and port != default else "")


def check_host(headers: Mapping[str, str], own: str, scheme: str) -> None:
    """The request's ``Host`` (which the signature covers) must be this site's own (``own``: host and
    port as in its base address): a request signed for another server is not replayed here."""
    given = headers.get("host", "")
    if _authority(given, scheme) != _authority(own, scheme):
        raise SignatureError("This request was made for %(given)s; this server is %(own)s.", code="wrong_host",
                             given=given[:200] or "no host", own=own)


# draft-cavage ------------------------------------------------------------------------------------

def signing_string(request: SignedRequest, covered: tuple[str, ...], sig: CavageSignature | None = None) -> str:
    lines = []
    for name in covered:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {request.target}")
        elif name in ("(created)", "(expires)"):
            value = sig.created if sig is not None and name == "(created)" else sig.expires if sig else None
            if value is None:
                raise SignatureError("The signature covers %(name)s but does not say it.", code="bad_signature",
                                     name=name)
            lines.append(f"{name}: {value}")
        else:
            if name not in request.headers:
                raise SignatureError("The signature covers the %(name)s header, which the request does not have.",
                                     code="missing_header", name=name)
            lines.append(f"{name}: {request.headers[name].strip()}")
    return "\n".join(lines)


def sign(method: str, url: str, body: bytes, key_id: str, private_key: rsa.RSAPrivateKey,
         now: dt.datetime | None = None) -> dict[str, str]:
    """The headers that sign a request to ``url`` (Host, Date, Digest, Signature): draft-cavage
    ``rsa-sha256`` over ``(request-target) host date digest`` (a GET without a body: no digest). The
    host and target are signed as they are sent (httpx's form: an international name IDNA-encoded, the
    path and query percent-encoded); a URL that cannot be sent is ValueError."""
    try:
        parts = httpx.URL(url)
        host, target = parts.netloc.decode("ascii"), parts.raw_path.decode("ascii") or "/"
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise ValueError(f"Kiln cannot sign a request to {url[:200]!r}: {exc}") from exc
    headers = {"host": host, "date": http_date(now)}
    covered: tuple[str, ...] = ("(request-target)", "host", "date")
    if body or method.upper() != "GET":
        headers["digest"] = digest_header(body)
        covered = SIGNED_HEADERS
    text = signing_string(SignedRequest(method, target, headers, body), covered)
    value = base64.b64encode(private_key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()))
    headers["signature"] = (f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(covered)}",'
                            f'signature="{value.decode("ascii")}"')
    return {name.title(): value for name, value in headers.items()}


def parse_cavage(headers: Mapping[str, str]) -> CavageSignature:
    """The ``Signature`` header (or ``Authorization: Signature ...``), parsed; malformed: SignatureError."""
    raw = headers.get("signature")
    if raw is None:
        auth = headers.get("authorization", "")
        if auth[:10].lower() == "signature ":
            raw = auth[10:]
    if not raw:
        raise SignatureError("This inbox accepts only signed requests (HTTP Signatures); the request has no "
                             "Signature header.", code="unsigned")
    if len(raw) > MAX_SIGNATURE_HEADER:
        raise SignatureError("The Signature header is too long.", code="bad_signature")
    params: dict[str, str] = {}
    position = 0
    while position < len(raw):
        found = _PARAM.match(raw, position)
        if found is None:
            raise SignatureError("The Signature header could not be read.", code="bad_signature")
        params[found.group(1).lower()] = found.group(2) if found.group(2) is not None else found.group(3)
        position = found.end()
    try:
        signature = base64.b64decode(params.get("signature", ""), validate=True)
    except ValueError as exc:
        raise SignatureError("The Signature header could not be read.", code="bad_signature") from exc
    created = _timestamp(params, "created")
    expires = _timestamp(params, "expires")
    if not params.get("keyid") or not signature:
        raise SignatureError("The Signature header lacks a keyId or a signature.", code="bad_signature")
    covered = tuple(params.get("headers", "date").lower().split())
    return CavageSignature(params["keyid"], params.get("algorithm", "hs2019").lower(), covered, signature,
                           created, expires)


def verify_cavage(request: SignedRequest, sig: CavageSignature, key: rsa.RSAPublicKey, *, now: dt.datetime,
                  max_age: float, max_future: float) -> None:
    """Raise SignatureError unless ``sig`` is a valid draft-cavage signature of ``request`` by ``key``
    that covers what Kiln requires, made within the clock window, over a body that matches its digest."""
    check_cavage(request, sig, now=now, max_age=max_age, max_future=max_future)
    text = signing_string(request, sig.headers, sig)
    try:
        key.verify(sig.signature, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise SignatureError("The signature does not match the request and the sender's published key.",
                             code="signature_mismatch") from exc


def check_cavage(request: SignedRequest, sig: CavageSignature, *, now: dt.datetime, max_age: float,
                 max_future: float) -> None:
    """Everything about a draft-cavage signature that needs no key (algorithm, coverage, dates, digest):
    asked before the key is fetched, so that junk costs no request to anyone."""
    if sig.algorithm not in ALGORITHMS:
        raise SignatureError("Kiln verifies rsa-sha256 and hs2019 signatures, not %(name)s.",
                             code="unknown_algorithm", name=sig.algorithm[:40])
    needed = ["(request-target)", "host"]
    if request.body or request.method.upper() != "GET":
        needed.append("digest")
    missing = [name for name in needed if name not in sig.headers]
    if "date" not in sig.headers and "(created)" not in sig.headers:
        missing.append("date")
    if missing:
        raise SignatureError("The signature must cover %(names)s.", code="weak_signature", names=" ".join(missing))
    if "date" in sig.headers:
        _check_time(_parse_date(request.headers.get("date", "")), now, max_age, max_future)
    for name, value in (("created", sig.created), ("expires", sig.expires)):
        if value is not None and not 0 <= value <= MAX_TIMESTAMP:
            raise SignatureError("The signature's %(name)s is not a time Kiln can read.", code="bad_date", name=name)
    if sig.created is not None:
        _check_time(dt.datetime.fromtimestamp(sig.created, dt.UTC), now, max_age, max_future)
    if sig.expires is not None and sig.expires < now.timestamp():
        raise SignatureError("The signature has expired; sign the request again.", code="signature_expired")
    if "digest" in sig.headers:
        _check_digest(request.headers.get("digest", ""), request.body)


# RFC 9421 ----------------------------------------------------------------------------------------

def _rfc9421_params(headers: Mapping[str, str]) -> dict[str, Any]:
    """The parameters of the one signature in ``Signature-Input`` (RFC 9421), or SignatureError."""
    import http_sf

    try:
        parsed: Any = http_sf.parse(headers.get("signature-input", "").encode("ascii"), tltype="dictionary")
        (members,) = parsed.values()
        return dict(members[1])
    except Exception as exc:
        raise SignatureError("The Signature-Input header could not be read, or holds more than one signature.",
                             code="bad_signature") from exc


def rfc9421_key_id(headers: Mapping[str, str]) -> str:
    """The ``keyid`` of the one signature in ``Signature-Input`` (RFC 9421), or SignatureError."""
    key_id = _rfc9421_params(headers).get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("The Signature-Input header lacks a keyid.", code="bad_signature")
    return key_id


INBOX_COMPONENTS = ("@method", "@target-uri")  # and content-digest with a body
RFC9421_ALGORITHMS = {"rsa-v1_5-sha256": rsa.RSAPublicKey, "rsa-pss-sha512": rsa.RSAPublicKey,
                      "ed25519": ed25519.Ed25519PublicKey}


def verify_rfc9421(request: SignedRequest, key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey, *, now: dt.datetime,
                   max_age: float, max_future: float, required: tuple[str, ...] | None = None,
                   algorithm: str | None = None) -> None:
    """Raise SignatureError unless the request carries a valid RFC 9421 signature by ``key`` covering
    ``required`` (by default what an inbox needs: ``@method``, ``@target-uri`` and, with a body,
    ``content-digest``), made within the clock window (as for draft-cavage), over a body that matches
    its ``Content-Digest`` when it covers one. The algorithm is the signature's ``alg`` (``rsa-v1_5-sha256``,
    ``rsa-pss-sha512`` or ``ed25519``, fitting the key), else ``algorithm`` when the key is known to be
    for one (RFC 9421 lets the key decide), else ``rsa-v1_5-sha256`` for an RSA key (what Mastodon
    sends) and ``ed25519`` for an Ed25519 one."""
    from http_message_signatures import HTTPMessageSignaturesException, HTTPMessageVerifier, algorithms
    from http_message_signatures.resolvers import HTTPSignatureKeyResolver
    from http_message_signatures.structures import CaseInsensitiveDict

    class _Key(HTTPSignatureKeyResolver):
        def resolve_public_key(self, key_id: str) -> rsa.RSAPublicKey | ed25519.Ed25519PublicKey:
            return key

    class _Verifier(HTTPMessageVerifier):
        def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
            # Kiln's clock and window, the same as for draft-cavage (the package's own allows 5 s ahead).
            params = {name: str(sig_input.params[name]) for name in ("created", "expires") if name in sig_input.params}
            created, expires = _timestamp(params, "created"), _timestamp(params, "expires")
            if created is None:
                raise SignatureError("The signature must say when it was made (created).", code="weak_signature")
            _check_time(dt.datetime.fromtimestamp(created, dt.UTC), now, max_age_seconds, max_future)
            if expires is not None and expires < now.timestamp():
                raise SignatureError("The signature has expired; sign the request again.", code="signature_expired")

    @dataclass
    class _Message:
        method: str
        url: str
        headers: CaseInsensitiveDict

    max_age_seconds = max_age
    alg = _rfc9421_params(request.headers).get("alg", algorithm)
    if alg is None:
        alg = "ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "rsa-v1_5-sha256"
    if not isinstance(alg, str) or not isinstance(key, RFC9421_ALGORITHMS.get(alg, type(None))):
        raise SignatureError("Kiln verifies RFC 9421 signatures made with rsa-v1_5-sha256 or rsa-pss-sha512 (RSA "
                             "keys) and ed25519, with the key of that kind; not %(name)s.", code="unknown_algorithm",
                             name=str(alg)[:40])
    chosen = {"rsa-v1_5-sha256": algorithms.RSA_V1_5_SHA256, "rsa-pss-sha512": algorithms.RSA_PSS_SHA512,
              "ed25519": algorithms.ED25519}[alg]
    if required is None:
        required = INBOX_COMPONENTS + (("content-digest",) if request.body else ())
    verifier = _Verifier(signature_algorithm=chosen, key_resolver=_Key())
    message = _Message(request.method.upper(), request.url, CaseInsensitiveDict(dict(request.headers)))
    try:
        verifier.verify(message, max_age=None, require_components=required, body=request.body or None)
    except SignatureError:  # Kiln's own clock checks, raised from within
        raise
    except HTTPMessageSignaturesException as exc:
        raise SignatureError("The RFC 9421 signature was refused: %(reason)s.", code="signature_mismatch",
                             reason=str(exc)[:200]) from exc
    except (ValueError, TypeError, OverflowError, OSError, KeyError, IndexError) as exc:  # garbage parameters
        raise SignatureError("The RFC 9421 signature could not be read.", code="bad_signature") from exc
