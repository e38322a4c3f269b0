"""Where files to import come from, read into ``Incoming`` items (kiln.imports.items):

- **a folder**, with an optional spreadsheet (CSV) of titles, descriptions, tags, licences and dates;
  its columns may be named as MediaGoblin's ``gmg batchaddmedia`` names them (``location``,
  ``dc:title``, ``dc:description``, ``license``) or plainly (``file``, ``title``, ``tags``, ``date``,
  ``album``, ...);
- **a Google Takeout** of Google Photos: the photos and videos, each with its JSON sidecar (description,
  when it was taken, where), one folder per album (an album's folder has a ``metadata.json`` with its
  title; the "Photos from 2019" folders are not albums);
- **a Flickr export** ("Your Flickr data"): the photos (``title_ID_o.jpg``), and in the account part
  ``photo_ID.json`` for each (name, description, tags, licence, date taken, where, privacy) and
  ``albums.json``.

Archives are read where they are, member by member (``zipfile`` opens each one as a stream from the
zip's own index): a 50 GB export is never unpacked first. Sidecars, being small, are read first, from
all the parts of a split export (a photo's sidecar may be in another part than the photo).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kiln.errors import InvalidInput
from kiln.imports.items import Album, Incoming

# Files that are never media: what cameras, editors and operating systems leave beside photos.
NOT_MEDIA = {".json", ".xmp", ".csv", ".aae", ".thm", ".db", ".ini", ".html", ".htm", ".ds_store", ".lrv"}
NOT_MEDIA_NAMES = {"thumbs.db", "desktop.ini", ".ds_store"}


def _media_name(name: str) -> bool:
    base = PurePosixPath(name).name
    return bool(base) and not base.startswith(".") and base.lower() not in NOT_MEDIA_NAMES \
        and PurePosixPath(base).suffix.lower() not in NOT_MEDIA


def _date(text: str | None) -> dt.datetime | None:
    """A date or time as spreadsheets and exports write it (ISO 8601, "2019-01-01 12:00:00", a Unix
    timestamp); naive times are taken as UTC."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if re.fullmatch(r"\d{9,11}", text):
            return dt.datetime.fromtimestamp(int(text), dt.UTC)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _tags(text: str) -> list[str]:
    return [t.strip() for t in re.split(r"[,;]", text or "") if t.strip()]


# A folder, and its spreadsheet -------------------------------------------------------------------

COLUMNS = {
    "file": ("location", "media:location", "file", "filename", "path"),
    "title": ("dc:title", "title"),
    "description": ("dc:description", "description"),
    "license": ("license", "licence", "dc:rights"),
    "tags": ("tags", "dc:subject", "keywords"),
    "date": ("dc:created", "dc:date", "date", "created", "taken"),
    "album": ("collection", "album"),
}


@dataclass
class FolderRead:
    items: list[Incoming]
    notes: list[str] = field(default_factory=list)


def _opener(path: Path) -> Any:
    return lambda: path.open("rb")


def read_folder(root: Path, sheet: Path | None = None) -> FolderRead:
    """Every media file under ``root`` (sorted, so runs see them in the same order), with what the
    spreadsheet says about each (matched by its path under ``root``, or by its name when unique)."""
    if not root.is_dir():
        raise InvalidInput("There is no folder %(path)s.", path=str(root))
    notes: list[str] = []
    rows: dict[str, dict[str, str]] = {}
    if sheet is not None:
        rows, notes = _read_sheet(root, sheet)
    files = sorted(p for p in root.rglob("*") if p.is_file() and _media_name(p.name)
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_name[path.name].append(path)
    found: dict[Path, dict[str, str]] = {}
    for where, row in rows.items():
        candidates = [root / where] if (root / where).is_file() else by_name.get(PurePosixPath(where).name, [])
        if len(candidates) == 1:
            found[candidates[0]] = row
        elif not candidates:
            notes.append(f"{sheet.name if sheet else 'sheet'}: {where} is not in the folder; its row is left out")
        else:
            notes.append(f"{where}: {len(candidates)} files have that name; give the path under the folder")
    items = []
    # The spreadsheet's rows in its order (an album's order), then the files it does not name.
    for path in [*found, *(p for p in files if p not in found)]:
        row = found.get(path, {})
        relative = path.relative_to(root).as_posix()
        items.append(Incoming(
            key=f"{relative}|{path.stat().st_size}", name=path.name, open=_opener(path), label=relative,
            title=row.get("title", ""), description=row.get("description", ""), tags=_tags(row.get("tags", "")),
            license=row.get("license", ""), created=_date(row.get("date")),
            albums=[row["album"].strip()] if row.get("album", "").strip() else []))
    return FolderRead(items, notes)


def _read_sheet(root: Path, sheet: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    notes: list[str] = []
    try:
        text = sheet.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput("The spreadsheet %(path)s cannot be read as UTF-8 CSV: %(reason)s", path=str(sheet),
                           reason=str(exc)) from exc
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    header = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
    columns = {field_: next((header[c] for c in names if c in header), None) for field_, names in COLUMNS.items()}
    if columns["file"] is None:
        raise InvalidInput("The spreadsheet %(path)s has no column naming the files: call it location, file or "
                           "filename.", path=str(sheet))
    rows: dict[str, dict[str, str]] = {}
    for number, raw in enumerate(reader, 2):
        where = (raw.get(columns["file"]) or "").strip()
        if not where:
            continue
        if re.match(r"^[a-z]+://", where, re.IGNORECASE):
            if not where.lower().startswith("file://"):
                notes.append(f"{sheet.name} line {number}: {where} is a web address; Kiln imports files in the "
                             "folder only, so the row is left out")
                continue
            where = where[len("file://"):]
        if Path(where).is_absolute():
            try:
                where = Path(where).resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                notes.append(f"{sheet.name} line {number}: {where} is outside the folder; left out")
                continue
        rows[where] = {key: (raw.get(column) or "").strip() for key, column in columns.items() if column}
    return rows, notes


# Zip exports --------------------------------------------------------------------------------------

class Zips:
    """Several parts of one export, open together; members named by (part, name)."""

    def __init__(self, paths: list[Path]) -> None:
        self.stack = ExitStack()
        self.parts: list[zipfile.ZipFile] = []
        for path in paths:
            try:
                self.parts.append(self.stack.enter_context(zipfile.ZipFile(path)))
            except (OSError, zipfile.BadZipFile) as exc:
                self.stack.close()
                raise InvalidInput("%(path)s cannot be read as a zip archive: %(reason)s", path=str(path),
                                   reason=str(exc)) from exc

    def close(self) -> None:
        self.stack.close()

    def members(self) -> Iterator[tuple[zipfile.ZipFile, zipfile.ZipInfo]]:
        for part in self.parts:
            for info in part.infolist():
                if not info.is_dir():
                    yield part, info

    @staticmethod
    def opener(part: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
        return lambda: part.open(info)

    @staticmethod
    def json(part: zipfile.ZipFile, info: zipfile.ZipInfo, notes: list[str]) -> Any:
        if info.file_size > 16 * 1024 * 1024:
            notes.append(f"{info.filename}: a sidecar of {info.file_size} bytes; not read")
            return None
        try:
            with part.open(info) as fh:
                return json.load(fh)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            notes.append(f"{info.filename}: not readable JSON ({exc}); the file it describes comes without it")
            return None


@dataclass
class ExportRead:
    items: list[Incoming]
    albums: dict[str, Album]
    notes: list[str]
    zips: Zips


# Google Takeout (Google Photos) ------------------------------------------------------------------

EDITED = re.compile(r"-(edited|bearbeitet|modifié|editado|modificato)$", re.IGNORECASE)
NUMBERED = re.compile(r"^(?P<stem>.*)\((?P<n>\d+)\)(?P<ext>\.[^.]*)$")


def _sidecar_for(name: str, sidecars: dict[str, Any]) -> Any:
    """The JSON sidecar of ``name`` among its folder's (keyed by their names without ``.json``).

    Google names it ``NAME.supplemental-metadata.json`` (since late 2024) or ``NAME.json`` (before),
    the part before ``.json`` cut to 46 characters; a copy's number goes after that part
    (``IMG(1).jpg`` -> ``IMG.jpg.supplemental-metadata(1).json``, before: ``IMG.jpg(1).json``); an
    edited copy (``IMG-edited.jpg``) has none of its own and shares its original's. Failing those, the
    sidecar whose ``title`` (the file's name when it was uploaded) is the name."""
    stem, ext = PurePosixPath(name).stem, PurePosixPath(name).suffix
    stem = EDITED.sub("", stem)
    number = ""
    if (numbered := NUMBERED.match(stem + ext)) is not None:
        stem, number = numbered["stem"], f"({numbered['n']})"
    base = stem + ext
    for candidate in ((base + ".supplemental-metadata")[:46] + number, base + ".supplemental-metadata" + number,
                      base[:46] + number, base + number):
        if candidate in sidecars:
            return sidecars[candidate]
    titled = [value for value in sidecars.values() if value.get("title") == name]
    return titled[0] if len(titled) == 1 else None


def _google_time(meta: dict[str, Any]) -> dt.datetime | None:
    for name in ("photoTakenTime", "creationTime"):
        stamp = (meta.get(name) or {}).get("timestamp")
        if stamp and str(stamp).isdigit() and int(stamp) > 0:
            return dt.datetime.fromtimestamp(int(stamp), dt.UTC)
    return None


def _google_place(meta: dict[str, Any]) -> tuple[float, float] | None:
    for name in ("geoData", "geoDataExif"):
        geo = meta.get(name) or {}
        try:
            lat, lon = float(geo.get("latitude", 0)), float(geo.get("longitude", 0))
        except (TypeError, ValueError):
            continue
        if (lat, lon) != (0.0, 0.0) and -90 <= lat <= 90 and -180 <= lon <= 180:
            return lat, lon
    return None


def read_takeout(paths: list[Path]) -> ExportRead:
    zips = Zips(paths)
    notes: list[str] = []
    sidecars: dict[str, dict[str, Any]] = defaultdict(dict)  # folder -> {name without .json: data}
    albums: dict[str, Album] = {}
    media: list[tuple[zipfile.ZipFile, zipfile.ZipInfo]] = []
    for part, info in zips.members():
        path = PurePosixPath(info.filename)
        folder = str(path.parent)
        if path.suffix.lower() == ".json":
            data = Zips.json(part, info, notes)
            if not isinstance(data, dict):
                continue
            if path.name == "metadata.json" and data.get("title"):
                albums[folder] = Album(str(data["title"]), str(data.get("description") or ""))
            else:
                sidecars[folder][path.name[: -len(".json")]] = data
        elif _media_name(info.filename):
            media.append((part, info))
    names = {(str(PurePosixPath(i.filename).parent), PurePosixPath(i.filename).name) for _, i in media}
    items: list[Incoming] = []
    superseded = 0
    for part, info in media:
        path = PurePosixPath(info.filename)
        folder = str(path.parent)
        edited = f"{path.stem}-edited{path.suffix}"
        if (folder, edited) in names:  # the person's edit is what Google Photos showed them
            superseded += 1
            continue
        meta = _sidecar_for(path.name, sidecars.get(folder, {})) or {}
        taken = _google_time(meta)
        items.append(Incoming(
            # The same photo is in its year's folder and in each album: one item, in every album.
            key=f"{path.name}|{info.file_size}|{taken.isoformat() if taken else ''}", name=path.name,
            open=Zips.opener(part, info), label=info.filename, description=str(meta.get("description") or ""),
            created=taken, gps=_google_place(meta), albums=[folder] if folder in albums else []))
    if superseded:
        notes.append(f"{superseded} photos with an edited copy beside them: the edited copy was imported")
    return ExportRead(items, albums, notes, zips)


# Flickr ------------------------------------------------------------------------------------------

FLICKR_FILE = re.compile(r"(?:^|_)(?P<id>\d{5,})(?:_[0-9a-f]{4,})?_o\.[A-Za-z0-9]+$")
PHOTO_JSON = re.compile(r"(?:^|/)photo_(?P<id>\d+)\.json$")


def flickr_license(name: str) -> str:
    """Flickr's licence names ("Attribution-ShareAlike License", "Public Domain Dedication (CC0)") as
    licence URLs; "" for all rights reserved and for what has no URL."""
    said = (name or "").lower()
    if "cc0" in said or "public domain dedication" in said:
        return "https://creativecommons.org/publicdomain/zero/1.0/"
    if "public domain mark" in said:
        return "https://creativecommons.org/publicdomain/mark/1.0/"
    if "attribution" not in said:
        return ""
    code = "by" + ("-nc" if "noncommercial" in said else "") + ("-nd" if "noderiv" in said else "") \
        + ("-sa" if "sharealike" in said else "")
    version = "4.0" if "4.0" in said else "2.0"
    return f"https://creativecommons.org/licenses/{code}/{version}/"


def _flickr_place(meta: dict[str, Any]) -> tuple[float, float] | None:
    geo = meta.get("geo") or []
    first = geo[0] if isinstance(geo, list) and geo else geo if isinstance(geo, dict) else None
    if not isinstance(first, dict):
        return None
    try:
        lat, lon = float(first.get("latitude")), float(first.get("longitude"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if abs(lat) > 90 or abs(lon) > 180:  # given in millionths of a degree
        lat, lon = lat / 1e6, lon / 1e6
    return (lat, lon) if (lat, lon) != (0.0, 0.0) and abs(lat) <= 90 and abs(lon) <= 180 else None


def read_flickr(paths: list[Path]) -> ExportRead:
    zips = Zips(paths)
    notes: list[str] = []
    photos: dict[str, dict[str, Any]] = {}
    album_list: list[dict[str, Any]] = []
    media: list[tuple[zipfile.ZipFile, zipfile.ZipInfo, str]] = []
    for part, info in zips.members():
        name = info.filename
        if (found := PHOTO_JSON.search(name)) is not None:
            data = Zips.json(part, info, notes)
            if isinstance(data, dict):
                photos[found["id"]] = data
        elif PurePosixPath(name).name == "albums.json":
            data = Zips.json(part, info, notes)
            if isinstance(data, dict) and isinstance(data.get("albums"), list):
                album_list = [a for a in data["albums"] if isinstance(a, dict)]
        elif _media_name(name) and (found := FLICKR_FILE.search(PurePosixPath(name).name)) is not None:
            media.append((part, info, found["id"]))
        elif _media_name(name):
            notes.append(f"{name}: not named as Flickr names its photos (NAME_ID_o.jpg); left out")
    albums: dict[str, Album] = {}
    in_albums: dict[str, list[str]] = defaultdict(list)
    for album in album_list:
        album_id = str(album.get("id") or album.get("title"))
        albums[album_id] = Album(str(album.get("title") or album_id), str(album.get("description") or ""))
        for photo_id in album.get("photos") or []:
            in_albums[str(photo_id)].append(album_id)
    if media and not photos:
        notes.append("no photo_ID.json found: give the account part of the export too (the zip with "
                     "albums.json); the photos come without their titles and descriptions")
    items = []
    for part, info, photo_id in media:
        meta = photos.get(photo_id, {})
        privacy = str(meta.get("privacy") or "public").lower()
        tags = [str(t.get("tag")) for t in meta.get("tags") or [] if isinstance(t, dict) and t.get("tag")]
        items.append(Incoming(
            key=f"flickr:{photo_id}", name=PurePosixPath(info.filename).name, open=Zips.opener(part, info),
            label=info.filename, title=str(meta.get("name") or ""), description=str(meta.get("description") or ""),
            tags=tags, license=flickr_license(str(meta.get("license") or "")),
            created=_date(str(meta.get("date_taken") or "")) or _date(str(meta.get("date_imported") or "")),
            gps=_flickr_place(meta), albums=in_albums.get(photo_id, []),
            # Only what was public on Flickr is public here: friends, family and private stay private.
            visibility="public" if privacy == "public" else "private"))
    return ExportRead(items, albums, notes, zips)
