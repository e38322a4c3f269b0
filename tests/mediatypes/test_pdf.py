"""The PDF kind, on documents written by tests/fixtures_pdf.py, directly and through the real app."""

from __future__ import annotations

import re
import time
from functools import partial
from pathlib import Path

import pytest
from PIL import Image
from tests import fixtures_pdf as F
from tests import kindsteps
from tests.conftest import csrf, register

from kiln.config import load_settings
from kiln.media.models import MediaEntry
from kiln.mediatypes import identify as registry_identify
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.pdf import KIND, _pdf_date, reader


@pytest.fixture
def plain_settings(tmp_path: Path):
    return load_settings(data_dir=tmp_path / "data")


run_all = partial(kindsteps.run_all, KIND)


def upload(client, path: Path, name: str | None = None):  # type: ignore[no-untyped-def]
    return client.post("/upload", data={"csrf_token": csrf(client, "/upload")},
                       files=[("file", (name or path.name, path.read_bytes(), "application/octet-stream"))])


# Recognising ---------------------------------------------------------------------------------------
def test_samples_are_recognised_with_their_page_count(samples, plain_settings):
    pages = {"multipage": 3, "one_page": 1, "scan": 1, "owner_locked": 1}
    for key, path in samples("pdf").items():
        found = registry_identify(path, plain_settings, filename=path.name)
        assert (found.kind, found.mime_type) == ("pdf", "application/pdf")
        assert found.extra["pages"] == pages[key]
    assert KIND.identify(samples("pdf")["owner_locked"], b"%PDF-", plain_settings).extra["encrypted"] is True


@pytest.mark.parametrize(("key", "code", "words"), [
    ("truncated", "corrupt", "incomplete"),
    ("encrypted", "encrypted", "protected by a password"),
    ("many_pages", "too_large", "20,000 pages; Kiln accepts documents of up to 5,000 pages"),
    ("huge_page", "too_large", "27,778\u00d727,778 inches"),
    ("polyglot_html_first", "polyglot", "something else in front of its PDF header"),
    ("polyglot_pdf_first", "polyglot", "also contains a web page"),
    ("text_named_pdf", "unsupported", "is a text file"),
    ("not_a_pdf_after_header", "corrupt", "incomplete"),
])
def test_hostile_files_are_refused_at_upload_with_a_reason(hostile, plain_settings, key, code, words):
    path = hostile("pdf")[key]
    started = time.perf_counter()
    with pytest.raises(MediaRejected) as caught:
        registry_identify(path, plain_settings, filename=path.name)
    assert time.perf_counter() - started < 5
    assert caught.value.code == code
    assert words in caught.value.message


def test_page_limits_follow_the_settings(samples, tmp_path):
    few = load_settings(data_dir=tmp_path / "data", document={"max_pages": 2})
    with pytest.raises(MediaRejected, match="3 pages; Kiln accepts documents of up to 2 pages"):
        KIND.identify(samples("pdf")["multipage"], b"%PDF-", few)
    small = load_settings(data_dir=tmp_path / "data", document={"max_page_inches": 5})
    with pytest.raises(MediaRejected, match="measures 4\u00d76 inches; Kiln accepts pages of up to 5 inches"):
        KIND.identify(samples("pdf")["scan"], b"%PDF-", small)


def test_the_reader_runs_in_a_child_that_is_stopped_on_time(samples, tmp_path):
    hurried = load_settings(data_dir=tmp_path / "data", document={"probe_seconds": 0.001})
    with pytest.raises(MediaRejected) as caught:
        reader.probe(samples("pdf")["multipage"], hurried)
    assert caught.value.code == "timeout" and "took longer" in caught.value.message


def test_the_reader_child_has_a_memory_cap(samples, tmp_path):
    starved = load_settings(data_dir=tmp_path / "data", document={"memory_mb": 20})
    with pytest.raises(MediaRejected) as caught:
        reader.probe(samples("pdf")["multipage"], starved)
    assert caught.value.code == "corrupt"  # the child could not even start: it never ran unbounded


# Processing ----------------------------------------------------------------------------------------
def test_multipage_document_gives_pictures_of_its_pages(samples, plain_settings, tmp_path):
    seen: list[float] = []
    made, info = run_all(samples("pdf")["multipage"], plain_settings, tmp_path / "work", progress=seen.append)
    assert sorted(made) == ["medium", "page-1", "page-2", "page-3", "thumbnail", "thumbnail_2x"]
    medium, thumb = made["medium"], made["thumbnail"]
    assert max(made["thumbnail_2x"].width, made["thumbnail_2x"].height) == 360  # from the medium, same shape
    assert (medium.mime_type, medium.height) == ("image/jpeg", 1280) and medium.width == round(1280 * 595 / 842)
    assert max(thumb.width, thumb.height) == 180
    assert (made["page-2"].width, made["page-2"].height) == (1200, 848)  # the landscape page
    with Image.open(made["page-1"].path) as page:
        assert page.size == (1200, 1699)
        assert page.getpixel((600, 150))[0] > 200 and page.getpixel((600, 150))[2] < 80  # the orange band
        assert page.getpixel((5, 5)) == (255, 255, 255)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    assert info["pages"] == 3 and info["pages_shown"] == 3 and info["page_size_mm"] == [210, 297]
    assert info["page_text"][1] == "Page 2 of 3\nKiln renders PDF pages as pictures."
    assert info["document"] == {"title": F.TITLE, "author": F.AUTHOR, "subject": F.SUBJECT,
                                "creator": "tests/fixtures_pdf.py", "producer": "Kiln fixture writer",
                                "created": "2024-02-29T12:30:00"}


def test_only_the_first_pages_are_drawn(samples, tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", document={"pages_shown": 2, "page_width": 300})
    made, info = run_all(samples("pdf")["multipage"], settings, tmp_path / "work")
    assert sorted(n for n in made if n.startswith("page-")) == ["page-1", "page-2"]
    assert made["page-1"].width == 300 and info["pages_shown"] == 2 and info["pages"] == 3


def test_progress_is_reported_page_by_page(tmp_path, plain_settings):
    path = tmp_path / "forty.pdf"
    path.write_bytes(F.many_pages(40))
    seen: list[int] = []
    drawn = reader.draw_pages(path, tmp_path / "out", 1, 40, (2000, 4000), "jpeg", 90, plain_settings,
                              progress=seen.append)
    assert [p.number for p in drawn] == list(range(1, 41))
    assert seen == list(range(1, 41))  # one report per page, as each is finished


def test_steps_and_fingerprints(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    names = [(s.name, [r.name for r in s.renditions]) for s in KIND.steps(settings)]
    pages = [f"page-{n}" for n in range(1, settings.document.pages_shown + 1)]
    assert names == [("medium", ["medium"]), ("thumbnail", ["thumbnail", "thumbnail_2x"]), ("metadata", []),
                     ("pages", pages)]
    # Every page shown has a spec; only the first must exist (a short document has fewer pages).
    assert [r.optional for r in KIND.steps(settings)[3].renditions] == [n > 1 for n in range(1, len(pages) + 1)]
    wider = load_settings(data_dir=tmp_path / "data", document={"page_width": 800})
    assert KIND.steps(settings)[3].fingerprint() != KIND.steps(wider)[3].fingerprint()
    assert KIND.steps(settings)[0].fingerprint() == KIND.steps(wider)[0].fingerprint()


@pytest.mark.parametrize(("raw", "iso"), [("D:20240229123000+01'00'", "2024-02-29T12:30:00"),
                                          ("D:1999", "1999-01-01T00:00:00"), ("yesterday", None)])
def test_pdf_dates(raw, iso):
    assert _pdf_date(raw) == iso


# Through the app -----------------------------------------------------------------------------------
def test_every_sample_is_published_with_a_thumbnail_and_a_page(client, settings, rt, samples):
    register(client, settings)
    for path in samples("pdf").values():
        assert upload(client, path).status_code == 200
    with rt.sessions() as session:
        entries = session.query(MediaEntry).all()
        assert len(entries) == len(samples("pdf"))
        for entry in entries:
            assert entry.state == "processed", (entry.original_name, entry.error_message)
            assert entry.rendition("thumbnail") is not None and entry.info.get("blurhash")
            pages = [r for r in entry.renditions if r.name.startswith("page-")]
            assert len(pages) == entry.info["pages_shown"] == entry.info["pages"]
            page = client.get(f"/u/alice/m/{entry.id}")
            assert page.status_code == 200
            section = re.search(r'<section class="display display-pdf".*?</section>', page.text, re.S).group(0)
            assert section.count("<img ") == len(pages)
            assert "style=" not in section and "<script" not in section and not re.search(r"\son\w+=", section)
            for rendition in pages:
                served = client.get(rt.stores.public.url(rendition.key))
                assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        multipage = next(e for e in entries if e.original_name == "multipage.pdf")
        assert multipage.info["document"]["author"] == F.AUTHOR
    page = client.get(f"/u/alice/m/{multipage.id}").text
    assert "Ada Lovelace" in page and "3 pages" in page and "210 × 297 mm" in page
    assert "<h2>Page 3</h2><p>Page 3 of 3\nKiln renders PDF pages as pictures.</p>" in page
    scan = client.get(f"/u/alice/m/{next(e.id for e in entries if e.original_name == 'scan.pdf')}").text
    assert "pdf-text" not in scan  # a scan has no text layer


def test_every_hostile_file_is_refused_or_failed_with_a_message(client, settings, rt, hostile):
    register(client, settings)
    for name, path in hostile("pdf").items():
        resp = client.post("/upload", data={"csrf_token": csrf(client, "/upload")},
                           files=[("file", (path.name, path.read_bytes(), "application/pdf"))],
                           headers={"Accept": "application/json"})
        assert resp.status_code == 415, (name, resp.text)
        message = resp.json()["error"]["message"]
        assert message.startswith(f"{path.name}: ") and len(message) > len(path.name) + 30
    with rt.sessions() as session:
        assert session.query(MediaEntry).count() == 0


def test_original_published_without_metadata_keeps_the_pages(client, settings, rt, samples):
    from tests.conftest import form_post

    register(client, settings)
    upload(client, samples("pdf")["multipage"])
    with rt.sessions() as session:
        media_id = session.query(MediaEntry).one().id
    form_post(client, f"/m/{media_id}/edit", {"title": "Doc", "original": "stripped"})
    page = client.get(f"/u/alice/m/{media_id}").text
    href = page.split('<p class="download"><a href="')[1].split('"')[0]
    served = client.get(href)
    assert served.status_code == 200 and served.content.startswith(b"%PDF-")
    assert F.AUTHOR.encode() not in served.content and F.TITLE.encode() not in served.content
    assert b"Ada Lovelace" in samples("pdf")["multipage"].read_bytes()
    copy = Path(settings.data_dir) / "stripped.pdf"
    copy.write_bytes(served.content)
    assert reader.probe(copy, settings).pages == 3
