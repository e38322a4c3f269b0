"""create_app(settings) -> the ASGI application. No I/O happens at import time."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiln.accounts.throttle import Throttle, Throttled
from kiln.config import Settings
from kiln.db.health import DatabaseBusy, DatabaseUnavailable, RequestSlots, availability_for
from kiln.db.session import REQUEST_SLOTS, WEB, reads_first
from kiln.errors import KilnError, NotAuthenticated
from kiln.imports.redirects import LegacyRedirects
from kiln.runtime import Runtime, build_runtime
from kiln.storage.base import StorageError
from kiln.web import (
    admin,
    api,
    apidocs,
    auth_pages,
    captions,
    collections,
    comments,
    federation,
    feeds,
    files,
    follow_requests,
    following,
    moderation,
    oembed,
    pages,
    panels,
    remote_posts,
    reports,
    search,
    signup,
    social,
    unfurl,
    upload_pages,
)
from kiln.web import leaving as leaving_routes
from kiln.web.caching import HttpCaching
from kiln.web.deps import (
    CSRF_COOKIE,
    FLASH_COOKIE,
    CsrfFailed,
    dump_flashes,
    is_bearer,
    same_origin,
    secure_cookies,
    wants_json,
)
from kiln.web.fragments import FragmentCache, KeptValues
from kiln.web.head import HeadAsGet
from kiln.web.locale import LocaleMiddleware
from kiln.web.security import PageHeaders
from kiln.web.templating import STATIC_DIR, FingerprintedStatic, make_templates, render

log = logging.getLogger(__name__)
FORM_BODY_LIMIT = 1024 * 1024
# Requests with a database session use at most REQUEST_SLOTS threads; the rest serve files meanwhile.
WEB_THREADS = REQUEST_SLOTS + 6
GC_THRESHOLD = 20_000  # allocations between young collections (CPython's default: 700)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or build_runtime(settings, timeouts=WEB)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Routes run in a thread pool. A request takes a database slot (on the event loop) before it
        # gets a session, so a thread never waits for a connection and a request waiting for a thread
        # holds none (kiln.db.health.RequestSlots); threads past the slots keep files flowing.
        anyio.to_thread.current_default_thread_limiter().total_tokens = WEB_THREADS
        # What is loaded by now lives as long as the process: the collector stops walking it, and it runs
        # less often (a page makes thousands of short-lived objects; full collections stalled requests).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 20)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title=f"{settings.site_name} API",
        version="1",
        description="Upload, list, edit and delete media. Authenticate with `Authorization: Bearer <token>`.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # web/apidocs.py serves the docs page and its files itself
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # Forms and JSON bodies: counted as they arrive (413 past it), before any route reads them.
        # The two upload routes stream their bodies themselves, up to each person's upload limit.
        max_body_size=FORM_BODY_LIMIT,
    )
    app.state.runtime = rt
    app.state.throttle = Throttle(settings.security, rt.sessions)
    app.state.db_slots = RequestSlots(REQUEST_SLOTS, rt.timeouts.queue, availability_for(settings.db_url))
    app.state.db_local = rt.engine.dialect.name == "sqlite"
    app.state.read_engine = reads_first(rt.engine)
    app.state.fragments = FragmentCache()  # parts of pages kept once rendered (kiln.web.fragments)
    app.state.kept = KeptValues()  # small values read once per generation (kiln.web.fragments.kept)
    app.state.templates = make_templates(settings.static_base_url, lambda key: rt.stores.public.url(key))
    app.mount("/static", FingerprintedStatic(directory=STATIC_DIR), name="static")
    # FastAPI tries routes in order, one by one: the pages people read most come first (the timeline
    # answered 9 % slower behind the 80 routes before it). No path can be answered by two modules' routes
    # (tests/test_routes.py), so the order changes no answer.
    for module in (pages, social, auth_pages, upload_pages, captions, collections, comments, panels, feeds, files, api):
        app.include_router(module.router)
    app.include_router(signup.router)
    app.include_router(leaving_routes.router)
    app.include_router(admin.router)  # /admin/users, /admin/audit and their API
    app.include_router(reports.router)
    app.include_router(moderation.router)
    app.include_router(search.router)
    app.include_router(unfurl.router)  # the embed page; oEmbed
    app.include_router(oembed.router)
    app.include_router(federation.router)  # WebFinger, NodeInfo, actors, inboxes (docs/federation.md)
    app.include_router(follow_requests.router)  # followers elsewhere waiting for approval
    app.include_router(following.router)  # following accounts elsewhere
    app.include_router(remote_posts.router)  # their posts, their files cached here, answers to them
    apidocs.install(app)
    # Innermost: an imported site's old URLs (kiln.imports.redirects), where Kiln has nothing of its own.
    app.add_middleware(LegacyRedirects, runtime=rt)
    _install_middleware(app, headers=PageHeaders(settings))
    _install_error_handlers(app)
    app.add_middleware(HttpCaching, db_url=settings.db_url, settings=settings.web, timeouts=rt.timeouts)
    app.add_middleware(LocaleMiddleware, default=settings.default_locale)  # the cache keys pages by language
    # ActivityPub GETs of a profile's address go to its actor, before the page cache keys them by path.
    app.add_middleware(federation.Negotiation, settings=settings)
    app.add_middleware(HeadAsGet)  # outermost: HEAD is a GET whose body is dropped
    return app


def respond(request: Request, status: int, code: str, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
    if status == 401 and request.method == "GET":
        return RedirectResponse(f"/auth/login?next={request.url.path}", status_code=303)
    return render(request, "error.html", status=status, code=code, message=message)


def _error_response(request: Request, exc: KilnError) -> Response:
    return respond(request, exc.status, exc.code, exc.message)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KilnError)
    async def kiln_error(request: Request, exc: KilnError) -> Response:
        message = exc.message
        if isinstance(exc, StorageError) and exc.status == 503:  # its details name hosts and buckets
            log.warning("storage error on %s: %s", request.url.path, exc.message)
            message = STORAGE_DOWN
        response = respond(request, exc.status, exc.code, message)
        if isinstance(exc, NotAuthenticated) and wants_json(request):
            response.headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, Throttled | DatabaseBusy | DatabaseUnavailable):
            response.headers["Retry-After"] = str(exc.retry_after)
        elif exc.status == 503:  # an object store that does not answer
            response.headers["Retry-After"] = "10"
        return response

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_error(request: Request, exc: Exception) -> Response:
        # A statement past its timeout, a lock held too long, a connection lost or refused: the
        # request is not the problem and trying again soon may work.
        log.warning("database error on %s: %s", request.url.path, str(exc).splitlines()[0])
        text = str(getattr(exc, "orig", exc)).lower()
        busy = isinstance(exc, PoolTimeout) or any(sign in text for sign in ("locked", "statement timeout",
                                                                              "lock timeout"))
        error = DatabaseBusy() if busy else DatabaseUnavailable()
        return await kiln_error(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {404: "There is nothing here. The page may have been deleted, or the link is wrong.",
                    405: "That action is not available here.",
                    413: "That request is too large. Forms and API calls are limited to 1 MiB; files go "
                         "through the upload page or POST /api/v1/media."}
        message = messages.get(exc.status_code, str(exc.detail))
        return respond(request, exc.status_code, "not_found" if exc.status_code == 404 else "http_error",
                       message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return respond(request, 422, "invalid", "Some fields are missing or wrong: " + "; ".join(problems))

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> Response:
        # PostgreSQL refuses NUL in text: whichever field held one, the sentence is the same.
        if "NUL" in str(exc.orig):
            return respond(request, 400, "nul_character", NUL_MESSAGE)
        return await crash(request, exc)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:  # pragma: no cover - last resort
        log.exception("unhandled error on %s", request.url.path)
        return respond(request, 500, "internal", "Something went wrong on our side. Try again in a moment.")


UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Writes whose proof is a signed token in the URL, not a login cookie: RFC 8058 one-click unsubscribe,
# which mail providers POST from their own servers (with their own Origin, if any). ActivityPub inboxes
# (federation.is_inbox) are the same: an HTTP Signature is their proof, and they never read a cookie.
SIGNED_LINK_WRITES = ("/unsubscribe",)
STORAGE_DOWN = ("The site cannot reach where it keeps its files right now, so nothing was stored or sent. "
                "Try again in a minute.")
NUL_MESSAGE = "Kiln does not accept NUL characters in text or addresses; remove them and try again."


def _install_middleware(app: FastAPI, headers: PageHeaders) -> None:
    app.add_middleware(CookiesAndHeaders, headers=headers)


class CookiesAndHeaders:
    """Refuses what no route may see (NUL in the address; a cookie-carrying write from another site),
    then gives every response the cookies the request asked for (CSRF token, flashes) and the security
    headers. A plain ASGI middleware: Starlette's BaseHTTPMiddleware ran each request through a task
    and a memory stream, a fifth of a logged-in page's time."""

    def __init__(self, app: ASGIApp, headers: PageHeaders) -> None:
        self.app, self.headers = app, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        refusal: Response | None = None
        if "\x00" in request.url.path or b"%00" in scope.get("query_string", b""):
            refusal = respond(request, 400, "nul_character", NUL_MESSAGE)
        elif (request.method in UNSAFE_METHODS and not is_bearer(request) and not same_origin(request)
                and request.url.path not in SIGNED_LINK_WRITES and not federation.is_inbox(request.url.path)):
            # Every cookie-carrying write, whichever router it is on, must come from our own pages.
            refusal = _error_response(request, CsrfFailed(
                "This form came from another site. Go to the page on this site and try again."))

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for cookie in self._cookies(request):
                    out.append("set-cookie", cookie)
                self.headers.apply_to(request, out)
            await send(message)

        await (refusal or self.app)(scope, receive, send_with_cookies)

    @staticmethod
    def _cookies(request: Request) -> list[str]:
        token = getattr(request.state, "csrf", None)
        flashes = getattr(request.state, "flash_out", [])
        if not (token and request.cookies.get(CSRF_COOKIE) != token) and not flashes \
                and not getattr(request.state, "flash_read", False):
            return []
        made = Response()  # Starlette's cookie syntax, then only its Set-Cookie headers are kept
        secure = secure_cookies(request)
        if token and request.cookies.get(CSRF_COOKIE) != token:
            made.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax", secure=secure)
        if flashes:
            made.set_cookie(FLASH_COOKIE, dump_flashes(request, flashes), httponly=True, samesite="lax",
                            secure=secure, max_age=120)
        elif getattr(request.state, "flash_read", False):
            made.delete_cookie(FLASH_COOKIE)
        return [value.decode("latin-1") for name, value in made.raw_headers if name == b"set-cookie"]
