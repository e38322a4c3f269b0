"""``kiln import mediagoblin``: a GNU MediaGoblin site (0.10 or later) moves into Kiln.

It reads the site the way MediaGoblin does, from its own ``mediagoblin.ini`` (configobj, with
``%(here)s`` and ``%(data_basedir)s``): its database (``sql_engine``, SQLite or PostgreSQL, only
read) and its local file stores. It brings over people (with their bcrypt password hashes, checked at
their first login and rehashed to Argon2id: kiln.accounts.services), their privileges and bans; every
media item's original, through Kiln's one upload flow (so Kiln makes its own renditions, strips
metadata and checks the file), with its title, description, tags, licence and date; comments with their
authors and dates; collections in the order items were added, with their notes; and reports.

Each thing is written in its own short transaction together with a row in ``imported`` naming it by
MediaGoblin's id, and the old site's URL paths for it (``legacy_paths``): a second run skips what is
there, and a run killed half-way goes on where it stopped. An original is stored before its row is
written, under an upload key (``mediagoblin:ID``), so an item stored just before a kill is found again,
never uploaded twice.

Items that failed in MediaGoblin come over as private items, processed by Kiln like the rest: only
their owner sees them, and decides (Kiln often reads what MediaGoblin could not).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from kiln.accounts.models import PRIVILEGES, User, UserPrivilege
from kiln.accounts.services import RESERVED, USERNAME_RE
from kiln.db.base import utcnow
from kiln.errors import KilnError
from kiln.imports.models import Imported, LegacyPath
from kiln.media import services as media_service
from kiln.media.licenses import is_known, normalized
from kiln.media.models import MediaEntry, Tag
from kiln.media.services import MediaFields
from kiln.media.text import parse_tags
from kiln.mediatypes import identify
from kiln.moderation import audit
from kiln.moderation.models import Report
from kiln.moderation.reports import find_target
from kiln.runtime import Runtime
from kiln.social.models import Collection, CollectionItem, Comment
from kiln.social.profiles import clean_links

SOURCE = "mediagoblin"
KINDS = ("users", "media", "comments", "collections", "reports")
# MediaGoblin's file keynames and what each is in Kiln, for the old file URLs.
FILE_ROLES = {"original": "original", "thumb": "thumb", "medium": "medium"}
# Where a media item's original is, in order: its "original" file; else the best rendition MediaGoblin
# kept when it was told not to keep originals.
ORIGINAL_FALLBACKS = ("original", "webm_video", "webm_audio", "best_quality", "medium")
NO_LIMIT = 2**62
BATCH = 200


class SourceProblem(KilnError):
    """The MediaGoblin site cannot be read as it is: the sentence says what to change."""

    code = "import_source"


@dataclass(frozen=True)
class Site:
    """A MediaGoblin site as its mediagoblin.ini describes it."""

    config: Path
    engine: Engine
    public_dir: Path
    queue_dir: Path
    public_url: str  # the public store's base_url, "/mgoblin_media/"


def _store_dir(config: Any, name: str, default: str) -> Path:
    section = config.get(f"storage:{name}", {})
    storage_class = section.get("storage_class", "mediagoblin.storage.filestorage:BasicFileStorage")
    if not storage_class.endswith(":BasicFileStorage"):
        raise SourceProblem(
            "The site keeps its %(store)s in %(class)s; Kiln imports from local folders only. Copy the files to a "
            "folder and set base_dir in [storage:%(store)s] of a copy of mediagoblin.ini.",
            store=name, **{"class": storage_class})
    return Path(section.get("base_dir", default))


def open_site(config_path: Path) -> Site:
    """Read mediagoblin.ini and open its database (read only: Kiln never writes to it)."""
    from configobj import ConfigObj, ConfigObjError

    config_path = config_path.resolve()
    if not config_path.is_file():
        raise SourceProblem("There is no file %(path)s: give the path of the site's mediagoblin.ini.",
                            path=str(config_path))
    try:
        config = ConfigObj(str(config_path), interpolation="ConfigParser", encoding="UTF8", file_error=True)
        defaults = config.setdefault("DEFAULT", {})
        defaults["here"] = str(config_path.parent)
        defaults.setdefault("data_basedir", "%(here)s/user_dev")
        main = config.get("mediagoblin", {})
        url = main.get("sql_engine", "sqlite:///%(here)s/mediagoblin.db")
        public = _store_dir(config, "publicstore", "%(data_basedir)s/media/public")
        queue = _store_dir(config, "queuestore", "%(data_basedir)s/media/queue")
        public_url = config.get("storage:publicstore", {}).get("base_url", "/mgoblin_media/")
    except (ConfigObjError, SyntaxError, KeyError) as exc:
        raise SourceProblem("%(path)s cannot be read as MediaGoblin reads it: %(reason)s",
                            path=str(config_path), reason=str(exc)) from exc
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise SourceProblem("The sql_engine in %(path)s is not a database URL: %(url)s", path=str(config_path),
                            url=url) from exc
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "sqlite" and parsed.database and not Path(parsed.database).is_file():
        raise SourceProblem("The site's database %(path)s is not there (sql_engine in mediagoblin.ini).",
                            path=parsed.database)
    connect_args = {"connect_timeout": 10} if parsed.drivername.startswith("postgresql") else {}
    engine = create_engine(parsed, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            tables = set(conn.dialect.get_table_names(conn))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise SourceProblem("The site's database cannot be opened: %(reason)s",
                            reason=str(exc).splitlines()[0]) from exc
    if "core__local_users" not in tables or "core__media_entries" not in tables:
        engine.dispose()
        raise SourceProblem("This is not the database of a MediaGoblin 0.10 or later site (it has no "
                            "core__local_users table). Upgrade it with MediaGoblin's 'gmg dbupdate' first.")
    return Site(config_path, engine, public, queue, "/" + public_url.strip("/") + "/")


@dataclass
class ImportReport:
    """What a run did (or, with ``dry_run``, would do): counts per kind and the lines worth reading."""

    dry_run: bool
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: {k: defaultdict(int) for k in KINDS})
    notes: list[str] = field(default_factory=list)
    new_media: list[int] = field(default_factory=list)  # Kiln ids of the items this run submitted

    def count(self, kind: str, outcome: str) -> None:
        self.counts[kind][outcome] += 1

    @property
    def nothing_to_do(self) -> bool:
        return not any(c.get("new") or c.get("skipped") for c in self.counts.values())

    def as_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "counts": {k: dict(v) for k, v in self.counts.items()},
                "notes": self.notes, "new_media": self.new_media}


Progress = Callable[[str, int, int], None]  # (kind, done, total)


def _when(value: Any) -> dt.datetime | None:
    """MediaGoblin's naive UTC timestamps (SQLite gives strings, PostgreSQL datetimes), as aware ones."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _outcome(result: str) -> str:
    """The outcome of a report MediaGoblin resolved, from the sentences its moderation panel writes
    into ``result`` ("alice banned user dave ...", "... took away carol's commenter privileges.")."""
    said = result.lower()
    for words, outcome in ((" banned ", "banned"), (" deleted ", "removed"), (" took away ", "revoked"),
                           (" warning ", "warned")):
        if words in said:
            return outcome
    return "dismissed"


class Importer:
    def __init__(self, rt: Runtime, site: Site, *, dry_run: bool = False, retry: bool = False,
                 progress: Progress | None = None) -> None:
        self.rt, self.site, self.dry_run, self.retry = rt, site, dry_run, retry
        self.progress = progress or (lambda kind, done, total: None)
        self.report = ImportReport(dry_run)
        self.done: dict[tuple[str, str], int] = {}
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.refs: dict[int, tuple[str, int]] = {}  # generic reference id -> (table, primary key)
        self.usernames: dict[int, str] = {}  # MediaGoblin user id -> their Kiln username

    # Reading the old site ------------------------------------------------------------------------

    def _read(self) -> None:
        queries = {
            "users": "SELECT u.id, u.url, u.bio, u.name, u.created, l.name AS location, lu.username, lu.email, "
                     "lu.pw_hash, lu.wants_comment_notification, lu.license_preference, lu.upload_limit "
                     "FROM core__users u JOIN core__local_users lu ON lu.id = u.id "
                     "LEFT JOIN core__locations l ON l.id = u.location ORDER BY u.id",
            "privileges": "SELECT pu.user AS user_id, p.privilege_name FROM core__privileges_users pu "
                          "JOIN core__privileges p ON p.id = pu.privilege",
            "bans": "SELECT user_id, expiration_date, reason FROM core__user_bans",
            "media": "SELECT id, actor, title, slug, description, media_type, state, license, created, fail_error, "
                     "queued_media_file FROM core__media_entries ORDER BY id",
            "files": "SELECT f.media_entry, k.name, f.file_path FROM core__mediafiles f "
                     "JOIN core__file_keynames k ON k.id = f.name_id",
            "tags": "SELECT mt.media_entry, mt.name, t.slug FROM core__media_tags mt "
                    "JOIN core__tags t ON t.id = mt.tag ORDER BY mt.media_entry, mt.id",
            "comments": "SELECT c.id, c.actor, c.created, c.updated, c.content, l.target_id, l.comment_id "
                        "FROM core__media_comments c JOIN core__comment_links l ON l.comment_id IN "
                        "(SELECT g.id FROM core__generic_model_reference g WHERE g.obj_pk = c.id "
                        "AND g.model_type = 'core__media_comments') ORDER BY c.id",
            "refs": "SELECT id, obj_pk, model_type FROM core__generic_model_reference",
            "collections": "SELECT id, actor, title, slug, description, created, updated, type FROM core__collections "
                           "ORDER BY id",
            "items": "SELECT id, collection, note, added, object_id FROM core__collection_items ORDER BY collection, "
                     "added, id",
            "reports": "SELECT id, reporter_id, report_content, reported_user_id, created, resolver_id, resolved, "
                       "result, object_id FROM core__reports ORDER BY id",
        }
        try:
            with self.site.engine.connect() as conn:
                for name, sql in queries.items():
                    self.rows[name] = [dict(r) for r in conn.execute(text(sql)).mappings()]
        except SQLAlchemyError as exc:
            raise SourceProblem("The site's database could not be read as a MediaGoblin 0.10 or later one: "
                                "%(reason)s", reason=str(exc).splitlines()[0]) from exc
        self.refs = {r["id"]: (r["model_type"], r["obj_pk"]) for r in self.rows["refs"]}

    # Kiln's side ---------------------------------------------------------------------------------

    def _load_done(self, session: Session) -> None:
        self.done = {(r.kind, r.old_id): r.new_id
                     for r in session.scalars(select(Imported).where(Imported.source == SOURCE))}
        session.commit()

    def _mark(self, session: Session, kind: str, old_id: int, new_id: int) -> None:
        """Remember what ``old_id`` became (0: it was left out, and a run with ``retry`` tries it again)."""
        session.merge(Imported(source=SOURCE, kind=kind, old_id=str(old_id), new_id=new_id))
        self.done[(kind, str(old_id))] = new_id

    def _new_id(self, kind: str, old_id: int | None) -> int | None:
        return None if old_id is None else (self.done.get((kind, str(old_id))) or None)

    def _seen(self, kind: str, report_kind: str, old_id: int) -> bool:
        """Whether an earlier run imported ``old_id`` or left it out (counted as such), so this one skips it."""
        new_id = self.done.get((kind, str(old_id)))
        if new_id is None or (new_id == 0 and self.retry):
            return False
        self.report.count(report_kind, "already" if new_id else "left_out_before")
        return True

    def _leave_out(self, session: Session, kind: str, report_kind: str, old_id: int, note: str) -> None:
        self.report.notes.append(note)
        self.report.count(report_kind, "skipped")
        if not self.dry_run:
            self._mark(session, kind, old_id, 0)
            session.commit()

    def _paths(self, session: Session, rows: Iterable[tuple[str, str, int, str]]) -> None:
        """Add the old site's paths (path, target type, target id, role); a path already there stays."""
        values = [{"path": p[:1000], "target_type": t, "target_id": i, "role": r} for p, t, i, r in rows]
        if not values:
            return
        dialect = session.get_bind().dialect.name
        statement = (postgresql.insert(LegacyPath) if dialect == "postgresql" else sqlite.insert(LegacyPath))
        session.execute(statement.on_conflict_do_nothing(index_elements=["path"]), values)

    def run(self) -> ImportReport:
        self._read()
        with self.rt.sessions() as session:
            self._load_done(session)
            self._users(session)
            self._media(session)
            self._comments(session)
            self._collections(session)
            self._reports(session)
            if not self.dry_run and not self.report.nothing_to_do:
                audit.record(session, None, "import", "site", None, target_label=f"{SOURCE} {self.site.config}",
                             details={"counts": {k: dict(v) for k, v in self.report.counts.items()}}, via="cli")
                session.commit()
        return self.report

    # People --------------------------------------------------------------------------------------

    def _users(self, session: Session) -> None:
        privileges: dict[int, set[str]] = defaultdict(set)
        for row in self.rows["privileges"]:
            privileges[row["user_id"]].add(row["privilege_name"])
        bans = {row["user_id"]: row for row in self.rows["bans"]}
        users = self.rows["users"]
        for done, row in enumerate(users, 1):
            self.progress("users", done, len(users))
            old_id = row["id"]
            if self._seen("user", "users", old_id):
                if (kiln_id := self._new_id("user", old_id)) is not None:
                    self.usernames[old_id] = session.get_one(User, kiln_id).username
                continue
            name, email = str(row["username"]).lower(), str(row["email"] or "").strip().lower()
            same_name = session.scalar(select(User).where(User.username == name))
            same_email = session.scalar(select(User).where(User.email == email)) if email else None
            if same_name is not None and same_name is same_email:
                # The admin made their Kiln account first, as the same person: theirs it is.
                self.report.notes.append(f"{name}: a Kiln account with the same username and email exists; "
                                         "their MediaGoblin media, comments and collections are added to it "
                                         "(its password and privileges are left as they are)")
                self.usernames[old_id] = name
                self.report.count("users", "new")
                if not self.dry_run:
                    self._mark(session, "user", old_id, same_name.id)
                    self._paths(session, self._user_paths(name, same_name.id))
                    session.commit()
                continue
            problem = None
            if not USERNAME_RE.match(name) or name in RESERVED:
                problem = "the username is not one Kiln allows (2 to 30 lowercase letters, digits, '-' and '_')"
            elif same_name is not None:
                problem = "the username is taken in Kiln by another account (another email address)"
            elif not email or same_email is not None:
                problem = ("the email address is used by another Kiln account" if email
                           else "the account has no email address")
            if problem:
                self._leave_out(session, "user", "users", old_id, f"{name}: not imported, {problem}; their media, "
                                "comments and collections are left out too")
                continue
            self.usernames[old_id] = name
            self.report.count("users", "new")
            if row["location"]:
                self.report.notes.append(f"{name}: the profile's location ({row['location']}) is not carried over "
                                         "(Kiln profiles have no location)")
            if not row["pw_hash"]:
                self.report.notes.append(f"{name}: had no password (another login plugin); they set one with "
                                         "'Forgot your password?'")
            if self.dry_run:
                continue
            self._make_user(session, row, privileges[old_id], bans.get(old_id))

    def _make_user(self, session: Session, row: dict[str, Any], privileges: set[str],
                   ban: dict[str, Any] | None) -> None:
        name = str(row["username"]).lower()
        links: list[dict[str, str]] = []
        if row["url"]:
            try:
                links = clean_links([("", str(row["url"]))])
            except KilnError:
                self.report.notes.append(f"{name}: the website {row['url']} is not an http(s) link; left out")
        licence = normalized(row["license_preference"] or "")
        user = User(username=name, email=str(row["email"]).strip().lower(),
                    password_hash=row["pw_hash"] or "!",  # "!": no password matches it
                    display_name=(row["name"] or name)[:100], bio=(row["bio"] or "")[:2000],
                    default_license=licence if is_known(licence) else "", created=_when(row["created"]) or utcnow(),
                    links=links,
                    upload_limit_bytes=int(row["upload_limit"] * 1024 * 1024) if row["upload_limit"] else None,
                    notify_mail=None if row["wants_comment_notification"] in (None, 1, True) else {"comment": "off"})
        user.privileges = [UserPrivilege(name=p) for p in sorted(privileges) if p in PRIVILEGES]
        if ban is not None:
            user.banned, user.banned_until = True, _when(ban["expiration_date"])
            user.ban_reason = ban["reason"] or ""
        session.add(user)
        session.flush()
        self._mark(session, "user", row["id"], user.id)
        self._paths(session, self._user_paths(name, user.id))
        session.commit()

    @staticmethod
    def _user_paths(name: str, user_id: int) -> list[tuple[str, str, int, str]]:
        base = f"/u/{quote(name)}/"
        return [(base, "user", user_id, "page"), (base + "gallery/", "user", user_id, "gallery"),
                (base + "atom/", "user", user_id, "feed"), (base + "collections/", "user", user_id, "collections")]

    # Media ---------------------------------------------------------------------------------------

    def _original(self, row: dict[str, Any], files: dict[str, str]) -> tuple[Path, str] | None:
        """The file to import for an item and where it came from, or None when none is there."""
        for name in ORIGINAL_FALLBACKS:
            if name in files:
                path = self.site.public_dir / files[name]
                if path.is_file():
                    return path, name
        if row["queued_media_file"]:
            path = self.site.queue_dir / str(row["queued_media_file"])
            if path.is_file():
                return path, "queue"
        return None

    def _media(self, session: Session) -> None:
        files: dict[int, dict[str, str]] = defaultdict(dict)
        for f in self.rows["files"]:
            files[f["media_entry"]][f["name"]] = str(f["file_path"])
        tags: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for t in self.rows["tags"]:
            tags[t["media_entry"]].append((t["name"] or t["slug"], t["slug"]))
        media = self.rows["media"]
        for done, row in enumerate(media, 1):
            self.progress("media", done, len(media))
            label = f"media {row['id']} ({row['title'] or row['slug']})"
            if self._seen("media", "media", row["id"]):
                continue
            owner_name = self.usernames.get(row["actor"])
            if owner_name is None:
                self._leave_out(session, "media", "media", row["id"], f"{label}: left out with its owner")
                continue
            found = self._original(row, files[row["id"]])
            if found is None:
                self._leave_out(session, "media", "media", row["id"],
                                f"{label}: left out, its file is in neither of the site's stores")
                continue
            path, whence = found
            notes = []  # said once the item is taken
            if whence not in ("original", "queue"):
                notes.append(f"{label}: MediaGoblin kept no original; its {whence} file was imported")
            failed = row["state"] == "failed"
            why = f"failed in MediaGoblin ({row['fail_error'] or 'no reason given'})"
            if failed:
                notes.append(f"{label}: {why}; imported as private, for its owner to see and decide")
            licence = normalized(row["license"] or "")
            if licence and not is_known(licence):
                notes.append(f"{label}: licence {licence} is not one Kiln knows; imported as all rights reserved")
                licence = ""
            if self.dry_run:  # Kiln's own first look at the file, as the upload will take it
                try:
                    identify(path, self.rt.settings, filename=path.name)
                except KilnError as exc:
                    self.report.notes.append(f"{label}: {why + ', and ' if failed else ''}Kiln would refuse its "
                                             f"file: {exc.message}")
                    self.report.count("media", "skipped")
                    continue
                self.report.notes.extend(notes)
                self.report.count("media", "new")
                continue
            owner = session.scalars(select(User).where(User.username == owner_name)).one()
            names = [name for name, _ in tags[row["id"]]]
            key = f"{SOURCE}:{row['id']}"
            entry = media_service.upload_for_key(session, owner, key)  # stored just before a kill
            if entry is None:
                fields = MediaFields(title=row["title"] or "", description=row["description"] or "", tags=names,
                                     license=licence, visibility="private" if failed else "public")
                try:
                    with path.open("rb") as fh:
                        spooled = media_service.spool(self.rt.settings, fh, NO_LIMIT)
                    entry = media_service.submit_spooled(
                        self.rt, session, owner, spooled, path.name, fields, idempotency_key=key,
                        imported=(SOURCE, _when(row["created"]) or utcnow()))
                except KilnError as exc:
                    self._leave_out(session, "media", "media", row["id"],
                                    f"{label}: {why + ', and ' if failed else ''}Kiln refused its file: {exc.message}")
                    continue
                self.report.new_media.append(entry.id)
            self.report.notes.extend(notes)
            self.report.count("media", "new")
            self._mark(session, "media", row["id"], entry.id)
            self._paths(session, self._media_paths(session, owner_name, row, entry, files[row["id"]],
                                                   tags[row["id"]]))
            session.commit()

    def _media_paths(self, session: Session, owner: str, row: dict[str, Any], entry: MediaEntry,
                     files: dict[str, str], tags: list[tuple[str, str]]) -> list[tuple[str, str, int, str]]:
        base = f"/u/{quote(owner)}/m/"
        paths = [(f"{base}id:{row['id']}/", "media", entry.id, "page")]
        if row["slug"]:
            paths.append((f"{base}{quote(str(row['slug']))}/", "media", entry.id, "page"))
        for name, path in files.items():
            paths.append((self.site.public_url + quote(path), "media", entry.id, FILE_ROLES.get(name, "page")))
        for name, mg_slug in tags:
            slug = next((s for s, _ in parse_tags([name])), None)
            tag_id = session.scalar(select(Tag.id).where(Tag.slug == slug)) if slug else None
            if tag_id is not None:
                paths.append((f"/tag/{quote(mg_slug)}/", "tag", tag_id, "page"))
                paths.append((f"/u/{quote(owner)}/tag/{quote(mg_slug)}/", "user", entry.owner_id, f"tag:{slug}"))
        return paths

    # Comments ------------------------------------------------------------------------------------

    def _comments(self, session: Session) -> None:
        media_by_id = {row["id"]: row for row in self.rows["media"]}
        comments = self.rows["comments"]
        for done, row in enumerate(comments, 1):
            self.progress("comments", done, len(comments))
            if self._seen("comment", "comments", row["id"]):
                continue
            table, old_media = self.refs.get(row["target_id"], ("", 0))
            media_id = self._new_id("media", old_media) if table == "core__media_entries" else None
            author = self.usernames.get(row["actor"])
            if (media_id is None and not self.dry_run) or author is None or old_media not in media_by_id:
                self._leave_out(session, "comment", "comments", row["id"],
                                f"comment {row['id']}: left out with the item or person it belongs to")
                continue
            self.report.count("comments", "new")
            if self.dry_run or media_id is None:
                continue
            author_id = self._new_id("user", row["actor"])
            created, updated = _when(row["created"]) or utcnow(), _when(row["updated"])
            comment = Comment(media_id=media_id, author_id=author_id, body=row["content"] or "", created=created,
                              edited=updated if updated and updated - created > dt.timedelta(seconds=1) else None)
            session.add(comment)
            session.flush()
            from kiln.social.comments import _count

            _count(session, media_id, 1)
            self._mark(session, "comment", row["id"], comment.id)
            old = media_by_id[old_media]
            owner = self.usernames[old["actor"]]
            slug = quote(str(old["slug"])) if old["slug"] else f"id:{old['id']}"
            self._paths(session, [(f"/u/{quote(owner)}/m/{slug}/c/{row['id']}/", "comment", comment.id, "page")])
            session.commit()

    # Collections ---------------------------------------------------------------------------------

    def _collections(self, session: Session) -> None:
        items: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for item in self.rows["items"]:
            items[item["collection"]].append(item)
        collections = self.rows["collections"]
        for done, row in enumerate(collections, 1):
            self.progress("collections", done, len(collections))
            if self._seen("collection", "collections", row["id"]):
                continue
            owner = self.usernames.get(row["actor"])
            if owner is None:
                self._leave_out(session, "collection", "collections", row["id"],
                                f"collection {row['id']} ({row['title']}): left out with its owner")
                continue
            self.report.count("collections", "new")
            if self.dry_run:
                continue
            owner_id = self._new_id("user", row["actor"])
            assert owner_id is not None
            collection = Collection(owner_id=owner_id, title=(row["title"] or row["slug"] or "Collection")[:200],
                                    description=row["description"] or "", visibility="public",
                                    created=_when(row["created"]) or utcnow(),
                                    updated=_when(row["updated"]) or utcnow())
            session.add(collection)
            session.flush()
            position = 0
            for item in items[row["id"]]:
                table, old_media = self.refs.get(item["object_id"], ("", 0))
                media_id = self._new_id("media", old_media) if table == "core__media_entries" else None
                if media_id is None:
                    self.report.notes.append(f"collection {row['id']} ({row['title']}): an item ({table} "
                                             f"{old_media}) that was not imported is left out")
                    continue
                session.add(CollectionItem(collection_id=collection.id, media_id=media_id, added_by_id=owner_id,
                                           note=(item["note"] or "")[:1000], position=position,
                                           added=_when(item["added"]) or utcnow()))
                position += 1
            self._mark(session, "collection", row["id"], collection.id)
            base = f"/u/{quote(owner)}/collection/{quote(str(row['slug']))}/"
            self._paths(session, [(base, "collection", collection.id, "page"),
                                  (base + "atom/", "collection", collection.id, "feed")])
            session.commit()

    # Reports -------------------------------------------------------------------------------------

    def _reports(self, session: Session) -> None:
        kinds = {"core__media_entries": "media", "core__media_comments": "comment", "core__users": "user",
                 "core__local_users": "user", "core__collections": "collection"}
        reports = self.rows["reports"]
        for done, row in enumerate(reports, 1):
            self.progress("reports", done, len(reports))
            if self._seen("report", "reports", row["id"]):
                continue
            table, old_target = self.refs.get(row["object_id"], ("", 0))
            target_type = kinds.get(table)
            target_id = self._new_id(target_type, old_target) if target_type else None
            if target_type is None or (target_id is None and not self.dry_run):
                self._leave_out(session, "report", "reports", row["id"],
                                f"report {row['id']}: left out, what it reports was not imported")
                continue
            self.report.count("reports", "new")
            if self.dry_run:
                continue
            assert target_id is not None
            target = find_target(session, target_type, target_id, check=False)
            resolved = _when(row["resolved"])
            report = Report(created=_when(row["created"]) or utcnow(),
                            reporter_id=self._new_id("user", row["reporter_id"]),
                            target_type=target_type, target_id=target_id,
                            target_owner_id=self._new_id("user", row["reported_user_id"])
                            or (target.owner.id if target.owner else None),
                            category="other", text=row["report_content"] or "", snapshot=target.snapshot(),
                            state="resolved" if resolved else "open",
                            outcome=_outcome(row["result"] or "") if resolved else None,
                            resolution=row["result"] or "", resolved_by_id=self._new_id("user", row["resolver_id"]),
                            resolved_at=resolved)
            session.add(report)
            session.flush()
            self._mark(session, "report", row["id"], report.id)
            session.commit()


def import_site(rt: Runtime, config_path: Path, *, dry_run: bool = False, retry: bool = False,
                progress: Progress | None = None) -> ImportReport:
    site = open_site(config_path)
    try:
        return Importer(rt, site, dry_run=dry_run, retry=retry, progress=progress).run()
    finally:
        site.engine.dispose()
