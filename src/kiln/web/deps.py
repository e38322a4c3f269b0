"""Request dependencies shared by every route: database session, current user, CSRF, flash."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import urlsplit

import anyio
from fastapi import Depends, Path, Query, Request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from kiln import i18n
from kiln.accounts import services as accounts
from kiln.accounts.models import ApiToken, LoginSession, User
from kiln.accounts.throttle import Throttle
from kiln.db.session import began_writing
from kiln.errors import KilnError, NotAuthenticated, PermissionDenied
from kiln.runtime import Runtime
from kiln.social import follows, notify
from kiln.web import security

SESSION_COOKIE = "kiln_session"
CSRF_COOKIE = "kiln_csrf"
FLASH_COOKIE = "kiln_flash"


class CsrfFailed(KilnError):
    code = "csrf_failed"
    status = 403


# Routes for other servers (kiln.web.federation): their errors, even a malformed parameter, are JSON.
_FOR_SERVERS = ("/ap/", "/.well-known/webfinger", "/.well-known/nodeinfo", "/nodeinfo/")


def wants_json(request: Request) -> bool:
    """Whether the answer, or the error, goes out as JSON: the API, oEmbed, the routes for other servers
    (ActivityPub, WebFinger, NodeInfo, the inboxes), or a client that asks for JSON or ActivityStreams."""
    path = request.url.path
    accept = request.headers.get("accept", "")
    if (path.startswith(("/api/", *_FOR_SERVERS)) or path == "/oembed" or path == "/inbox"
            or (path.startswith("/u/") and path.endswith("/inbox")) or "application/json" in accept):
        return True
    asks_activity = "application/activity+json" in accept or ("application/ld+json" in accept
                                                              and "activitystreams" in accept)
    # Federation off: a profile asked for ActivityStreams is an ordinary page, its errors too.
    return asks_activity and runtime(request).settings.federation.enabled


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def db(request: Request) -> AsyncIterator[Session]:
    """The request's database session, once the request has a slot (kiln.db.health.RequestSlots):
    waiting for one holds no thread and no connection, and ends in 503 with Retry-After when none
    frees up in time or the database is known to be down."""
    await request.app.state.db_slots.acquire()
    request.state.db_slot = True
    read_engine = request.app.state.read_engine
    began: list[bool] | None = None
    if read_engine is not None and request.method in ("GET", "HEAD"):
        # A page that reads (kiln.db.session.READS_FIRST): no transaction unless it writes.
        session = runtime(request).sessions(bind=read_engine)
        began = [False]
        began_writing.set(began)
    else:
        session = runtime(request).sessions()
    request.state.db = session
    try:
        yield session
    finally:
        try:
            if request.app.state.db_local or (began is not None and not began[0]):
                # SQLite: a file on this machine. A reading request that wrote nothing: no transaction
                # to end. Either way, closing does not wait on the network.
                session.close()
            else:
                with anyio.CancelScope(shield=True):  # ending the transaction talks to the server: not here
                    await anyio.to_thread.run_sync(session.close)
        finally:
            _give_back_slot(request)


async def release_database(request: Request) -> None:
    """End the request's transaction and give its slot back while it waits on something slow (an
    upload body may take minutes). Call ``reclaim_database`` before the session is used again."""
    await anyio.to_thread.run_sync(request.state.db.commit)
    _give_back_slot(request)


async def reclaim_database(request: Request) -> None:
    if not getattr(request.state, "db_slot", False):
        await request.app.state.db_slots.acquire()
        request.state.db_slot = True


def _give_back_slot(request: Request) -> None:
    if getattr(request.state, "db_slot", False):
        request.state.db_slot = False
        request.app.state.db_slots.release()


# Files read with an API token too: a private item's renditions, and copies of posts from elsewhere.
_PRIVATE_FILE = re.compile(r"^/(m/\d+/r/[^/]+|remote/files/\d+)$")
# An id in a URL: numbers past the database's integer column answer 422, not a database error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
# The session closes as soon as the route returns, before the response is serialised or streamed: a
# request never holds a pooled connection while it waits for a thread or sends a file to a slow client
# (with ten threads and twenty connections, that wait deadlocked the API under fifty connections).
# A collection's share link secret (``?share=``), carried on the links of a shared collection's page.
ShareToken = Annotated[str | None, Query(max_length=100, description="A collection's share link")]
DB = Annotated[Session, Depends(db, scope="function")]
# Dependencies that only read the request are ``async def``: FastAPI runs a plain ``def`` one in the
# thread pool, a hop per dependency per request that waits for a thread and the GIL behind the
# requests in flight (the ones that touch the database stay plain functions, on a thread).


async def _runtime(request: Request) -> Runtime:
    return runtime(request)


RT = Annotated[Runtime, Depends(_runtime)]

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def site_url(request: Request) -> str:
    """The base of the absolute links in a response: ``base_url`` when it is set, else the scheme and
    host this request came to (so links work on whatever address and port Kiln is reached at). Mail
    never uses this: a forged Host header must not choose where a reset link points."""
    settings = runtime(request).settings
    if settings.base_url:
        return settings.base_url.rstrip("/")
    host = request.headers.get("host", "")
    if not _HOST.match(host):
        return settings.link_base()
    return f"{request.url.scheme}://{host}{request.scope.get('root_path', '')}".rstrip("/")


async def _site_url(request: Request) -> str:
    return site_url(request)


SiteURL = Annotated[str, Depends(_site_url)]


def secure_cookies(request: Request) -> bool:
    """Cookies are marked Secure when the site is reached over HTTPS."""
    return site_url(request).startswith("https://")


def _bearer(request: Request) -> str | None:
    """The API token of a request to the API (or a read of a private item's file, or of Kiln's copy
    of a file from elsewhere). Everywhere else a token is ignored: a read-only token must never reach
    the pages' forms, which only check that someone is logged in (it could, for instance, mint itself
    a read-write token)."""
    path = request.url.path
    if not (path.startswith("/api/") or (request.method in ("GET", "HEAD") and _PRIVATE_FILE.match(path))):
        return None
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def current_user(request: Request, session: DB) -> User | None:
    """The person making the request: by API token (Bearer) or by the login cookie."""
    if hasattr(request.state, "user"):
        return request.state.user
    user: User | None = None
    request.state.token = None
    token = _bearer(request)
    if token is not None:
        row: ApiToken | None = accounts.token_owner(session, token)
        if row is None:
            raise NotAuthenticated("The API token is not valid (revoked, mistyped or from another site).",
                                   code="bad_token")
        user, request.state.token = row.user, row
    elif cookie := request.cookies.get(SESSION_COOKIE):
        # The bell's count comes with the login: a page then runs no query of its own for it.
        user = accounts.session_user(session, cookie, also=_WITH_LOGIN)
        if user is not None:
            unseen, elsewhere = session.info.pop("also")
            notify.remember_unseen(session, user.id, int(unseen or 0))
            follows.remember_elsewhere(session, user.id, bool(elsewhere))
    request.state.user = user
    if user is not None:
        accounts.note_seen(runtime(request).engine, user)
    if user is not None:
        # Loaded now, while the session is open: error pages ask for them after it closed (the
        # relationship loads lazily, so listings never load the privileges of every owner they show).
        user.privileges  # noqa: B018
    if user is not None and user.locale:
        i18n.set_current(i18n.normalize(user.locale) or i18n.current())
    return user


# Asked with the login (one tuple: the login statement is built once for it): the bell's count, and
# whether the person follows anyone elsewhere (the timeline reads posts from elsewhere only then).
_WITH_LOGIN = (notify.unseen_with(LoginSession.user_id), follows.elsewhere_with(LoginSession.user_id))

CurrentUser = Annotated[User | None, Depends(current_user)]


async def require_user(user: CurrentUser) -> User:
    if user is None:
        raise NotAuthenticated("Log in first.")
    return user


LoggedIn = Annotated[User, Depends(require_user)]


async def require_write_scope(request: Request, user: LoggedIn) -> User:
    token: ApiToken | None = getattr(request.state, "token", None)
    if token is not None and token.scope != "write":
        raise PermissionDenied("This API token is read-only.", code="read_only_token")
    return user


Writer = Annotated[User, Depends(require_write_scope)]


def csrf_token(request: Request) -> str:
    """The visitor's CSRF token (double-submit cookie), made on first need."""
    token = getattr(request.state, "csrf", None)
    if token is None:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        request.state.csrf = token
    return token


def is_bearer(request: Request) -> bool:
    """An API call authenticated by its Authorization header: no cookie, so no CSRF to fear."""
    return _bearer(request) is not None


def same_origin(request: Request) -> bool:
    """The request's Origin (or Referer) names this site, or the browser sent neither."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def check_csrf(request: Request) -> None:
    """Every state-changing browser request carries the token from the form or X-CSRF-Token."""
    if request.method in ("GET", "HEAD", "OPTIONS") or _bearer(request) is not None:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else ""
    if not cookie or not hmac.compare_digest(cookie, sent or "") or not same_origin(request):
        raise CsrfFailed("This form expired or came from another site. Reload the page and try again.")


async def throttle(request: Request) -> Throttle:
    return request.app.state.throttle


async def client_ip(request: Request) -> str:
    return security.client_ip(request, runtime(request).settings.security.trusted_proxies)


Throttles = Annotated[Throttle, Depends(throttle)]
ClientIP = Annotated[str, Depends(client_ip)]


def flash(request: Request, message: str, category: str = "info") -> None:
    request.state.flash_out = [*getattr(request.state, "flash_out", []), (category, message)]


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or getattr(request.state, "flash_read", False):
        return []
    request.state.flash_read = True
    try:
        data = URLSafeSerializer(runtime(request).settings.secret_key, salt="flash").loads(raw)
        return [(str(c), str(m)) for c, m in data][:10]
    except (BadSignature, ValueError, TypeError):
        return []


def dump_flashes(request: Request, flashes: list[tuple[str, str]]) -> str:
    return URLSafeSerializer(runtime(request).settings.secret_key, salt="flash").dumps(flashes)
