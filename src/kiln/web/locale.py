"""The language of each request (an ASGI middleware, just inside HEAD handling).

It chooses from a ``?lang=`` choice, the remembered choice (cookie), ``Accept-Language`` and the site's
default (``kiln.i18n.choose``), puts it where ``gettext`` reads it for the whole request and in
``scope["state"]["locale"]`` (the page cache keys pages by it), and says it in ``Content-Language``. A
valid ``?lang=`` on a page is remembered in a cookie for a year. The account's own setting wins once the
user is loaded (``kiln.web.deps.current_user``), so logged-in pages, which are never cached, follow it.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiln import i18n

COOKIE_AGE = 365 * 24 * 3600
SPOKEN = ("text/html", "application/json", "application/atom+xml", "text/plain")  # bodies in a language


def asked_language(query_string: bytes) -> str | None:
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=False)[:50]:
        if name == "lang":
            return value
    return None


def cookie_language(headers: Headers) -> str | None:
    raw = headers.get("cookie")
    if not raw or i18n.LANG_COOKIE not in raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header: as if there were none
        return None
    morsel = jar.get(i18n.LANG_COOKIE)
    return morsel.value if morsel else None


def request_language(scope: Scope, default: str) -> tuple[str, str | None]:
    """The language for this request, and the valid ``?lang=`` choice to remember, if any."""
    headers = Headers(scope=scope)
    asked = i18n.normalize(asked_language(scope.get("query_string", b"")))
    code = i18n.choose(asked=asked, cookie=cookie_language(headers),
                       accept_language=headers.get("accept-language"), default=default)
    return code, asked


class LocaleMiddleware:
    def __init__(self, app: ASGIApp, default: str) -> None:
        self.app, self.default = app, default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        code, asked = request_language(scope, self.default)
        scope.setdefault("state", {})["locale"] = code
        remember = asked is not None and asked != cookie_language(Headers(scope=scope))
        token = i18n.begin(code)

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                head = MutableHeaders(scope=message)
                head["content-language"] = i18n.html_lang(i18n.current())
                if head.get("content-type", "").startswith(SPOKEN) and \
                        "accept-language" not in head.get("vary", "").lower():
                    head.add_vary_header("Accept-Language")
                if remember:
                    head.append("set-cookie", f"{i18n.LANG_COOKIE}={asked}; Max-Age={COOKIE_AGE}; Path=/; "
                                              "SameSite=Lax")
            await send(message)

        try:
            await self.app(scope, receive, send_with_language)
        finally:
            i18n.end(token)
