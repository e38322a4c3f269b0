"""`kiln import folder|takeout|flickr` on small archives made here in the layouts the real exports use
(docs/import.md says where those layouts were learned): what each says about a file lands on its item,
albums become collections, a second run imports nothing, and a run killed half-way loses nothing and
duplicates nothing when run again."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

from PIL import Image
from sqlalchemy import create_engine, select, text

from kiln.media.models import MediaEntry
from kiln.runtime import build_runtime
from kiln.social.models import Collection, CollectionItem
from tests.conftest import make_settings


def jpeg(seed: int, size: tuple[int, int] = (48, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, ((seed * 40) % 256, (seed * 90) % 256, 120)).save(out, "JPEG")
    return out.getvalue()


def items_of(kiln, db_url: str) -> dict[str, MediaEntry]:  # type: ignore[no-untyped-def]
    rt = build_runtime(make_settings(kiln.data, db_url))
    try:
        with rt.sessions() as s:
            found = {m.original_name: m for m in s.scalars(select(MediaEntry))}
            for m in found.values():  # loaded while the session is open
                _ = m.tags
            s.expunge_all()
            return found
    finally:
        rt.close()


def collections_of(kiln, db_url: str) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    rt = build_runtime(make_settings(kiln.data, db_url))
    try:
        with rt.sessions() as s:
            out: dict[str, list[str]] = {}
            for c in s.scalars(select(Collection)):
                rows = s.scalars(select(CollectionItem).where(CollectionItem.collection_id == c.id)
                                 .order_by(CollectionItem.position)).all()
                out[f"{c.title}|{c.visibility}"] = [r.media.original_name for r in rows]
            return out
    finally:
        rt.close()


def test_a_folder_with_a_mediagoblin_style_spreadsheet(kiln, tmp_path, db_url) -> None:  # type: ignore[no-untyped-def]
    kiln("adduser", "alice", "--email", "alice@example.org", "--password", "correct horse")
    folder = tmp_path / "photos"
    (folder / "2019").mkdir(parents=True)
    (folder / "harbour.jpg").write_bytes(jpeg(1))
    (folder / "2019" / "ferry.jpg").write_bytes(jpeg(2))
    (folder / "untitled.jpg").write_bytes(jpeg(3))
    (folder / ".hidden.jpg").write_bytes(jpeg(4))
    (folder / "harbour.xmp").write_text("<x:xmpmeta/>")
    (folder / "Thumbs.db").write_bytes(b"\0" * 10)
    sheet = tmp_path / "metadata.csv"
    sheet.write_text(
        "location,dc:title,dc:description,license,tags,dc:created,album\n"
        "harbour.jpg,Harbour at dusk,**Golden** light,http://creativecommons.org/licenses/by-sa/3.0/,"
        "\"harbour, sunset\",2019-06-01T18:30:00,Best of\n"
        "2019/ferry.jpg,From the ferry,,https://creativecommons.org/licenses/by/4.0/,travel,2019-07-02,Best of\n"
        "https://example.org/remote.jpg,Remote,,,,,\n"
        "missing.jpg,Missing,,,,,\n", encoding="utf-8")
    dry = kiln("import", "folder", str(folder), "--user", "alice", "--csv", str(sheet), "--dry-run")
    assert "media        would import 3" in dry.output and "collections  would import 1" in dry.output, dry.output
    first = kiln("import", "folder", str(folder), "--user", "alice", "--csv", str(sheet), "--wait")
    assert "media        imported 3" in first.output, first.output
    assert "https://example.org/remote.jpg is a web address" in first.output
    assert "missing.jpg is not in the folder" in first.output
    again = kiln("import", "folder", str(folder), "--user", "alice", "--csv", str(sheet))
    assert "Nothing to do" in again.output and "already here 3" in again.output, again.output

    items = items_of(kiln, db_url)
    assert sorted(items) == ["ferry.jpg", "harbour.jpg", "untitled.jpg"]
    harbour = items["harbour.jpg"]
    assert (harbour.title, harbour.description, harbour.state) == ("Harbour at dusk", "**Golden** light", "processed")
    assert harbour.license == "https://creativecommons.org/licenses/by-sa/3.0/"  # an earlier version, kept
    assert sorted(t.name for t in harbour.tags) == ["harbour", "sunset"]
    assert harbour.created == harbour.published == dt.datetime(2019, 6, 1, 18, 30, tzinfo=dt.UTC)
    assert harbour.visibility == "public" and harbour.imported_from == "folder"
    assert items["untitled.jpg"].title == "untitled"  # no row: the name, as an upload gets it
    assert collections_of(kiln, db_url) == {"Best of|public": ["harbour.jpg", "ferry.jpg"]}


GOOGLE = "Takeout/Google Photos"


def sidecar(taken: int, description: str = "", lat: float = 0.0, lon: float = 0.0) -> bytes:
    return json.dumps({
        "title": "x", "description": description, "imageViews": "3",
        "creationTime": {"timestamp": str(taken + 100), "formatted": "whenever"},
        "photoTakenTime": {"timestamp": str(taken), "formatted": "whenever"},
        "geoData": {"latitude": lat, "longitude": lon, "altitude": 0.0, "latitudeSpan": 0.0, "longitudeSpan": 0.0},
        "geoDataExif": {"latitude": 0.0, "longitude": 0.0, "altitude": 0.0, "latitudeSpan": 0.0,
                        "longitudeSpan": 0.0},
        "url": "https://photos.google.com/photo/AF1Qip", "googlePhotosOrigin": {"mobileUpload": {}},
    }).encode()


def test_a_google_takeout_in_two_parts(kiln, tmp_path, db_url) -> None:  # type: ignore[no-untyped-def]
    kiln("adduser", "bob", "--email", "bob@example.org", "--password", "correct horse")
    long_name = "PXL_20190704_183012345.PORTRAIT.ORIGINAL_and_more.jpg"  # its sidecar's name is cut at 51
    one, two = tmp_path / "takeout-001.zip", tmp_path / "takeout-002.zip"
    with zipfile.ZipFile(one, "w") as z:
        z.writestr(f"{GOOGLE}/Photos from 2019/IMG_0001.JPG", jpeg(1))
        z.writestr(f"{GOOGLE}/Summer trip/IMG_0001.JPG", jpeg(1))  # the same photo, in its album
        z.writestr(f"{GOOGLE}/Summer trip/metadata.json",
                   json.dumps({"title": "Summer trip", "description": "Sweden, 2019", "access": "protected"}))
        z.writestr(f"{GOOGLE}/Photos from 2019/IMG_0002.jpg", jpeg(2))
        z.writestr(f"{GOOGLE}/Photos from 2019/IMG_0002-edited.jpg", jpeg(3))
        z.writestr(f"{GOOGLE}/Photos from 2019/{long_name}", jpeg(4))
        z.writestr(f"{GOOGLE}/Photos from 2019/IMG_0005(1).jpg", jpeg(5))
        z.writestr(f"{GOOGLE}/Photos from 2019/IMG_0006(1).jpg", jpeg(6))
        z.writestr("Takeout/archive_browser.html", "<html></html>")
    with zipfile.ZipFile(two, "w") as z:  # the sidecars in the other part
        z.writestr(f"{GOOGLE}/Photos from 2019/IMG_0001.JPG.supplemental-metadata.json",
                   sidecar(1562265012, "Ferry to Stockholm", 59.3367, 18.0162))
        z.writestr(f"{GOOGLE}/Summer trip/IMG_0001.JPG.supplemental-metadata.json",
                   sidecar(1562265012, "Ferry to Stockholm", 59.3367, 18.0162))
        z.writestr(f"{GOOGLE}/Photos from 2019/IMG_0002.jpg.json", sidecar(1546300800, "New year"))
        z.writestr(f"{GOOGLE}/Photos from 2019/{(long_name + '.supplemental-metadata')[:46]}.json",
                   sidecar(1562265099, "Portrait"))
        z.writestr(f"{GOOGLE}/Photos from 2019/IMG_0005.jpg(1).json", sidecar(1562265200, "Second copy"))
        z.writestr(f"{GOOGLE}/Photos from 2019/IMG_0006.jpg.supplemental-metadata(1).json",
                   sidecar(1562265300, "Numbered, new style"))
    result = kiln("import", "takeout", str(one), str(two), "--user", "bob")
    assert "media        imported 5" in result.output, result.output
    assert "the edited copy was imported" in result.output
    assert "Nothing to do" in kiln("import", "takeout", str(one), str(two), "--user", "bob").output

    items = items_of(kiln, db_url)
    assert sorted(items) == sorted(["IMG_0001.JPG", "IMG_0002-edited.jpg", long_name, "IMG_0005(1).jpg",
                                    "IMG_0006(1).jpg"])
    ferry = items["IMG_0001.JPG"]
    assert ferry.description == "Ferry to Stockholm" and ferry.visibility == "private"
    assert ferry.created == dt.datetime.fromtimestamp(1562265012, dt.UTC)
    assert (ferry.gps_lat, ferry.gps_lon) == (59.3367, 18.0162)
    assert items["IMG_0002-edited.jpg"].description == "New year"
    assert items[long_name].description == "Portrait" and items["IMG_0005(1).jpg"].description == "Second copy"
    assert items["IMG_0006(1).jpg"].description == "Numbered, new style"
    assert collections_of(kiln, db_url) == {"Summer trip|private": ["IMG_0001.JPG"]}


def test_a_flickr_export(kiln, tmp_path, db_url) -> None:  # type: ignore[no-untyped-def]
    kiln("adduser", "carol", "--email", "carol@example.org", "--password", "correct horse")
    photos, account = tmp_path / "data-download-1.zip", tmp_path / "72157720000000000_abcdef_part1.zip"
    with zipfile.ZipFile(photos, "w") as z:
        z.writestr("sunset-over-the-bay_49876543210_o.jpg", jpeg(1))
        z.writestr("49876543211_4f3a2b1c9d_o.jpg", jpeg(2))
    with zipfile.ZipFile(account, "w") as z:
        z.writestr("photo_49876543210.json", json.dumps({
            "id": "49876543210", "name": "Sunset over the bay", "description": "From the pier.",
            "count_views": "12", "count_faves": "1", "date_taken": "2019-08-01 20:15:00",
            "date_imported": "2019-08-02 09:00:00", "photopage": "https://www.flickr.com/photos/carol/49876543210/",
            "license": "Attribution-ShareAlike License", "privacy": "public",
            "geo": [{"latitude": "59336666", "longitude": "18016166", "accuracy": "16"}],
            "tags": [{"tag": "sunset", "user": "carol"}, {"tag": "bay", "user": "carol"}],
            "albums": [{"id": "72157700000000001", "title": "Evenings"}], "comments": []}))
        z.writestr("photo_49876543211.json", json.dumps({
            "id": "49876543211", "name": "Family dinner", "description": "", "date_taken": "2019-08-03 19:00:00",
            "license": "All Rights Reserved", "privacy": "friends & family", "geo": [], "tags": [], "albums": []}))
        z.writestr("albums.json", json.dumps({"albums": [{
            "id": "72157700000000001", "title": "Evenings", "description": "Light at the end of the day",
            "photo_count": "1", "photos": ["49876543210"]}]}))
    result = kiln("import", "flickr", str(photos), str(account), "--user", "carol")
    assert "media        imported 2" in result.output, result.output
    items = items_of(kiln, db_url)
    sunset = items["sunset-over-the-bay_49876543210_o.jpg"]
    assert (sunset.title, sunset.description, sunset.visibility) == ("Sunset over the bay", "From the pier.", "public")
    assert sunset.license == "https://creativecommons.org/licenses/by-sa/2.0/"
    assert sorted(t.name for t in sunset.tags) == ["bay", "sunset"]
    assert sunset.created == dt.datetime(2019, 8, 1, 20, 15, tzinfo=dt.UTC)
    assert round(sunset.gps_lat or 0, 4) == 59.3367
    dinner = items["49876543211_4f3a2b1c9d_o.jpg"]
    assert (dinner.title, dinner.visibility, dinner.license) == ("Family dinner", "private", "")
    assert collections_of(kiln, db_url) == {"Evenings|public": ["sunset-over-the-bay_49876543210_o.jpg"]}


def test_a_folder_import_killed_half_way_finishes_with_no_duplicate(kiln, tmp_path, db_url) -> None:  # type: ignore[no-untyped-def]
    kiln("adduser", "dora", "--email", "dora@example.org", "--password", "correct horse")
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(16):
        (folder / f"p{n:02}.jpg").write_bytes(jpeg(n, (400, 300)))
    env = {**os.environ, "KILN_DATABASE_URL": db_url, "KILN_BASE_URL": "http://kiln.test"}
    command = [sys.executable, "-m", "kiln", "--data", str(kiln.data), "import", "folder", str(folder),
               "--user", "dora"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    engine = create_engine(db_url)
    try:
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline and process.poll() is None:
            with engine.connect() as conn:
                count = conn.execute(text("SELECT count(*) FROM media")).scalar_one()
            if count >= 4:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL and 4 <= count < 16, (process.returncode, count)
        result = kiln("import", "folder", str(folder), "--user", "dora", "--json")
        report = json.loads(result.output)
        assert report["counts"]["media"]["already"] + report["counts"]["media"]["new"] == 16, report
        with engine.connect() as conn:
            names = conn.execute(text("SELECT original_name FROM media")).scalars().all()
        assert sorted(names) == [f"p{n:02}.jpg" for n in range(16)]
    finally:
        engine.dispose()
        if process.poll() is None:
            process.kill()
