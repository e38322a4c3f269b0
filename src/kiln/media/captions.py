"""Captions and subtitles for video and audio: WebVTT or SRT files the owner attaches, one per language.

An uploaded caption file is hostile input like any upload: at most 512 KiB, text in UTF-8 (UTF-16 with
a byte order mark and Windows-1252, common for old SRT files, are read too), parsed by pysubs2, its cue
text stripped of every tag (WebVTT's and SRT's styling and anything else) and control character, each
cue checked (a start before its end, within the item's duration, at most 1,000 characters), and written
out again by Kiln as plain WebVTT. What a browser loads is therefore always Kiln's own, simple file.

The file is kept as a rendition of the item named ``captions-<language>`` (``text/vtt``), so everything
that moves, hides, migrates, collects or deletes renditions carries captions too. Reprocessing never
touches them: no kind's spec makes a rendition of that name (``is_caption``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from babel import Locale, UnknownLocaleError
from babel.localedata import locale_identifiers
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln import i18n
from kiln.db.base import utcnow
from kiln.errors import InvalidInput, NotFound
from kiln.i18n import Size
from kiln.media.models import MediaEntry, Rendition, new_key_token
from kiln.typed import clean_typed

if TYPE_CHECKING:
    from kiln.accounts.models import User
    from kiln.runtime import Runtime

PREFIX = "captions-"
KINDS = ("video", "audio")
MAX_BYTES = 512 * 1024
MAX_CUES = 10_000
MAX_CUE_CHARS = 1_000
MAX_TRACKS = 20
LAST_CUE_SLACK_S = 2.0  # a last cue may end a little after the media does
MIME = "text/vtt"


class CaptionsRefused(InvalidInput):
    code = "bad_captions"


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


def is_caption(rendition_name: str) -> bool:
    return rendition_name.startswith(PREFIX)


def captions_of(media: MediaEntry) -> list[Rendition]:
    """The item's caption tracks, in the order of their labels."""
    return sorted((r for r in media.renditions if is_caption(r.name)), key=lambda r: str(r.spec.get("label", "")))


# Languages -------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _language_codes() -> tuple[str, ...]:
    return tuple(sorted(code for code in locale_identifiers() if "_" not in code and code != "root"))


@lru_cache(maxsize=32)
def language_choices(display_locale: str) -> list[tuple[str, str]]:
    """(code, name in the reader's language) of every language CLDR knows, sorted by that name."""
    shown = Locale.parse(display_locale)
    choices = []
    for code in _language_codes():
        name = Locale.parse(code).get_display_name(shown) or code
        choices.append((code.replace("_", "-"), name[:1].upper() + name[1:]))
    return sorted(choices, key=lambda item: item[1].casefold())


def language_of(code: str) -> tuple[str, str]:
    """A BCP 47 language tag checked against CLDR (``pt-BR``), and its name in its own language."""
    raw = (code or "").strip()
    if not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}", raw):
        raise CaptionsRefused("Choose the language of the captions from the list.", code="bad_language")
    try:
        locale = Locale.parse(raw.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise CaptionsRefused("Choose the language of the captions from the list.", code="bad_language") from None
    tag = str(locale).replace("_", "-")
    name = locale.get_display_name(locale) or tag
    return tag, name[:1].upper() + name[1:]


# Reading a caption file ------------------------------------------------------------------------------
def decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise _not_text() from None
    if b"\x00" in data:
        raise _not_text()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise _not_text() from None


def _not_text() -> CaptionsRefused:
    return CaptionsRefused("This is not a text file. Captions must be a WebVTT (.vtt) or SubRip (.srt) file.",
                           code="captions_not_text")


def _clock(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 3600}:{seconds // 60 % 60:02}:{seconds % 60:02}"


def parse(data: bytes, duration_s: float | None = None) -> tuple[list[Cue], str]:
    """The cues of a WebVTT or SRT file, and which of the two it was; refused with a reason."""
    import pysubs2

    if len(data) > MAX_BYTES:
        raise CaptionsRefused("This caption file is %(size)s; the limit is %(limit)s.", code="captions_too_large",
                              size=Size(len(data)), limit=Size(MAX_BYTES))
    text = decode(data).replace("\r\n", "\n").replace("\r", "\n")
    source = "vtt" if text.lstrip().startswith("WEBVTT") else "srt"
    try:
        events = pysubs2.SSAFile.from_string(text, format_=source).events
    except (pysubs2.Pysubs2Error, ValueError, IndexError, KeyError):
        events = []
    cues: list[Cue] = []
    for event in events:
        if event.is_comment:
            continue
        if len(cues) >= MAX_CUES:
            raise CaptionsRefused("This file has more than %(max)s captions; Kiln takes at most that many.",
                                  code="too_many_cues", max=MAX_CUES)
        words = "\n".join(line.strip() for line in clean_typed(event.plaintext.replace("\t", " ")).split("\n"))
        words = words.strip()
        if not words:
            continue
        if len(words) > MAX_CUE_CHARS:
            raise CaptionsRefused("The caption at %(time)s has %(length)s characters; one caption can have at "
                                  "most %(max)s.", code="cue_too_long", time=_clock(event.start),
                                  length=len(words), max=MAX_CUE_CHARS)
        if event.start < 0 or event.end <= event.start:
            raise CaptionsRefused("The caption at %(time)s ends before it starts.", code="cue_backwards",
                                  time=_clock(max(event.start, 0)))
        if duration_s is not None and event.start > (duration_s + LAST_CUE_SLACK_S) * 1000:
            raise CaptionsRefused("A caption starts at %(time)s, but the item is only %(length)s long. Is this the "
                                  "caption file of another item?", code="cue_after_end", time=_clock(event.start),
                                  length=_clock(int(duration_s * 1000)))
        cues.append(Cue(event.start, event.end, words))
    if not cues:
        raise CaptionsRefused("No captions were found in this file. Captions must be a WebVTT (.vtt) or SubRip "
                              "(.srt) file.", code="no_cues")
    cues.sort(key=lambda cue: (cue.start_ms, cue.end_ms))
    return cues, source


def _timestamp(ms: int) -> str:
    return f"{ms // 3_600_000:02}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02}.{ms % 1000:03}"


def to_webvtt(cues: list[Cue]) -> bytes:
    """Kiln's own WebVTT: a header, then each cue's times and its text with &, < and > escaped."""
    out = ["WEBVTT", ""]
    for cue in cues:
        text = cue.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = re.sub(r"-->", "--&gt;", text)
        out += [f"{_timestamp(cue.start_ms)} --> {_timestamp(cue.end_ms)}", text, ""]
    return "\n".join(out).encode("utf-8")


# Attaching and removing ------------------------------------------------------------------------------
def _check(media: MediaEntry) -> None:
    if media.kind not in KINDS:
        raise CaptionsRefused("Captions can be added to videos and audio only.", code="captions_wrong_kind")


def attach(rt: Runtime, session: Session, user: User, media: MediaEntry, data: bytes, filename: str,
           language: str, label: str | None = None) -> Rendition:
    """Check a caption file and keep it as the item's track for ``language`` (replacing one there).

    The bytes are stored before the row that points at them commits, under a key made beforehand, with
    no transaction open; the row is written with the item locked, so a visibility change (a new key
    token) in between is noticed and the file moved to the item's current keys."""
    from kiln.media.services import check_owner

    check_owner(user, media)
    _check(media)
    tag, name = language_of(language)
    label = clean_typed((label or "").strip())[:80] or name
    duration = (media.info or {}).get("duration")
    cues, source = parse(data, float(duration) if isinstance(duration, int | float) and duration > 0 else None)
    body = to_webvtt(cues)
    rendition_name = PREFIX + tag
    tracks = [r for r in media.renditions if is_caption(r.name) and r.name != rendition_name]
    if len(tracks) >= MAX_TRACKS:
        raise CaptionsRefused("An item can have at most %(max)s caption tracks. Remove one first.",
                              code="too_many_tracks", max=MAX_TRACKS)
    media_id, token = media.id, media.key_token
    filename_part = f"{rendition_name}-{new_key_token()[:8]}.vtt"
    session.commit()  # nothing held while the file is stored
    key = ["entries", str(media_id), *([token] if token else []), filename_part]  # as MediaEntry.rendition_key
    rt.stores.public.save(key, io.BytesIO(body))
    stored = [key]
    replaced: list[str] | None = None
    try:
        locked = session.scalar(select(MediaEntry).where(MediaEntry.id == media_id).with_for_update()
                                .execution_options(populate_existing=True))
        if locked is None:
            raise NotFound("There is no such media. It may have been deleted.")
        if locked.key_token != token:  # made private or public meanwhile: the file follows the new token
            moved = locked.rendition_key(filename_part)
            rt.stores.public.save(moved, io.BytesIO(body))
            stored.append(moved)
            key = moved
        row = locked.rendition(rendition_name)
        if row is None:
            row = Rendition(media_id=media_id, name=rendition_name)
            session.add(row)
        else:
            replaced = list(row.key)
        row.key, row.mime_type, row.width, row.height = key, MIME, None, None
        row.size_bytes, row.spec_fingerprint, row.created = len(body), "", utcnow()
        row.spec = {"language": tag, "label": label, "cues": len(cues), "source": source,
                    "original_name": clean_typed(filename or "")[:255]}
        locked.updated = utcnow()
        session.commit()
    except BaseException:
        session.rollback()
        for written in stored:
            rt.stores.public.delete(written)
        raise
    for old in stored[:-1]:
        rt.stores.public.delete(old)
    if replaced is not None:
        rt.stores.public.delete(replaced)
    return row


def remove(rt: Runtime, session: Session, user: User, media: MediaEntry, language: str) -> None:
    from kiln.media.services import check_owner

    check_owner(user, media)
    row = media.rendition(PREFIX + (language or "").strip())
    if row is None:
        raise NotFound("This item has no captions in that language.", code="no_such_captions")
    key = list(row.key)
    session.delete(row)
    media.updated = utcnow()
    session.commit()
    rt.stores.public.delete(key)  # after the commit: a crash leaves a spare file for gc, never a dead link


def caption_json(rt: Runtime, media: MediaEntry, row: Rendition, base: str) -> dict[str, Any]:
    from kiln.media.visibility import rendition_src

    return {"language": row.spec.get("language"), "label": row.spec.get("label"), "cues": row.spec.get("cues"),
            "url": rendition_src(rt, media, row, base)}


def say_language(code: str) -> str:
    """A language's name in the reader's language (for lists of tracks)."""
    try:
        return Locale.parse(code.replace("-", "_")).get_display_name(Locale.parse(i18n.current())) or code
    except (ValueError, UnknownLocaleError):
        return code
