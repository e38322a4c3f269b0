"""create_app(settings) -> the ASGI application. No I/O happens at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiln.accounts.throttle import Throttle, Throttled
from kiln.config import Settings
from kiln.db.session import POOL_SIZE
from kiln.errors import KilnError, NotAuthenticated
from kiln.runtime import Runtime, build_runtime
from kiln.web import api, apidocs, auth_pages, feeds, files, pages, panels, upload_pages
from kiln.web.caching import HttpCaching
from kiln.web.deps import (
    CSRF_COOKIE,
    FLASH_COOKIE,
    CsrfFailed,
    dump_flashes,
    is_bearer,
    same_origin,
    secure_cookies,
)
from kiln.web.head import HeadAsGet
from kiln.web.security import PageHeaders
from kiln.web.templating import STATIC_DIR, FingerprintedStatic, make_templates, render

log = logging.getLogger(__name__)
FORM_BODY_LIMIT = 1024 * 1024
WEB_THREADS = POOL_SIZE // 2  # a request may hold two connections (its session and a throttle counter)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Routes run in a thread pool and each holds a pooled database connection until its response
        # is sent. No more threads than the pool has connections: a thread waiting for a connection
        # held by a request that needs a thread to finish would wait forever.
        anyio.to_thread.current_default_thread_limiter().total_tokens = WEB_THREADS
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
    app.state.templates = make_templates(settings.static_base_url, lambda key: rt.stores.public.url(key))
    app.mount("/static", FingerprintedStatic(directory=STATIC_DIR), name="static")
    for module in (pages, auth_pages, upload_pages, panels, feeds, files, api):
        app.include_router(module.router)
    apidocs.install(app)
    _install_middleware(app, headers=PageHeaders(settings))
    _install_error_handlers(app)
    app.add_middleware(HttpCaching, db_url=settings.db_url, settings=settings.web)
    app.add_middleware(HeadAsGet)  # outermost: HEAD is a GET whose body is dropped
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def respond(request: Request, status: int, code: str, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
    if status == 401 and request.method == "GET":
        return RedirectResponse(f"/auth/login?next={request.url.path}", status_code=303)
    return render(request, "error.html", status=status, code=code, message=message)


def _error_response(request: Request, exc: KilnError) -> Response:
    return respond(request, exc.status, exc.code, exc.message)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KilnError)
    async def kiln_error(request: Request, exc: KilnError) -> Response:
        response = respond(request, exc.status, exc.code, exc.message)
        if isinstance(exc, NotAuthenticated) and _wants_json(request):
            response.headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, Throttled):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

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
NUL_MESSAGE = "Kiln does not accept NUL characters in text or addresses; remove them and try again."


def _install_middleware(app: FastAPI, headers: PageHeaders) -> None:
    @app.middleware("http")
    async def cookies_and_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        if "\x00" in request.url.path or b"%00" in request.scope.get("query_string", b""):
            return respond(request, 400, "nul_character", NUL_MESSAGE)
        if request.method in UNSAFE_METHODS and not is_bearer(request) and not same_origin(request):
            # Every cookie-carrying write, whichever router it is on, must come from our own pages.
            exc = CsrfFailed("This form came from another site. Go to the page on this site and try again.")
            response: Response = _error_response(request, exc)
        else:
            response = await call_next(request)
        token = getattr(request.state, "csrf", None)
        secure = secure_cookies(request)
        if token and request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax", secure=secure)
        flashes = getattr(request.state, "flash_out", [])
        if flashes:
            response.set_cookie(FLASH_COOKIE, dump_flashes(request, flashes), httponly=True, samesite="lax",
                                secure=secure, max_age=120)
        elif getattr(request.state, "flash_read", False):
            response.delete_cookie(FLASH_COOKIE)
        headers.apply(request, response)
        return response
