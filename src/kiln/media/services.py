"""Media: taking uploads in, editing, deleting, listing, and the JSON shape of an item."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, lazyload, selectinload

from kiln import plugins
from kiln.accounts.models import User
from kiln.config import Settings
from kiln.db.base import utcnow
from kiln.errors import InvalidInput, KilnError, NotFound, PermissionDenied
from kiln.i18n import N_, Size, _, interpolate
from kiln.media import captions
from kiln.media.licenses import get_license, is_known
from kiln.media.models import (
    ALT_TEXT_MAX,
    MEDIA_STATES,
    MediaEntry,
    MediaState,
    Rendition,
    Tag,
    UploadKey,
    media_tags,
    new_key_token,
)
from kiln.media.space import FULL, is_disk_full
from kiln.media.text import parse_tags
from kiln.media.visibility import change_visibility, check_visibility, rendition_src, visible
from kiln.mediatypes import extension_for, get_kind, identify
from kiln.mediatypes.base import THUMBNAILS, StripsMetadata
from kiln.processing import ledger
from kiln.processing.admission import ring_bells
from kiln.processing.limits import HOST
from kiln.runtime import Runtime
from kiln.storage.base import CHUNK, copy_to_local, put_local_file, save_local_file
from kiln.typed import clean_typed


class TooLarge(InvalidInput):
    code = "too_large"
    status = 413


@dataclass
class MediaFields:
    title: str | None = None
    description: str | None = None
    alt_text: str | None = None
    tags: str | list[str] | None = None
    license: str | None = None
    show_exif: bool | None = None
    visibility: str | None = None
    comments_enabled: bool | None = None

    def __post_init__(self) -> None:
        """Control characters mean nothing in text people typed (see kiln.typed)."""
        for name in ("title", "description", "alt_text", "license", "visibility"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, clean_typed(value))
        if isinstance(self.tags, str):
            self.tags = clean_typed(self.tags)
        elif isinstance(self.tags, list):
            self.tags = [clean_typed(t) if isinstance(t, str) else t for t in self.tags]


def upload_limit(settings: Settings, user: User) -> int:
    """The largest upload this person may send in one request: their own limit when an admin set
    one (lower or higher than the site's), else the site's max_upload_bytes."""
    return user.upload_limit_bytes if user.upload_limit_bytes is not None else settings.max_upload_bytes


def too_large(limit: int) -> TooLarge:
    return TooLarge("The file is larger than your %(limit)s upload limit.", limit=Size(limit))


def set_upload_limit(user: User, limit: int | None) -> None:
    """Give a person their own upload limit in bytes, or None for the site's (the caller commits)."""
    if limit is not None and not 1 <= limit <= 2**63 - 1:
        raise InvalidInput("An upload limit must be at least 1 byte.", code="bad_limit")
    user.upload_limit_bytes = limit


def check_can_upload(owner: User) -> None:
    """Refuse people who may not upload; routes call it before reading a byte of the body."""
    if not owner.has("uploader") or owner.banned_now:
        raise PermissionDenied("This account is not allowed to upload.", code="not_uploader")
    if not owner.is_active:
        raise PermissionDenied("Confirm your email address first: open the link we mailed you "
                               "(you can ask for a new one on your account page).", code="not_verified")


@dataclass(frozen=True)
class Spooled:
    """An upload already copied into the workbench: its temporary file, size and sha256 (hex)."""
    path: Path
    size: int
    sha256: str


def workbench_file(settings: Settings) -> tuple[int, Path]:
    """A new private temporary file in the workbench, as (open descriptor, path). Its name carries this
    host and process (``upload-HOST-PID-RANDOM``), so the sweeper can remove it if the process dies
    mid-upload (see ``processing.service.clean_workbench``)."""
    settings.workbench_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"upload-{HOST}-{os.getpid()}-", dir=settings.workbench_dir)
    return fd, Path(name)


def spool(settings: Settings, source: BinaryIO, limit: int) -> Spooled:
    """Stream a file object to the workbench, hashing as it goes; refuse past the size limit."""
    fd, path = workbench_file(settings)
    size, sha = 0, hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                sha.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(path, size, sha.hexdigest())


def _store_upload(rt: Runtime, key: list[str], path: Path) -> None:
    """The upload into the private queue store, safe from a power cut: where that store is a folder on
    the workbench's disk, the file's bytes are synced and it is linked in (no copy of the original);
    elsewhere the store copies it."""
    if getattr(rt.stores.queue, "link_in", None) is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    put_local_file(rt.stores.queue, key, path, durable=True)


def submit(rt: Runtime, session: Session, owner: User, source: BinaryIO, filename: str,
           fields: MediaFields) -> MediaEntry:
    """Take an upload from a file object (the CLI, scripts): spool it, then `submit_spooled`."""
    check_can_upload(owner)
    spooled = spool(rt.settings, source, upload_limit(rt.settings, owner))
    return submit_spooled(rt, session, owner, spooled, filename, fields)


def upload_for_key(session: Session, owner: User, key: str) -> MediaEntry | None:
    """The item this person uploaded with this ``Idempotency-Key``, if it still exists."""
    return session.scalar(select(MediaEntry).join(UploadKey, UploadKey.media_id == MediaEntry.id)
                          .where(UploadKey.user_id == owner.id, UploadKey.key == key))


def submit_spooled(rt: Runtime, session: Session, owner: User, upload: Spooled, filename: str,
                   fields: MediaFields, idempotency_key: str | None = None, *,
                   imported: tuple[str, dt.datetime] | None = None) -> MediaEntry:
    """Take an upload already in the workbench: check it, store it privately, record its steps, then
    ring the bell. The workbench file is always removed, whether the upload is taken or refused.

    The bytes are stored first, under a key made beforehand, and only then is the row that points at
    them written, in one short transaction: no write lock (SQLite) or change-counter row (PostgreSQL)
    is held while a large file is copied. A crash in between leaves an unreferenced file, which
    `kiln storage gc` removes; never a row without its file.

    Returns as soon as the file is safely stored; processing happens in the background.

    ``imported``: (source, created) for an item an admin's import brings from another site
    (kiln.imports): it keeps its date there, and its owner's privileges are not asked (a banned or
    unverified person's media come over too, as they were).
    """
    stored: list[str] | None = None
    try:
        if imported is None:
            check_can_upload(owner)
        found = identify(upload.path, rt.settings, filename=clean_filename(filename) or None)
        kind = get_kind(found.kind)
        title = clean_title(fields.title or "") or _title_from(filename)
        alt_text = clean_alt_text(fields.alt_text or "")
        license_url = fields.license if fields.license is not None else owner.default_license
        _check_license(license_url)
        visibility = check_visibility(fields.visibility or "public")
        session.commit()  # end the read transaction: nothing is held while the bytes are copied
        key = ["uploads", new_key_token(), "original" + extension_for(found.mime_type)]
        try:
            _store_upload(rt, key, upload.path)
        except OSError as exc:
            if is_disk_full(exc):
                raise FULL from exc
            raise
        stored = key
        entry = MediaEntry(
            owner=owner, kind=found.kind, state=MediaState.QUEUED, title=title,
            description=fields.description or "", alt_text=alt_text, license=license_url,
            show_exif=True if fields.show_exif is None else fields.show_exif, visibility=visibility,
            original_key=key, original_name=clean_filename(filename),
            mime_type=found.mime_type, size_bytes=upload.size, sha256=upload.sha256, width=found.width,
            height=found.height,
        )
        if imported is not None:
            entry.imported_from, entry.created = imported
        session.add(entry)
        entry.tags = _tags(session, fields.tags)
        session.flush()
        ledger.create_steps(session, entry, kind.steps(rt.settings))
        if idempotency_key is not None:  # unique per person: a concurrent twin fails here, keeping one item
            session.add(UploadKey(user_id=owner.id, key=idempotency_key, media_id=entry.id))
        session.commit()
    except BaseException:
        session.rollback()
        if stored is not None:
            rt.stores.queue.delete(stored)
        raise
    finally:
        upload.path.unlink(missing_ok=True)
    # Stored and committed: the upload is taken whatever the broker does now. A bell that cannot be
    # rung is rung again by the sweeper, so a client never sees an error that invites a duplicate.
    ring_bells(rt, {entry.id: (entry.kind, "new")})
    return entry


# Control characters, and the invisible marks that reorder text (a right-to-left override makes
# "photo\u202egnp.exe" read as "photoexe.png").
_UNSAFE_IN_NAMES = re.compile("[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_filename(filename: str | None) -> str:
    """The uploaded name as shown to people: its last path part (either slash), without control
    characters or bidirectional overrides, at most 255 characters."""
    name = _UNSAFE_IN_NAMES.sub("", (filename or "").replace("\\", "/")).rsplit("/", 1)[-1].strip()
    return name[:255]


MAX_TITLE = 200  # characters, the size of the column; forms say it (maxlength and a hint)


def clean_title(title: str) -> str:
    """A title someone typed, without the spaces around it. Too long is refused, never cut: every
    way in (the form, the page's uploader, the API, the CLI) gets the same sentence."""
    title = title.strip()
    if len(title) > MAX_TITLE:
        raise InvalidInput("A title can have at most %(max)s characters; this one has %(length)s. "
                           "Shorten it and try again.", code="title_too_long", max=MAX_TITLE, length=len(title))
    return title


def clean_alt_text(text: str) -> str:
    """A description of the picture someone typed (empty: none yet). Too long is refused, never cut."""
    text = text.strip()
    if len(text) > ALT_TEXT_MAX:
        raise InvalidInput("A description for people who cannot see the picture can have at most %(max)s "
                           "characters; this one has %(length)s. Shorten it and try again.",
                           code="alt_text_too_long", max=ALT_TEXT_MAX, length=len(text))
    return text


def numbered_titles(title: str, count: int) -> list[str]:
    """One title typed for several files at once: each file gets its number ("Beach (2)"). Refused
    when the numbers would make the titles too long."""
    room = MAX_TITLE - len(f" ({count})")
    title = title.strip()
    if len(title) > room:
        raise InvalidInput("Each of the %(count)s files gets a number after the title, so the title can have at "
                           "most %(max)s characters; this one has %(length)s. Shorten it and try again.",
                           code="title_too_long", count=count, max=room, length=len(title))
    return [f"{title} ({number})" for number in range(1, count + 1)]


def _title_from(filename: str) -> str:
    """A title made from the file's name, cut at a word (with "…") when the name is too long."""
    stem = Path(clean_filename(filename)).stem.replace("_", " ").strip()
    if len(stem) > MAX_TITLE:
        cut = stem[:MAX_TITLE - 1]
        stem = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip() + "…"
    return stem or _("Untitled")


def _check_license(url: str) -> None:
    if not is_known(url):
        raise InvalidInput("Unknown licence '%(licence)s'. Choose one from the list.", code="bad_license", licence=url)


def _tags(session: Session, raw: str | list[str] | None) -> list[Tag]:
    pairs = parse_tags(raw)
    if not pairs:
        return []
    existing = {t.slug: t for t in session.scalars(select(Tag).where(Tag.slug.in_([s for s, _ in pairs])))}
    tags = []
    for slug, name in pairs:
        tag = existing.get(slug)
        if tag is None:
            # Two uploads with the same new tag at once: the second insert fails on the unique slug,
            # and takes the row the first one made.
            try:
                with session.begin_nested():
                    tag = Tag(slug=slug, name=name)
                    session.add(tag)
            except IntegrityError:
                tag = session.scalars(select(Tag).where(Tag.slug == slug)).one()
        tags.append(tag)
    return tags


def check_owner(user: User | None, media: MediaEntry) -> None:
    """Only the owner or an admin may change an item. To anyone who may not see it (a private or an
    unfinished item) it does not exist: 404, the same as for a missing id, never 403, which would
    tell them it does."""
    if media.removed is not None and (user is None or not user.is_admin):
        raise NotFound("There is no such media. It may have been deleted.")  # removed: admins only
    if user is None or (user.id != media.owner_id and not user.is_admin):
        if not visible(media, user):
            raise NotFound("There is no such media. It may have been deleted.")
        raise PermissionDenied("Only the owner of this media (or an admin) can change it.")


def update(rt: Runtime, session: Session, user: User, media: MediaEntry, fields: MediaFields) -> MediaEntry:
    from kiln.federation import publishing  # federation builds on media, not the reverse

    check_owner(user, media)
    before = publishing.audience(media)
    if fields.title is not None:
        title = clean_title(fields.title)
        if not title:
            raise InvalidInput("The title cannot be empty.", code="empty_title")
        media.title = title
    if fields.description is not None:
        media.description = fields.description[:20000]
    if fields.alt_text is not None:
        media.alt_text = clean_alt_text(fields.alt_text)
    if fields.license is not None:
        _check_license(fields.license)
        media.license = fields.license
    if fields.show_exif is not None:
        media.show_exif = fields.show_exif
    if fields.comments_enabled is not None:
        media.comments_enabled = fields.comments_enabled
    if fields.tags is not None:
        media.tags = _tags(session, fields.tags)
    retired = change_visibility(rt, media, fields.visibility) if fields.visibility is not None else []
    media.updated = utcnow()
    publishing.on_changed(session, media, before)  # Update, or Delete when made private, to followers elsewhere
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
    for key in retired:  # only once the new keys are committed
        rt.stores.public.delete(key)
    return media


def delete(rt: Runtime, session: Session, user: User | None, media: MediaEntry) -> None:
    """Delete an item, its renditions and its original. The row goes first: a crash after it
    leaves only unreferenced files, which `kiln storage gc` removes; never a row without files."""
    if user is not None:
        check_owner(user, media)
    files = [(rt.stores.public, r.key) for r in media.renditions]
    files.append((rt.stores.by_name(media.original_store), media.original_key))
    media_dir = ["entries", str(media.id)]
    facts = {"media_id": media.id, "kind": media.kind, "owner_id": media.owner_id}
    from kiln.federation import publishing

    publishing.on_deleted(session, media)  # a Delete to followers elsewhere, after the commit
    session.delete(media)
    session.commit()
    plugins.notify("kiln_media_deleted", runtime=rt, **facts)
    for store, key in files:
        store.delete(key)
    for store in (rt.stores.public, rt.stores.queue, rt.stores.originals):
        store.delete_dir(media_dir)


ORIGINAL_MODES = ("private", "public", "stripped")


def original_mode(media: MediaEntry) -> str:
    published = media.rendition("original")
    return "private" if published is None else str(published.spec.get("mode", "public"))


def can_strip(media: MediaEntry) -> bool:
    """Whether this kind can publish its original without camera data and other private metadata."""
    return isinstance(get_kind(media.kind), StripsMetadata)


def publish_original(rt: Runtime, session: Session, user: User, media: MediaEntry, mode: str) -> None:
    """Make the original downloadable as it is, or without camera data and GPS, or private again.

    The published copy is a rendition named "original" in the public store; the private original
    itself never moves.
    """
    check_owner(user, media)
    if mode not in ORIGINAL_MODES:
        raise InvalidInput("Choose private, public or public without camera data.", code="bad_mode")
    if mode == original_mode(media):
        return
    if mode == "stripped" and not can_strip(media):
        raise InvalidInput("Kiln cannot remove metadata from this kind of file; publish it as uploaded or "
                           "keep it private.", code="cannot_strip")
    if media.state != MediaState.PROCESSED and mode != "private":
        raise InvalidInput("The original can be published once processing has finished.", code="not_processed")
    old = media.rendition("original")
    if mode != "private":
        rt.settings.workbench_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=rt.settings.workbench_dir) as tmp:
            workdir = Path(tmp)
            source = copy_to_local(rt.stores.by_name(media.original_store), media.original_key,
                                   workdir / ("original" + extension_for(media.mime_type)))
            if mode == "stripped":
                kind = get_kind(media.kind)
                assert isinstance(kind, StripsMetadata)  # can_strip said so above
                made = kind.strip_metadata(source, workdir, rt.settings)
                path, mime_type, width, height = made.path, made.mime_type, made.width, made.height
            else:
                path, mime_type, width, height = source, media.mime_type, media.width, media.height
            key = media.rendition_key(f"original-{mode}-{media.sha256[:10]}{path.suffix}")
            size = save_local_file(rt.stores.public, key, path)
        row = old or Rendition(name="original")
        old_key = list(old.key) if old is not None else None
        row.key, row.mime_type, row.width, row.height = key, mime_type, width, height
        row.size_bytes, row.spec_fingerprint, row.spec = size, mode, {"mode": mode}
        if old is None:
            media.renditions.append(row)
    else:
        old_key = list(old.key) if old is not None else None
        if old is not None:
            media.renditions.remove(old)
    session.commit()
    if old_key is not None:
        rt.stores.public.delete(old_key)


def get_media(session: Session, media_id: int) -> MediaEntry:
    media = session.get(MediaEntry, media_id)
    if media is None:
        raise NotFound("There is no media with that id.")
    return media


# Listings: keyset pagination over (published, id), newest first ----------------------------------

@dataclass
class Page:
    items: list[MediaEntry]
    next_cursor: str | None

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.items]


class GridPage:
    """A page of cards whose rows load only when first asked for (``items``): its ``ids`` and
    ``next_cursor`` come from one narrow index query, and a grid already made for these ids
    (kiln.web.fragments) never needs the rows."""

    def __init__(self, session: Session, ids: list[int], next_cursor: str | None) -> None:
        self.ids, self.next_cursor, self._session = ids, next_cursor, session
        self._items: list[MediaEntry] | None = None

    @property
    def items(self) -> list[MediaEntry]:
        if self._items is None:
            rows = {m.id: m for m in self._session.scalars(
                select(MediaEntry).options(*grid_options()).where(MediaEntry.id.in_(self.ids))).unique()}
            self._items = [rows[i] for i in self.ids if i in rows]
        return self._items


def encode_cursor(media: MediaEntry) -> str:
    assert media.published is not None
    return _cursor(media.published, media.id)


def _cursor(published: dt.datetime, media_id: int) -> str:
    return f"{int(published.timestamp() * 1_000_000)}-{media_id}"


_CURSOR = re.compile(r"([0-9]{1,17})-([0-9]{1,10})", re.ASCII)
MAX_ID = 2**31 - 1  # the database's integer column


def decode_cursor(cursor: str | None) -> tuple[dt.datetime, int] | None:
    """``MICROSECONDS-ID`` as :func:`encode_cursor` writes it; anything else (other digits, numbers
    past a timestamp or an id) is a broken link, never a database error."""
    if not cursor:
        return None
    found = _CURSOR.fullmatch(cursor)
    try:
        if found is None or not 0 < int(found.group(2)) <= MAX_ID:
            raise ValueError(cursor)
        when = dt.datetime.fromtimestamp(int(found.group(1)) / 1_000_000, dt.UTC)
        return when, int(found.group(2))
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidInput("That page link is broken; start from the first page.", code="bad_cursor") from exc


def published_query(owner_id: int | None = None, tag: str | Tag | None = None) -> Select[MediaEntry]:
    """Processed public media: what listings, feeds and tag pages show (never unlisted or private).
    ``tag``: a slug, or the Tag row when the caller has read it (as tag pages have): filtering on the
    id lets the planner see how common the tag is, and walk the newest items for a busy one (0.3 ms
    against 2 s for a tag on a quarter of a million items, docs/scaling.md)."""
    query = select(MediaEntry).where(MediaEntry.state == MediaState.PROCESSED, MediaEntry.visibility == "public",
                                     MediaEntry.removed.is_(None))
    if owner_id is not None:
        query = query.where(MediaEntry.owner_id == owner_id)
    if isinstance(tag, Tag):
        query = query.join(media_tags, media_tags.c.media_id == MediaEntry.id).where(media_tags.c.tag_id == tag.id)
    elif tag is not None:
        query = query.join(media_tags, media_tags.c.media_id == MediaEntry.id).join(
            Tag, Tag.id == media_tags.c.tag_id).where(Tag.slug == tag)
    return query


def own_query(owner_id: int) -> Select[MediaEntry]:
    """Everything one person has published, whatever its visibility: their own view of their gallery
    (only they are shown it; everyone else gets ``published_query``)."""
    return select(MediaEntry).where(MediaEntry.state == MediaState.PROCESSED, MediaEntry.owner_id == owner_id,
                                    MediaEntry.removed.is_(None))


def unfinished(session: Session, owner_id: int, limit: int) -> list[MediaEntry]:
    """An owner's items that are not published yet (queued, processing or failed), newest first."""
    return list(session.scalars(select(MediaEntry).where(MediaEntry.owner_id == owner_id,
                                                         MediaEntry.state != MediaState.PROCESSED,
                                                         MediaEntry.removed.is_(None))
                                .order_by(MediaEntry.id.desc()).limit(limit)).unique())


def tag_counts(session: Session, by_name: bool = False) -> list[tuple[Tag, int]]:
    """Every tag with at least one item in ``published_query`` (public and processed: unlisted,
    private and unfinished items never count), with how many: most used first, or by name."""
    uses = func.count(media_tags.c.media_id).label("uses")
    listed = published_query().with_only_columns(MediaEntry.id)
    query = (select(Tag, uses).join(media_tags, media_tags.c.tag_id == Tag.id)
             .where(media_tags.c.media_id.in_(listed)).group_by(Tag.id, Tag.slug, Tag.name))
    query = query.order_by(Tag.slug) if by_name else query.order_by(uses.desc(), Tag.slug)
    return [(tag, int(count)) for tag, count in session.execute(query)]


def grid_options() -> tuple[Any, ...]:
    """Load only what a gallery card shows (_grid.html): the thumbnails (1x and 2x) without their spec,
    no tags, no camera data or description. For pages of cards only: the items' other renditions are
    not loaded."""
    return (lazyload(MediaEntry.tags), defer(MediaEntry.exif), defer(MediaEntry.description),
            defer(MediaEntry.error_stored), defer(MediaEntry.error_message),
            selectinload(MediaEntry.renditions.and_(Rendition.name.in_(THUMBNAILS))).defer(Rendition.spec))


def page(session: Session, query: Select[MediaEntry], cursor: str | None, per_page: int,
         grid: bool = False) -> Page | GridPage:
    """A keyset page, newest first. ``grid``: a page of cards (``GridPage``: ids first, rows on demand)."""
    after = decode_cursor(cursor)
    if after is not None:
        when, media_id = after
        # A row comparison, not "published < t OR (published = t AND id < n)": the index scan starts at
        # the cursor instead of reading every newer row (0.05 ms against 300 ms a million rows down).
        query = query.where(tuple_(MediaEntry.published, MediaEntry.id) < tuple_(when, media_id))
    query = query.order_by(MediaEntry.published.desc(), MediaEntry.id.desc()).limit(per_page + 1)
    if grid:
        found = list(session.execute(query.with_only_columns(MediaEntry.id, MediaEntry.published)))
        more = len(found) > per_page
        found = found[:per_page]
        last = found[-1] if more and found else None
        return GridPage(session, [media_id for media_id, _ in found],
                        _cursor(last[1], last[0]) if last is not None and last[1] is not None else None)
    rows = list(session.scalars(query).unique())
    more = len(rows) > per_page
    items = rows[:per_page]
    return Page(items, encode_cursor(items[-1]) if more and items else None)


def neighbours(session: Session, media: MediaEntry) -> tuple[int | None, int | None]:
    """The ids of the owner's next newer and next older published items (the page links to them by id
    alone, so no row is loaded: two index lookups)."""
    if media.published is None:
        return None, None
    base = published_query(owner_id=media.owner_id).with_only_columns(MediaEntry.id)
    newer = session.scalar(base.where(or_(MediaEntry.published > media.published,
                                          and_(MediaEntry.published == media.published, MediaEntry.id > media.id)))
                           .order_by(MediaEntry.published.asc(), MediaEntry.id.asc()).limit(1))
    older = session.scalar(base.where(or_(MediaEntry.published < media.published,
                                          and_(MediaEntry.published == media.published, MediaEntry.id < media.id)))
                           .order_by(MediaEntry.published.desc(), MediaEntry.id.desc()).limit(1))
    return newer, older


def list_for_admin(session: Session, *, owner: User | None = None, state: str | None = None,
                   tag: str | None = None, limit: int = 100, offset: int = 0) -> list[MediaEntry]:
    """Every item whatever its state (CLI and the owner's own views)."""
    query = select(MediaEntry)
    if owner is not None:
        query = query.where(MediaEntry.owner_id == owner.id)
    if state is not None:
        if state not in MEDIA_STATES:
            raise InvalidInput("Unknown state '%(state)s'. Known: %(known)s.", code="bad_state", state=state,
                               known=", ".join(MEDIA_STATES))
        query = query.where(MediaEntry.state == state)
    if tag is not None:
        query = query.join(media_tags, media_tags.c.media_id == MediaEntry.id).join(
            Tag, Tag.id == media_tags.c.tag_id).where(Tag.slug == tag)
    return list(session.scalars(query.order_by(MediaEntry.id.desc()).limit(limit).offset(offset)).unique())


# The JSON shape shared by the CLI and the API --------------------------------------------------

def media_url(base_url: str, media: MediaEntry) -> str:
    return f"{base_url.rstrip('/')}/u/{media.owner.username}/m/{media.id}"


# What a feed's enclosure (and a podcast or video reader) gets: the media itself, not a picture of it.
_MAIN_RENDITIONS = {"audio": ("audio",), "model3d": ("model",), "text": ("text",),
                    "pdf": ("original", "medium"), "image": ("medium", "original")}


def main_rendition(media: MediaEntry) -> Rendition | None:
    """The rendition that is the media itself: the largest H.264 video, the audio, the model, the
    text, the PDF when its original is published (else its first page), the medium image."""
    if media.kind == "video":
        videos = [r for r in media.renditions
                  if r.mime_type == "video/mp4" and r.name.startswith("video-") and r.name != "video-av1"]
        return max(videos, key=lambda r: r.height or 0, default=None)
    for name in _MAIN_RENDITIONS.get(media.kind, ("medium",)):
        if (found := media.rendition(name)) is not None:
            return found
    return None


# What a download of each type is called (the media page's download menu), and its format's name.
_DOWNLOAD_KINDS = (("image/", N_("Picture")), ("video/", N_("Video")), ("audio/", N_("Sound")),
                   ("model/", N_("3D model")), ("text/", N_("Text")), ("application/pdf", N_("PDF")))
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP", "image/gif": "GIF", "image/avif": "AVIF",
            "video/mp4": "MP4", "video/webm": "WebM", "audio/mpeg": "MP3", "audio/ogg": "Ogg", "audio/mp4": "M4A",
            "audio/webm": "WebM", "audio/flac": "FLAC", "model/gltf-binary": "glTF", "text/plain": "TXT",
            "application/pdf": "PDF"}
_NOT_DOWNLOADS = ("application/json", "text/vtt")  # data for the players (audio peaks), and captions


def downloads(media: MediaEntry) -> list[tuple[str, str, Rendition]]:
    """The files a visitor may download: what each is (untranslated), its format's name, and the
    rendition. The original when it is published, then every rendition but the players' data,
    largest first."""
    found = []
    for rendition in media.renditions:
        mime = rendition.mime_type.split(";")[0].strip()
        if mime in _NOT_DOWNLOADS:
            continue
        what = next((label for prefix, label in _DOWNLOAD_KINDS if mime.startswith(prefix)), N_("File"))
        found.append((N_("Original") if rendition.name == "original" else what,
                      _FORMATS.get(mime, mime.split("/")[-1].upper()), rendition))
    found.sort(key=lambda row: (row[2].name != "original", -(row[2].size_bytes or 0)))
    return found


def rendition_url(rt: Runtime, key: list[str], base: str) -> str:
    url = rt.stores.public.url(key)
    return url if "://" in url else base + url


def media_json(rt: Runtime, media: MediaEntry, base: str, steps: list[Any] | None = None,
               favourited: bool | None = None) -> dict[str, Any]:
    """The JSON shape of an item; ``base`` is the site's address for absolute links (see
    ``web.deps.site_url`` for requests and ``Settings.link_base`` elsewhere). ``favourited``: whether
    the (logged-in) caller has favourited it, left out when None."""
    lic = get_license(media.license)
    data: dict[str, Any] = {
        "id": media.id,
        "kind": media.kind,
        "state": media.state,
        "visibility": media.visibility,
        "title": media.title,
        "description": media.description,
        "alt_text": media.alt_text,
        "owner": media.owner.username,
        "url": media_url(base, media),
        "created": media.created.isoformat(),
        "published": media.published.isoformat() if media.published else None,
        "tags": [t.slug for t in media.tags],
        "license": {"url": lic.url, "name": lic.english_abbreviation},  # data: the same in every language
        "mime_type": media.mime_type,
        "width": media.width,
        "height": media.height,
        "info": media.info or {},
        "renditions": {
            r.name: {"url": rendition_src(rt, media, r, base), "width": r.width, "height": r.height,
                     "mime_type": r.mime_type, "bytes": r.size_bytes}
            for r in media.renditions
        },
        "captions": [captions.caption_json(rt, media, r, base) for r in captions.captions_of(media)],
        "favourites": media.favourite_count,
        "comments": media.comment_count,
        "comments_enabled": media.comments_enabled,
    }
    if favourited is not None:
        data["favourited"] = favourited
    if media.state == MediaState.FAILED:
        data["error"] = {"code": media.error_code or "failed",
                         "message": media.error_said or _("Processing failed.")}
    if steps is not None:
        data["steps"] = [
            {"name": s.name, "state": s.state, "attempts": s.attempts, "progress": s.progress,
             "next_run": s.next_run.isoformat() if s.next_run else None,
             "error": {"code": s.error_code, "message": s.error_said} if s.error_code else None}
            for s in steps
        ]
        when = ledger.retry_at(steps)
        data["retry_at"] = when.isoformat() if when else None
    return data


def rejected_message(exc: KilnError, filename: str) -> str:
    name = Path(filename or "").name
    return interpolate(_("%(file)s: %(reason)s"), {"file": name, "reason": exc.message}) if name else exc.message
