"""Response headers for the app's own pages (CSP, HSTS, ...) and who a request really comes from.

User bytes served from the public store carry their own sandboxing policy (web/files.py); the
headers here are added only where a response has not set them already.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request

from kiln.config import BackendSettings, Settings

# model-viewer injects one fixed <style> into its shadow root; this is its hash.
MODEL_VIEWER_STYLE = "'sha256-PXtZZkJMMyc18o/DN1ZEFOJ2qEGq95IQbVaJFMOXOb0='"
PERMISSIONS_POLICY = ("camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), "
                      "bluetooth=(), midi=(), magnetometer=(), gyroscope=(), accelerometer=(), "
                      "display-capture=(), browsing-topics=()")


def origin(url: str | None) -> str | None:
    """``https://host[:port]`` of an absolute URL; None for relative or empty ones."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def _backend_origins(backend: BackendSettings, bucket: str) -> list[str]:
    """Where a browser fetches public renditions from when they live on this backend."""
    found = [origin(backend.public_url)]
    if backend.public_url:
        return [o for o in found if o]
    if backend.type == "s3":
        endpoint = origin(backend.endpoint_url) or f"https://s3.{backend.region}.amazonaws.com"
        scheme, _, host = endpoint.partition("://")
        found += [endpoint, f"{scheme}://{bucket}.{host}"]  # path-style and virtual-hosted URLs
    elif backend.type == "swift":
        found.append(origin(backend.auth_url))  # Swift proxies usually answer auth and objects alike
    return [o for o in found if o]


def media_origins(settings: Settings) -> list[str]:
    """Origins outside the app that serve renditions: a media domain or a CDN (``public_url``), an
    S3 endpoint handing out signed URLs, a Swift proxy. Every backend counts, since media may sit on
    an older backend while a migration is running."""
    origins: list[str] = []
    for backend in settings.storage.backends.values():
        for found in _backend_origins(backend, f"{backend.prefix}-public"):
            if found not in origins:
                origins.append(found)
    return origins


def content_security_policy(settings: Settings, framed_by: str = "'none'") -> str:
    """The app pages' policy. ``framed_by``: who may frame the page; only the embeddable player page
    (kiln.web.unfurl) passes ``*``, every other page keeps ``'none'``."""
    media = " ".join(media_origins(settings))
    static = origin(settings.static_base_url) or ""
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' {static} 'wasm-unsafe-eval'",
        "style-src": f"'self' {static} {MODEL_VIEWER_STYLE}",
        "img-src": f"'self' {static} data: blob: {media}",
        "media-src": f"'self' {media}",
        "connect-src": f"'self' {media}",
        "font-src": f"'self' {static}",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": framed_by,
    }
    return "; ".join(f"{name} {' '.join(value.split())}" for name, value in directives.items())


def client_ip(request: Request, trusted_proxies: list[str]) -> str:
    """The visitor's address: the socket's peer, or when that peer is a trusted proxy, the last
    X-Forwarded-For entry that is not itself a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    if peer not in trusted_proxies:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop
    return peer


def over_tls(request: Request, trusted_proxies: list[str]) -> bool:
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return peer in trusted_proxies and forwarded == "https"


class PageHeaders:
    """Adds the app-page security headers to a response that has not chosen its own."""

    def __init__(self, settings: Settings) -> None:
        self.csp = content_security_policy(settings)
        self.embed_csp = content_security_policy(settings, framed_by="*")
        self.trusted = settings.security.trusted_proxies
        self.hsts = settings.security.hsts_seconds

    def apply_to(self, request: Request, headers: MutableHeaders) -> None:
        headers.setdefault("Content-Security-Policy", self.csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if headers["Content-Security-Policy"] != self.embed_csp:  # X-Frame-Options has no "anyone" value
            headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if self.hsts and over_tls(request, self.trusted):
            headers.setdefault("Strict-Transport-Security", f"max-age={self.hsts}; includeSubDomains")
