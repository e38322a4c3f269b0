"""Publishing an original without camera data: lossless for JPEG and PNG."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.image.strip import strip_jpeg, strip_png


def test_jpeg_loses_gps_and_camera_but_keeps_pixels_orientation_and_icc(images):
    data = images["camera"].read_bytes()
    with Image.open(io.BytesIO(data)) as before:
        assert before.getexif().get_ifd(0x8825)  # the fixture really has GPS
        icc = before.info.get("icc_profile")
    out = strip_jpeg(data, orientation=6)
    assert len(out) < len(data)
    assert data[data.index(b"\xff\xda"):] == out[out.index(b"\xff\xda"):]  # compressed pixels untouched
    with Image.open(io.BytesIO(out)) as after:
        exif = after.getexif()
        assert dict(exif) == {0x0112: 6}
        assert not exif.get_ifd(0x8825)
        assert after.info.get("icc_profile") == icc
        after.load()  # still decodes
    assert b"TestCam" not in out


def test_jpeg_without_orientation_gets_no_exif_at_all(images):
    out = strip_jpeg(images["plain"].read_bytes(), orientation=1)
    assert b"Exif" not in out
    Image.open(io.BytesIO(out)).load()


def test_png_text_and_exif_chunks_are_dropped(tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Secret Person")
    info.add_itxt("Location", "59.33N 18.01E")
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    Image.new("RGBA", (40, 30), (10, 20, 30, 128)).save(buf, "PNG", pnginfo=info, exif=exif)
    data = buf.getvalue()
    assert b"Secret Person" in data and b"TestCam" in data
    out = strip_png(data)
    assert b"Secret Person" not in out and b"59.33N" not in out and b"TestCam" not in out
    with Image.open(io.BytesIO(out)) as im:
        assert im.size == (40, 30) and im.mode == "RGBA"
        assert im.getpixel((5, 5)) == (10, 20, 30, 128)


def test_damaged_files_are_refused():
    with pytest.raises(MediaRejected):
        strip_jpeg(b"\xff\xd8\xff\xe1\x00\x10abc", orientation=None)
    with pytest.raises(MediaRejected):
        strip_png(b"not a png")
