"""Jinja2 templates and the helpers every page uses."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from babel import numbers as babel_numbers
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader, FunctionLoader, PrefixLoader, pass_context
from markupsafe import Markup, escape

from kiln import i18n, plugins
from kiln.media import captions
from kiln.media.licenses import LICENSES, get_license
from kiln.media.models import ALT_TEXT_MAX
from kiln.media.services import MAX_TITLE, downloads
from kiln.media.text import render_markdown, sanitise_html
from kiln.mediatypes import accepted, kind_template, placeholder_src
from kiln.mediatypes.image.camera import camera_details
from kiln.social.comments import body_html as comment_body_html
from kiln.units import format_size
from kiln.web.deps import csrf_token, pop_flashes
from kiln.web.fragments import cached_fragment

WEB = Path(__file__).parent
PLACES = ("after_display", "details", "actions")  # where plugins may add blocks (kiln_media_page_block)
STATIC_DIR = WEB / "static"


def _fingerprints() -> dict[str, str]:
    return {
        str(p.relative_to(STATIC_DIR)): hashlib.sha256(p.read_bytes()).hexdigest()[:10]
        for p in STATIC_DIR.rglob("*") if p.is_file()
    }


class FingerprintedStatic(StaticFiles):
    """Static files. Pages link them as ``?v=<hash of the content>``, so such a URL's bytes never
    change: browsers and proxies may keep them a year without asking again."""

    def file_response(self, full_path: Any, stat_result: Any, scope: Any, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if b"v=" in scope.get("query_string", b""):
            response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


class _LazyToken:
    """The CSRF token, made only if a template prints it: a page without a form sets no cookie, so it
    is the same for every anonymous visitor and can be cached."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def __str__(self) -> str:
        return csrf_token(self.request)

    __html__ = __str__


def make_templates(static_base: str | None, media_src: Callable[[list[str]], str]) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(WEB / "templates"))
    # Templates ship with the code: checking every file's time on every render cost 2 % of a page.
    templates.env.auto_reload = False
    templates.env.loader = ChoiceLoader([
        FileSystemLoader(str(WEB / "templates")),
        # "kinds/<kind>/display.html": each kind's part of the page, next to its code (a plugin's too)
        PrefixLoader({"kinds": FunctionLoader(kind_template)}),
    ])
    prints = _fingerprints()
    base = (static_base or "/static").rstrip("/")

    def static(path: str) -> str:
        return f"{base}/{path}?v={prints.get(path, '0')}"

    env = templates.env
    env.add_extension("jinja2.ext.i18n")
    # newstyle: {{ _("%(n)s items", n=3) }} formats and escapes its arguments, in the request's language
    # (the extension adds install_gettext_callables to the environment at run time: Environment.extend)
    cast(Any, env).install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext)
    env.globals.update(current_locale=i18n.current, html_lang=i18n.html_lang, text_direction=i18n.direction,
                       language_menu=language_menu, format_number=i18n.format_number,
                       js_messages=lambda: i18n.js_messages(i18n.current()))
    env.globals.update(static=static, media_src=media_src, licenses=LICENSES, get_license=get_license,
                       accepted_kinds=accepted, placeholder_src=placeholder_src,
                       camera_details=camera_details, max_title=MAX_TITLE, max_alt_text=ALT_TEXT_MAX,
                       plugin_blocks=plugin_blocks, captions_of=captions.captions_of,
                       caption_languages=lambda: captions.language_choices(i18n.current()))
    env.globals.update(avatar_url=lambda user, size=64: avatar_url(user, size, media_src), initials=initials,
                       unseen_notifications=unseen_notifications, notification_mail_choices=_mail_choices,
                       cached_fragment=cached_fragment, downloads=downloads)
    env.filters["markdown"] = render_markdown
    env.filters["comment_html"] = comment_body_html
    env.filters["remote_html"] = sanitise_html  # a post from elsewhere: the allow-list again, as shown
    env.filters["host_of"] = lambda address: urlsplit(str(address)).hostname or ""
    env.filters["filesize"] = format_size  # static/sizes.js says the same in the browser
    env.filters["datetime"] = i18n.format_datetime
    env.filters["date"] = i18n.format_date
    env.filters["short_date"] = i18n.format_short_date
    env.filters["number"] = i18n.format_number
    env.filters["percent"] = format_percent
    return templates


def avatar_url(user: Any, size: int, media_src: Callable[[list[str]], str]) -> str | None:
    """The URL of ``user``'s square avatar closest to ``size`` px (64 or 256), or None: show initials."""
    keys = getattr(user, "avatar", None) or {}
    key = keys.get("64" if size <= 64 else "256")
    return media_src(list(key)) if key else None


def initials(user: Any) -> str:
    """One or two letters for an avatar-less person: the first letters of their display name's words."""
    words = (getattr(user, "display_name", "") or getattr(user, "username", "") or "?").split()
    return "".join(w[0] for w in words[:2]).upper() or "?"


@pass_context
def unseen_notifications(context: Any) -> int:
    """The bell's count for the logged-in reader: one indexed count, only on their (never cached) pages."""
    request, user = context.get("request"), context.get("user")
    state = getattr(request, "state", None)
    session = getattr(state, "db", None)
    if user is None or session is None or not getattr(state, "db_slot", False):  # an error page after the route
        return 0
    from kiln.social.notify import unseen_count

    return unseen_count(session, user.id)


def _mail_choices(user: Any) -> list[tuple[str, str, str]]:
    from kiln.social.notify_mail import mail_choices

    return mail_choices(user)


def format_percent(fraction: float | None) -> str:
    """A fraction (0.13) as a whole percentage the current language's way: "13%", "13 %", "%13"."""
    return babel_numbers.format_percent(fraction or 0, locale=i18n.locale_of(i18n.current()))


@functools.cache
def language_menu() -> tuple[tuple[str, str, str], ...]:
    """(code, name in itself, html lang) of every language the site speaks, for the menu on every page
    (the same on every page: made once)."""
    return tuple((code, i18n.native_name(code), i18n.html_lang(code)) for code in i18n.available())


@pass_context
def plugin_blocks(context: Any, place: str, media: Any) -> Markup:
    """The plugins' fragments for one place of the media page: a str is escaped, Markup kept."""
    if place not in PLACES:
        raise ValueError(f"No plugin place called {place!r}.")
    settings = context["request"].app.state.runtime.settings
    answers = plugins.collect("kiln_media_page_block", place=place, media=media, settings=settings)
    return Markup("\n").join(escape(answer) for answer in answers)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    rt = request.app.state.runtime
    context.setdefault("user", getattr(request.state, "user", None))
    context.update(
        request=request,
        site_name=rt.settings.site_name,
        csrf_token=_LazyToken(request),
        flashes=pop_flashes(request) + getattr(request.state, "flash_out", []),
    )
    request.state.flash_out = []
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


def render_block(request: Request, template: str, block: str, **context: Any) -> str:
    """One block of a page template, alone (for a part of a page kept in kiln.web.fragments): the same
    context as ``render`` but the flashes, which stay for the page around it."""
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("csrf_token", _LazyToken(request))
    context.update(request=request, site_name=request.app.state.runtime.settings.site_name, flashes=[])
    page = request.app.state.templates.get_template(template)
    return "".join(page.blocks[block](page.new_context(context)))
