"""Languages: which one a request speaks, the translated strings, and numbers and dates in its forms.

Every sentence for people is an English ``msgid`` looked up in a gettext catalogue through Babel. The
catalogues are the ``.po`` files under ``kiln/translations/<locale>/LC_MESSAGES/`` (docs/translating.md);
each is compiled in memory the first time a process needs it, so there are no ``.mo`` files to go stale.

The language of a request (``choose``): the account's setting, then a ``?lang=`` choice (remembered in a
cookie), then ``Accept-Language``, then the site's default. The ASGI middleware in ``kiln.web.locale``
puts it in a per-request box that ``gettext`` and the formatters read; code outside a request (the
worker, the CLI, mail to a person) picks one with ``use_locale``.

Mark a string for the catalogue where it is written:

- ``_("...")``, ``ngettext(singular, plural, n)``: translated now, in the current language.
- ``N_("...")``: only marked (a constant, an error's sentence); translated when shown. A ``KilnError``
  takes such a msgid and its parameters and says it in the language of whoever reads it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

TRANSLATIONS = Path(__file__).parent / "translations"
DOMAIN = "messages"
SOURCE = "en"  # the language msgids are written in
LANG_COOKIE = "kiln_lang"
# Scripts written right to left: the page gets dir="rtl" and its layout mirrors.
RTL_SCRIPTS = {"ar", "fa", "he", "ur", "ps", "yi", "dv", "ku", "sd", "ug"}


@functools.cache
@functools.cache
def available() -> tuple[str, ...]:
    """English and every locale with a catalogue, in a stable order (read once: catalogues ship with
    the code; every page's language menu asks)."""
    found = sorted(p.name for p in TRANSLATIONS.iterdir() if (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()) \
        if TRANSLATIONS.is_dir() else []
    return (SOURCE, *[code for code in found if code != SOURCE])


@functools.cache
def _available() -> frozenset[str]:
    return frozenset(available())


def normalize(code: str | None) -> str | None:
    """A language tag as Kiln names its locales (``pt-BR`` -> ``pt_BR``), or None if Kiln has no such
    language. A tag Kiln has only the language of (``de-AT``) gives that language (``de``)."""
    if not code or len(code) > 35 or not re.fullmatch(r"[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*", code):
        return None
    parts = code.replace("-", "_").split("_")
    have = _available()
    candidates = [parts[0].lower()]
    if len(parts) > 1:
        candidates.insert(0, f"{parts[0].lower()}_{parts[1].upper() if len(parts[1]) == 2 else parts[1].title()}")
    for candidate in candidates:
        if candidate in have:
            return candidate
    return None


def parse_accept_language(header: str | None) -> list[str]:
    """The tags of an Accept-Language header, most wanted first (q=0 dropped; at most 20 read)."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def choose(*, account: str | None = None, asked: str | None = None, cookie: str | None = None,
           accept_language: str | None = None, default: str = SOURCE) -> str:
    """The language to answer in: the account's setting, a ``?lang=`` choice, the remembered choice,
    the browser's languages, the site's default."""
    for code in (account, asked, cookie):
        if (found := normalize(code)) is not None:
            return found
    for tag in parse_accept_language(accept_language):
        if (found := normalize(tag)) is not None:
            return found
    return normalize(default) or SOURCE


# Catalogues ------------------------------------------------------------------------------------

def po_path(code: str) -> Path:
    return TRANSLATIONS / code / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(code: str) -> NullTranslations:
    """The compiled catalogue of a locale (English: the msgids themselves)."""
    path = po_path(code)
    if code == SOURCE or not path.is_file():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=code, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


@functools.cache
def locale_of(code: str) -> Locale:
    try:
        return Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(SOURCE)


def direction(code: str) -> str:
    return "rtl" if code.split("_")[0] in RTL_SCRIPTS else "ltr"


@functools.cache
def native_name(code: str) -> str:
    """The language's name in itself ("Deutsch", "العربية"), for the language menu."""
    name = locale_of(code).get_display_name(locale_of(code)) or code
    return name[:1].upper() + name[1:]


def html_lang(code: str) -> str:
    return code.replace("_", "-")


# The current language --------------------------------------------------------------------------

@dataclass
class LocaleBox:
    """The language of one request. A box rather than a bare value so that code running in a copy of
    the request's context (a sync dependency in the thread pool) can still change it: the account's
    setting is known only once the user is loaded."""

    code: str = SOURCE


_current: ContextVar[LocaleBox] = ContextVar("kiln_locale", default=LocaleBox())  # noqa: B039 (read-only default)


def current() -> str:
    return _current.get().code


def set_current(code: str) -> None:
    """Change the language of the current request (or ``use_locale`` block)."""
    box = _current.get()
    if box is _DEFAULT_BOX:  # never change the shared default; start a box for this context
        _current.set(LocaleBox(code))
    else:
        box.code = code


_DEFAULT_BOX = _current.get()


def begin(code: str) -> Any:
    """Start a new box for a request; returns the token to ``end`` it with."""
    return _current.set(LocaleBox(code))


def end(token: Any) -> None:
    _current.reset(token)


@contextlib.contextmanager
def use_locale(code: str | None) -> Iterator[str]:
    """Speak ``code`` (or the source language) inside the block: mail to a person in their language."""
    chosen = normalize(code) or SOURCE
    token = _current.set(LocaleBox(chosen))
    try:
        yield chosen
    finally:
        _current.reset(token)


# Translating -----------------------------------------------------------------------------------

def gettext(message: str) -> str:
    return translations(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return str(translations(current()).pgettext(context, message))


_ = gettext


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark ``message`` for the catalogue without translating it now (it is translated when shown)."""
    return message


def Nn_(singular: str, plural: str) -> tuple[str, str]:  # noqa: N802 (the gettext convention)
    """Mark a sentence with plural forms for the catalogue: ``KilnError(Nn_("%(n)s file", "%(n)s files"),
    n=count)`` picks the form by ``n`` in the reader's language when it is shown."""
    return singular, plural


def interpolate(text: str, params: Mapping[str, Any]) -> str:
    """``text % params`` with numbers, sizes and dates written the current language's way."""
    if not params:
        return text
    shown = {name: show(value) for name, value in params.items()}
    try:
        return text % shown
    except (KeyError, ValueError, TypeError):  # a translation that lost a placeholder: say it in English
        return text


def translate(msgid: str, params: Mapping[str, Any] | None = None) -> str:
    return interpolate(gettext(msgid), params or {})


def translate_plural(singular: str, plural: str, n: int, params: Mapping[str, Any] | None = None) -> str:
    return interpolate(ngettext(singular, plural, n), {"n": n, **(params or {})})


# Formats ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Size:
    """A byte count as a message parameter: shown with ``format_size`` in the reader's language."""

    bytes: int

    def __str__(self) -> str:
        from kiln.units import format_size

        return format_size(self.bytes)


@dataclass(frozen=True)
class Label:
    """A msgid marked with ``N_`` as a message parameter (a kind's name, what read a file): said in
    the reader's language where the message is shown, and stored as the msgid."""

    msgid: str

    def __str__(self) -> str:
        return self.msgid


def show(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return format_number(value)
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return format_date(value)
    if isinstance(value, Label):
        return gettext(value.msgid)
    if isinstance(value, Size):  # "1.5 KiB" with the language's decimal sign ("1,5 KiB")
        return str(value).replace(".", decimal_symbol())
    return value


def to_json(value: Any) -> Any:
    """A message parameter as JSON (a ``Size`` keeps that it is one)."""
    if isinstance(value, Size):
        return {"size": value.bytes}
    if isinstance(value, Label):
        return {"label": value.msgid}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"size"} and isinstance(value["size"], int):
        return Size(value["size"])
    if isinstance(value, dict) and set(value) == {"label"} and isinstance(value["label"], str):
        return Label(value["label"])
    return value


def say_stored(stored: Mapping[str, Any] | None, fallback: str | None) -> str | None:
    """A sentence kept as msgid and parameters (``KilnError.stored``), in the current language; the
    stored English text when there is none (rows written before sentences were kept this way)."""
    if not stored or not isinstance(stored.get("msgid"), str):
        return fallback
    params = stored.get("params")
    if not isinstance(params, dict):
        params = {}
    params = {k: _from_json(v) for k, v in params.items()}
    plural, n = stored.get("plural"), stored.get("n")
    if isinstance(plural, str) and isinstance(n, int):
        said = translate_plural(stored["msgid"], plural, n, params)
    else:
        said = translate(stored["msgid"], params)
    then = stored.get("then")  # a further whole sentence ("Kiln tried 3 times and gave up.")
    if isinstance(then, dict) and (more := say_stored(then, None)):
        said = f"{said} {more}"
    return said


def format_number(value: int | float | Decimal) -> str:
    if type(value) is int and -1000 < value < 1000:
        return str(value)  # what Babel writes for these in every locale (Latin digits, no grouping); 50x faster
    return babel_numbers.format_decimal(value, locale=locale_of(current()))


def decimal_symbol() -> str:
    return babel_numbers.get_decimal_symbol(locale_of(current()))


def format_datetime(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return _datetime_in(value.astimezone(dt.UTC), current())


@functools.lru_cache(maxsize=8192)
def _datetime_in(value: dt.datetime, code: str) -> str:
    """A UTC time said in a language (cached: a page of fifty comments says fifty of them)."""
    locale = locale_of(code)
    time = babel_dates.format_time(value, "HH:mm", tzinfo=dt.UTC, locale=locale)
    date = babel_dates.format_date(value, "long", locale=locale)
    pattern = locale.datetime_formats.get("medium", "{1}, {0}")
    return str(pattern).replace("{1}", date).replace("{0}", time) + " UTC"


def format_date(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return ""
    return babel_dates.format_date(value, "long", locale=locale_of(current()))


def format_short_date(value: dt.date | dt.datetime | None) -> str:
    """A day said briefly (6 Dec 2026), for gallery cards; a time counts by its day in UTC."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).date()
    return _short_date_in(value, current())


@functools.lru_cache(maxsize=4096)
def _short_date_in(day: dt.date, code: str) -> str:
    return babel_dates.format_date(day, "medium", locale=locale_of(code))


# JavaScript ------------------------------------------------------------------------------------

JS_MARKER = "static/"  # catalogue entries found in the web's static JavaScript


@functools.cache
def js_messages(code: str) -> dict[str, Any]:
    """What the browser's ``_()`` and ``ngettext()`` look up (static/i18n.js), for one locale.

    Singular messages map to their translation. A plural message maps its singular to the text for
    each CLDR plural category ("one", "few", "other"...) so the browser can pick with
    ``Intl.PluralRules`` and no plural formula has to be evaluated there."""
    path = po_path(code)
    if code == SOURCE or not path.is_file():
        return {}
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=code, domain=DOMAIN)
    translated = translations(code)
    rules = locale_of(code).plural_form
    samples: dict[str, int] = {}
    for n in range(0, 1001):
        samples.setdefault(rules(n), n)
    out: dict[str, Any] = {}
    for message in catalog:
        if not message.id or message.fuzzy or not any(JS_MARKER in str(where) for where, _ in message.locations):
            continue
        if isinstance(message.id, tuple | list):
            singular, plural = message.id[0], message.id[1]
            out[singular] = {category: translated.ngettext(singular, plural, n) for category, n in samples.items()}
        elif message.string:
            out[message.id] = message.string
    return out
