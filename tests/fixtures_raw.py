"""Camera RAW files for the image tests, assembled byte by byte (no camera, nothing downloaded).

Each file has the layout its maker uses, as far as Kiln's reader cares: DNG (DNGVersion, a small
uncompressed thumbnail in IFD0, CFA sensor data and a JPEG preview in sub-directories), CR2 (the
``CR`` marker, a full-size JPEG in IFD0, a thumbnail, and lossless-JPEG sensor data that must not
be taken for a preview), NEF (Make NIKON, previews in sub-directories) and ARW (Make SONY, the
preview in IFD0's JPEGInterchangeFormat). Every one carries camera EXIF and a GPS position that
must never reach a rendition.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

from tests.fixtures_images import (
    ASCII,
    LONG,
    SHORT,
    _ifd,
    ascii_,
    byte,
    photo,
    rational,
    short,
)

RAW_LAT = 48.8583333  # N
RAW_LON = 2.2944444  # E
PREVIEW_MARKER = (0, 0, 120, 80)  # a red block in the stored top-left corner of each preview


def long_(*values: int) -> tuple[int, int, bytes]:
    return LONG, len(values), struct.pack("<" + "I" * len(values), *values)


def shorts(*values: int) -> tuple[int, int, bytes]:
    return SHORT, len(values), struct.pack("<" + "H" * len(values), *values)


class TiffWriter:
    """Lays out a little-endian TIFF: blobs and directories appended in order, IFD0 patched last."""

    def __init__(self, header: bytes = b"II*\x00\x00\x00\x00\x00") -> None:
        self.data = bytearray(header)

    def blob(self, payload: bytes) -> int:
        if len(self.data) % 2:
            self.data += b"\x00"
        at = len(self.data)
        self.data += payload
        return at

    def ifd(self, entries: dict[int, tuple[int, int, bytes]], next_ifd: int = 0) -> int:
        if len(self.data) % 2:
            self.data += b"\x00"
        at = len(self.data)
        directory = bytearray(_ifd(entries, at))
        struct.pack_into("<I", directory, 2 + 12 * len(entries), next_ifd)
        self.data += directory
        return at

    def finish(self, first_ifd: int) -> bytes:
        struct.pack_into("<I", self.data, 4, first_ifd)
        return bytes(self.data)


def preview_jpeg(width: int, height: int, seed: int) -> bytes:
    image = photo(width, height, seed=seed)
    image.paste((255, 0, 0), PREVIEW_MARKER)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _exif_and_gps(w: TiffWriter, make: str, model: str) -> dict[int, tuple[int, int, bytes]]:
    """Write the EXIF and GPS directories; return IFD0 entries pointing at them."""
    gps = w.ifd({
        0x0000: (1, 4, bytes([2, 3, 0, 0])),
        0x0001: ascii_("N"),
        0x0002: rational((48, 1), (51, 1), (3000, 100)),
        0x0003: ascii_("E"),
        0x0004: rational((2, 1), (17, 1), (4000, 100)),
        0x0005: byte(0),
        0x0006: rational((35, 1)),
    })
    exif = w.ifd({
        0x829A: rational((1, 125)),
        0x829D: rational((56, 10)),
        0x8827: short(200),
        0x9003: ascii_("2024:07:14 10:30:00"),
    })
    return {0x010F: ascii_(make), 0x0110: ascii_(model), 0x8769: long_(exif), 0x8825: long_(gps)}


def _thumbnail_rgb(w: TiffWriter, width: int = 160, height: int = 120) -> dict[int, tuple[int, int, bytes]]:
    """An uncompressed RGB thumbnail, as DNG and NEF keep in IFD0."""
    pixels = photo(width, height, seed=9).tobytes()
    at = w.blob(pixels)
    return {
        0x00FE: long_(1), 0x0100: long_(width), 0x0101: long_(height), 0x0102: shorts(8, 8, 8),
        0x0103: short(1), 0x0106: short(2), 0x0111: long_(at), 0x0115: short(3), 0x0116: long_(height),
        0x0117: long_(len(pixels)),
    }


def _cfa(w: TiffWriter, width: int, height: int, red_block: bool = False) -> dict[int, tuple[int, int, bytes]]:
    """Uncompressed 16-bit Bayer (RGGB) sensor data, as a DNG's main sub-directory holds: mid grey,
    with (``red_block``) a saturated red block in the stored top-left quarter."""
    grey = struct.pack("<H", 1600)
    plain_row = grey * width
    block = width // 4
    red_even = (struct.pack("<HH", 4000, 150) * (block // 2)) + grey * (width - block)
    red_odd = (struct.pack("<HH", 150, 150) * (block // 2)) + grey * (width - block)
    rows = [(red_even if y % 2 == 0 else red_odd) if red_block and y < height // 4 else plain_row
            for y in range(height)]
    at = w.blob(b"".join(rows))
    return {
        0x00FE: long_(0), 0x0100: long_(width), 0x0101: long_(height), 0x0102: short(16),
        0x0103: short(1), 0x0106: short(32803), 0x0111: long_(at), 0x0115: short(1),
        0x0116: long_(height), 0x0117: long_(2 * width * height), 0x828D: shorts(2, 2),
        0x828E: (1, 4, bytes([0, 1, 1, 2])), 0xC61D: long_(4095),
    }


_IDENTITY = (10, 9, struct.pack("<" + "i" * 18, *[v for d in (1, 0, 0, 0, 1, 0, 0, 0, 1) for v in (d, 1)]))


def make_dng(directory: Path, name: str = "camera.dng") -> Path:
    """DNG: 160x120 RGB thumbnail (IFD0), 960x640 CFA data and a 960x640 JPEG preview (SubIFDs)."""
    w = TiffWriter()
    cfa = w.ifd(_cfa(w, 960, 640))
    jpeg = preview_jpeg(960, 640, seed=11)
    at = w.blob(jpeg)
    preview = w.ifd({0x00FE: long_(1), 0x0100: long_(960), 0x0101: long_(640), 0x0103: short(7),
                     0x0106: short(6), 0x0111: long_(at), 0x0117: long_(len(jpeg))})
    entries = {**_thumbnail_rgb(w), **_exif_and_gps(w, "KilnCam", "KC-RAW"), 0x0112: short(1),
               0x014A: long_(cfa, preview), 0xC612: (1, 4, bytes([1, 4, 0, 0])),
               0xC614: ascii_("KilnCam KC-RAW"), 0xC621: _IDENTITY}
    path = directory / name
    path.write_bytes(w.finish(w.ifd(entries)))
    return path


def _lossless_jpeg_header(width: int, height: int) -> bytes:
    """The start of a lossless (SOF3) JPEG, as CR2 sensor data begins: never a preview."""
    sof3 = b"\xff\xc3" + struct.pack(">HBHHB", 11, 14, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xc4\x00\x05\x00\x00\x00" + sof3 + b"\xff\xda" + b"\x00" * 256


def make_cr2(directory: Path, name: str = "canon.cr2") -> Path:
    """CR2: a full-size 900x600 JPEG in IFD0 with orientation 8, a thumbnail in IFD1, and
    lossless-JPEG sensor data in IFD3 whose frame header declares a bigger picture (which must not
    be taken for a preview)."""
    w = TiffWriter(b"II*\x00\x10\x00\x00\x00CR\x02\x00\x00\x00\x00\x00")
    sensor = w.blob(_lossless_jpeg_header(3000, 2000))
    ifd3 = w.ifd({0x0100: long_(900), 0x0101: long_(600), 0x0103: short(6), 0x0111: long_(sensor),
                  0x0117: long_(400)})
    small = w.blob(bytes(160 * 120 * 3))
    ifd2 = w.ifd({0x0100: long_(160), 0x0101: long_(120), 0x0103: short(1), 0x0111: long_(small),
                  0x0117: long_(160 * 120 * 3)}, next_ifd=ifd3)
    thumb = preview_jpeg(160, 106, seed=12)
    at = w.blob(thumb)
    ifd1 = w.ifd({0x0103: short(6), 0x0201: long_(at), 0x0202: long_(len(thumb))}, next_ifd=ifd2)
    jpeg = preview_jpeg(900, 600, seed=13)
    at = w.blob(jpeg)
    entries = {**_exif_and_gps(w, "Canon", "Canon EOS Kiln"), 0x0100: long_(900), 0x0101: long_(600),
               0x0103: short(6), 0x0111: long_(at), 0x0112: short(8), 0x0117: long_(len(jpeg))}
    data = bytearray(w.finish(w.ifd(entries, next_ifd=ifd1)))
    struct.pack_into("<I", data, 12, ifd3)  # CR2 header: offset of the sensor directory
    path = directory / name
    path.write_bytes(bytes(data))
    return path


def make_nef(directory: Path, name: str = "nikon.nef") -> Path:
    """NEF: an RGB thumbnail in IFD0 (Make NIKON), a full-size 1000x664 JPEG preview and the sensor
    data in SubIFDs; orientation 6."""
    w = TiffWriter()
    raw = w.blob(bytes(4096))
    sensor = w.ifd({0x00FE: long_(0), 0x0100: long_(1000), 0x0101: long_(664), 0x0103: short(34713),
                    0x0111: long_(raw), 0x0117: long_(4096)})
    jpeg = preview_jpeg(1000, 664, seed=14)
    at = w.blob(jpeg)
    preview = w.ifd({0x00FE: long_(1), 0x0103: short(6), 0x0201: long_(at), 0x0202: long_(len(jpeg))})
    entries = {**_thumbnail_rgb(w), **_exif_and_gps(w, "NIKON CORPORATION", "NIKON Z KILN"),
               0x0112: short(6), 0x014A: long_(preview, sensor)}
    path = directory / name
    path.write_bytes(w.finish(w.ifd(entries)))
    return path


def make_arw(directory: Path, name: str = "sony.arw") -> Path:
    """ARW: Make SONY, an 800x532 JPEG preview in IFD0's JPEGInterchangeFormat, sensor in a SubIFD."""
    w = TiffWriter()
    raw = w.blob(bytes(4096))
    sensor = w.ifd({0x00FE: long_(0), 0x0100: long_(800), 0x0101: long_(532), 0x0103: short(32767),
                    0x0111: long_(raw), 0x0117: long_(4096)})
    jpeg = preview_jpeg(800, 532, seed=15)
    at = w.blob(jpeg)
    entries = {**_exif_and_gps(w, "SONY", "ILCE-KILN"), 0x00FE: long_(1), 0x0103: short(6),
               0x0112: short(1), 0x014A: long_(sensor), 0x0201: long_(at), 0x0202: long_(len(jpeg))}
    path = directory / name
    path.write_bytes(w.finish(w.ifd(entries)))
    return path


def make_dng_sensor_only(directory: Path) -> Path:
    """A DNG whose only preview is a 160x120 thumbnail: its 640x480 sensor data (red block stored
    top-left, orientation 6) must be decoded, by LibRaw."""
    w = TiffWriter()
    cfa = w.ifd(_cfa(w, 640, 480, red_block=True))
    entries = {**_thumbnail_rgb(w), **_exif_and_gps(w, "KilnCam", "KC-RAW"), 0x0112: short(6),
               0x014A: long_(cfa), 0xC612: (1, 4, bytes([1, 4, 0, 0])), 0xC614: ascii_("KilnCam KC-RAW"),
               0xC621: _IDENTITY}
    path = directory / "sensor-only.dng"
    path.write_bytes(w.finish(w.ifd(entries)))
    return path


def make_raw_without_pictures(directory: Path) -> Path:
    """A DNG with neither a preview nor sensor data: nothing to show."""
    w = TiffWriter()
    entries = {0x010F: ascii_("KilnCam"), 0xC612: (1, 4, bytes([1, 4, 0, 0]))}
    path = directory / "empty.dng"
    path.write_bytes(w.finish(w.ifd(entries)))
    return path


def make_sensor_bomb(directory: Path) -> Path:
    """A DNG without a preview whose sensor data declares 60000x60000 pixels (in a few bytes)."""
    w = TiffWriter()
    at = w.blob(bytes(64))
    entries = {0x00FE: long_(0), 0x0100: long_(60000), 0x0101: long_(60000), 0x0102: short(16),
               0x0103: short(1), 0x0106: short(32803), 0x0111: long_(at), 0x0117: long_(64),
               0xC612: (1, 4, bytes([1, 4, 0, 0]))}
    path = directory / "sensor-bomb.dng"
    path.write_bytes(w.finish(w.ifd(entries)))
    return path


def make_truncated_dng(directory: Path) -> Path:
    whole = make_dng(directory, "whole.dng").read_bytes()
    path = directory / "truncated.dng"
    path.write_bytes(whole[: len(whole) // 2])
    (directory / "whole.dng").unlink()
    return path


def make_pentax_like(directory: Path) -> Path:
    """A TIFF-shaped RAW from a maker Kiln does not read (preview first, sensor in a SubIFD)."""
    w = TiffWriter()
    sensor = w.ifd({0x00FE: long_(0), 0x0100: long_(64), 0x0101: long_(48)})
    entries = {**_thumbnail_rgb(w, 64, 48), 0x010F: (ASCII, 7, b"PENTAX\x00"), 0x014A: long_(sensor)}
    path = directory / "pentax.pef"
    path.write_bytes(w.finish(w.ifd(entries)))
    return path

