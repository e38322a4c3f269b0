"""Camera data as a photographer reads it (mediatypes/image/camera.py), and on the media page."""

from __future__ import annotations

import re

import pytest
from tests.conftest import register
from tests.test_media_web import upload

from kiln.media.models import MediaEntry
from kiln.mediatypes.image.camera import (
    aperture,
    brand_and_model,
    camera_details,
    date_taken,
    exposure,
    iso,
    millimetres,
)
from kiln.mediatypes.image.exif import _exposure


@pytest.mark.parametrize(("stored", "shown"), [
    ("1/250", "1/250 s"), (1 / 250, "1/250 s"), (0.004, "1/250 s"), ("1/8000", "1/8000 s"),
    (1 / 3, "1/3 s"), ("1/2.5", "1/2.5 s"), (0.4, "1/2.5 s"), (333 / 1000, "1/3 s"),
    ("0.5", "0.5 s"), (0.5, "0.5 s"), ("0.8", "0.8 s"), (2, "2 s"), ("2", "2 s"), ("1.3", "1.3 s"),
    (30, "30 s"), (1 / 60.0000001, "1/60 s"),
])
def test_exposure_reads_like_a_camera(stored, shown):
    assert exposure(stored) == shown


@pytest.mark.parametrize("stored", [None, 0, "0", -1, "1/0", "0/0", float("nan"), float("inf"), 7200, True,
                                    "", "fast", "1/250; drop table", "9" * 40, [1, 250], {"a": 1}])
def test_exposure_leaves_out_what_makes_no_sense(stored):
    assert exposure(stored) is None


@pytest.mark.parametrize(("seconds", "stored"), [
    ((1, 250), "1/250"), ((10, 25), "1/2.5"), ((333333, 1000000), "1/3"), ((1, 2), "0.5"), ((13, 10), "1.3"),
    ((0, 0), None), ((0, 1), None),
])
def test_extraction_keeps_odd_rationals_readable(seconds, stored):
    from PIL.TiffImagePlugin import IFDRational

    assert _exposure(IFDRational(*seconds)) == stored


@pytest.mark.parametrize(("stored", "shown"), [
    (2.8, "f/2.8"), (8, "f/8"), (8.0, "f/8"), (1.7999, "f/1.8"), (0.95, "f/0.95"), (22, "f/22"),
    (5.6000001, "f/5.6"),
])
def test_aperture(stored, shown):
    assert aperture(stored) == shown


@pytest.mark.parametrize("stored", [0, -2.8, None, "2.8", float("nan"), True, 10**9])
def test_aperture_absent_or_nonsense(stored):
    assert aperture(stored) is None


def test_iso_and_focal_lengths():
    assert iso(400) == "400" and iso(64.0) == "64" and iso(0) is None and iso("400") is None and iso(0.2) is None
    assert millimetres(35) == "35 mm" and millimetres(4.25) in ("4.2 mm", "4.3 mm") and millimetres(600.4) == "600 mm"
    assert millimetres(0) is None and millimetres(-5) is None and millimetres(float("inf")) is None


@pytest.mark.parametrize(("make", "model", "shown"), [
    ("Canon", "Canon EOS R5", "Canon EOS R5"),
    ("NIKON CORPORATION", "NIKON D850", "NIKON D850"),
    ("SONY", "ILCE-7M3", "SONY ILCE-7M3"),
    ("OLYMPUS IMAGING CORP.", "E-M5", "OLYMPUS E-M5"),
    ("RICOH IMAGING COMPANY, LTD.", "PENTAX K-1", "RICOH PENTAX K-1"),
    ("Apple", "iPhone 13 mini", "Apple iPhone 13 mini"),
    ("samsung", "SAMSUNG SM-G991B", "SAMSUNG SM-G991B"),
    ("", "X100V", "X100V"), ("FUJIFILM", None, "FUJIFILM"), (None, None, None),
    ("  Leica  ", "  M11\x00\x00 ", "Leica M11"), ("---", "...", None), (12, ["x"], None),
])
def test_camera_names_never_repeat_the_maker(make, model, shown):
    assert brand_and_model(make, model) == shown


def test_dates_are_readable_and_keep_the_camera_clock():
    assert date_taken("2024-05-17T14:03:22+02:00") == ("17 May 2024, 14:03", "2024-05-17T14:03:22+02:00")
    assert date_taken("2023-01-02T08:05:00") == ("2 January 2023, 08:05", "2023-01-02T08:05:00")
    for bad in ("0000-00-00T00:00:00", "1700-01-01T00:00:00", "yesterday", "", None, 20240517,
                "2024-05-17T" + "9" * 50):
        assert date_taken(bad) is None


def test_details_show_only_what_a_photographer_reads():
    stored = {"make": "Canon", "model": "Canon EOS R5", "software": "Firmware 1.8.1", "lens": "RF24-70mm F2.8 L IS USM",
              "lens_make": "Canon", "exposure_time": "1/250", "f_number": 2.8, "iso": 400, "focal_length": 35,
              "focal_length_35mm": 35, "orientation": 6, "date_taken": "2024-05-17T14:03:22+02:00", "flash": 9}
    assert camera_details(stored) == {
        "camera": "Canon EOS R5", "lens": "Canon RF24-70mm F2.8 L IS USM", "exposure": "1/250 s",
        "aperture": "f/2.8", "iso": "400", "focal_length": "35 mm", "flash": True,
        "taken": "17 May 2024, 14:03", "taken_iso": "2024-05-17T14:03:22+02:00",
    }  # no firmware, no orientation; the 35 mm equivalent only when it differs
    phone = camera_details({"make": "Apple", "model": "iPhone 13", "focal_length": 5.1, "focal_length_35mm": 26,
                            "flash": 16})
    assert phone == {"camera": "Apple iPhone 13", "focal_length": "5.1 mm", "focal_length_35mm": "26 mm"}
    assert camera_details({"orientation": 6}) == {} and camera_details(None) == {} and camera_details([]) == {}
    hostile = camera_details({"make": "<script>alert(1)</script>", "model": "A" * 500, "f_number": "2.8",
                              "exposure_time": {"x": 1}, "iso": -400, "date_taken": ["2024"], "flash": "yes"})
    assert hostile == {"camera": "<script>alert(1)</script> " + "A" * 120}


def test_media_page_shows_camera_details_not_developer_keys(client, settings, rt, images):
    register(client, settings)
    upload(client, images["camera"])
    with rt.sessions() as session:
        media = session.query(MediaEntry).one()
    html = client.get(f"/u/alice/m/{media.id}").text
    details = re.search(r'<details class="exif".*?</details>', html, re.S).group(0)
    text = " ".join(re.sub(r"<[^>]+>", " ", details).split())
    assert text == ("Camera details Camera KilnCam KC-24 Mark II Lens KilnLens 35mm F2.8 Exposure 1/250 s "
                    "Aperture f/2.8 Sensitivity ISO 400 Focal length 35 mm Taken 17 May 2024, 14:03")
    assert '<time datetime="2024-05-17T14:03:22+02:00">' in details
    for internal in ("f_number", "exposure_time", "orientation", "KilnFirmware", "date_taken"):
        assert internal not in html


def test_flash_is_read_from_the_file():
    from tests.fixtures_images import ascii_, exif_block, short

    from kiln.mediatypes.image.exif import read_exif

    fired, _ = read_exif(exif_block({0x010F: ascii_("Cam")}, exif={0x9209: short(0x19)}))
    assert fired["flash"] == 0x19 and camera_details(fired)["flash"] is True
    off, _ = read_exif(exif_block({0x010F: ascii_("Cam")}, exif={0x9209: short(0x10)}))
    assert "flash" not in camera_details(off)
