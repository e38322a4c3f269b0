"""Camera RAW (DNG, CR2, NEF, ARW): recognised from the TIFF structure, shown through the largest
JPEG preview the camera (or the DNG converter) embedded, or else decoded by LibRaw in a child.

Why the preview first: it is the picture as the camera rendered it (white balance, tone curve,
lens corrections), it is full size in CR2 and most NEF and DNG files, and publishing it costs one
JPEG decode (tens of milliseconds, with DCT shrink-on-load) instead of a demosaic of the whole
sensor (seconds and hundreds of MB; see bench/results/images-formats.json). It also keeps LibRaw,
a large C parser with a long history of memory-safety fixes, out of the worker process: the only
code that touches the untrusted bytes is this bounded TIFF walk and libvips' JPEG decoder.

Only when a file has no preview big enough for the medium rendition (a DNG holding sensor data
and a thumbnail) is the sensor data decoded, by LibRaw (rawpy) in a separate process with an
address-space cap and a time limit (see _libraw.py), after its declared size passed the limits.

Every read here is bounded: at most ``_MAX_IFDS`` directories of ``_MAX_ENTRIES`` entries, each
offset checked against the file's size, loops refused.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from kiln.mediatypes.base import MediaRejected

_MAX_IFDS = 64
_MAX_ENTRIES = 1000
_MAX_COUNT = 4096  # values read from one multi-valued tag (strip offsets, sub-directories)

TAG_NEW_SUBFILE_TYPE = 0x00FE
TAG_WIDTH = 0x0100
TAG_HEIGHT = 0x0101
TAG_COMPRESSION = 0x0103
TAG_MAKE = 0x010F
TAG_STRIP_OFFSETS = 0x0111
TAG_ORIENTATION = 0x0112
TAG_STRIP_BYTE_COUNTS = 0x0117
TAG_TILE_OFFSETS = 0x0144
TAG_TILE_BYTE_COUNTS = 0x0145
TAG_SUB_IFDS = 0x014A
TAG_JPEG_OFFSET = 0x0201
TAG_JPEG_LENGTH = 0x0202
TAG_DNG_VERSION = 0xC612

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_PAIRS = ((TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS), (TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS),
          (TAG_JPEG_OFFSET, TAG_JPEG_LENGTH))
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*")
# JPEG frame markers whose pictures a browser-grade decoder reads (baseline, extended,
# progressive). SOF3 is lossless JPEG: that is sensor data, not a preview.
_PREVIEW_SOFS = {0xC0, 0xC1, 0xC2}


@dataclass(frozen=True)
class Preview:
    offset: int
    length: int
    width: int
    height: int


@dataclass
class RawFile:
    family: str  # "dng", "cr2", "nef", "arw"
    make: str
    orientation: int
    previews: list[Preview] = field(default_factory=list)
    sensor: tuple[int, int] | None = None  # the largest full-resolution directory's declared size

    @property
    def preview(self) -> Preview | None:
        return max(self.previews, key=lambda p: p.width * p.height, default=None)


def family(path: Path) -> str | None:
    """"dng", "cr2", "nef", "arw" when the TIFF at ``path`` is such a RAW; "raw" for other
    TIFF-shaped RAWs (a reduced-size first directory with the picture in a sub-directory); None
    for a plain TIFF. Reads the header and the first directory only, wherever it lies."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(16)
        if head[:4] not in _TIFF_MAGICS or len(head) < 16:
            return None
        if head[8:10] == b"CR":
            return "cr2"
        walker = _Walker(fh, size, "TIFF")
        entries, _ = walker._directory(walker.first)
        if TAG_DNG_VERSION in entries:
            return "dng"
        make = walker._text(entries.get(TAG_MAKE)).upper()
        if make.startswith("NIKON"):
            return "nef"
        if make.startswith("SONY"):
            return "arw"
        if walker._first(entries.get(TAG_NEW_SUBFILE_TYPE)) == 1 and TAG_SUB_IFDS in entries:
            return "raw"
    return None


def read(path: Path, fmt_label: str, family_key: str) -> RawFile:
    """Walk every directory of the RAW at ``path``. MediaRejected when it is cut short or has
    neither a JPEG preview nor sensor data."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        walker = _Walker(fh, size, fmt_label)
        raw = walker.walk(family_key)
    if walker.furthest > size:
        raise MediaRejected("This %(format)s file is cut short: part of the picture is missing.",
                            code="corrupt", format=fmt_label)
    if raw.preview is None and raw.sensor is None:
        raise MediaRejected(
            "This %(format)s file holds neither a preview picture nor sensor data Kiln can find. "
            "Export it as JPEG (or DNG) and upload that.",
            code="unsupported", format=fmt_label,
        )
    return raw


class _Walker:
    def __init__(self, fh: BinaryIO, size: int, label: str) -> None:
        self.fh, self.size, self.label = fh, size, label
        self.furthest = 0  # the end of the furthest strip, tile or preview any directory points to
        head = self._at(0, 8)
        self.order = "<" if head[:2] == b"II" else ">"
        self.first = struct.unpack_from(self.order + "I", head, 4)[0]

    def _damaged(self) -> MediaRejected:
        return MediaRejected("This %(format)s file is damaged and cannot be read.", code="corrupt",
                             format=self.label)

    def _at(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > self.size:
            raise self._damaged()
        self.fh.seek(offset)
        data = self.fh.read(length)
        if len(data) != length:
            raise self._damaged()
        return data

    def walk(self, family_key: str) -> RawFile:
        raw = RawFile(family=family_key, make="", orientation=1)
        pending: list[int] = [self.first]
        seen: set[int] = set()
        while pending:
            ifd = pending.pop(0)
            if ifd == 0 or ifd in seen:
                continue
            if len(seen) >= _MAX_IFDS:
                raise self._damaged()
            seen.add(ifd)
            entries, next_ifd = self._directory(ifd)
            if ifd == self.first:
                raw.make = self._text(entries.get(TAG_MAKE))
                orientation = self._first(entries.get(TAG_ORIENTATION))
                raw.orientation = orientation if orientation and 1 <= orientation <= 8 else 1
            self._collect(entries, raw)
            pending.extend(self._values(entries.get(TAG_SUB_IFDS)))
            if next_ifd:
                pending.append(next_ifd)
        return raw

    def _directory(self, ifd: int) -> tuple[dict[int, tuple[int, int, bytes]], int]:
        (count,) = struct.unpack(self.order + "H", self._at(ifd, 2))
        if count == 0 or count > _MAX_ENTRIES:
            raise self._damaged()
        table = self._at(ifd + 2, 12 * count + 4)
        entries: dict[int, tuple[int, int, bytes]] = {}
        for i in range(count):
            tag, kind, n = struct.unpack_from(self.order + "HHI", table, 12 * i)
            entries[tag] = (kind, n, table[12 * i + 8:12 * i + 12])
        (next_ifd,) = struct.unpack_from(self.order + "I", table, 12 * count)
        return entries, next_ifd

    def _values(self, entry: tuple[int, int, bytes] | None) -> list[int]:
        """The numbers of a SHORT or LONG tag (at most ``_MAX_COUNT``)."""
        if entry is None:
            return []
        kind, n, inline = entry
        if kind not in (3, 4, 13) or n == 0:
            return []
        n = min(n, _MAX_COUNT)
        width = 2 if kind == 3 else 4
        size = n * width
        data = inline[:size] if size <= 4 else self._at(struct.unpack(self.order + "I", inline)[0], size)
        return list(struct.unpack(self.order + ("H" if width == 2 else "I") * n, data))

    def _first(self, entry: tuple[int, int, bytes] | None) -> int | None:
        values = self._values(entry)
        return values[0] if values else None

    def _text(self, entry: tuple[int, int, bytes] | None) -> str:
        if entry is None or entry[0] != 2:
            return ""
        _, n, inline = entry
        n = min(n, 256)
        data = inline[:n] if n <= 4 else self._at(struct.unpack(self.order + "I", inline)[0], n)
        return data.split(b"\x00")[0].decode("latin-1").strip()

    def _collect(self, entries: dict[int, tuple[int, int, bytes]], raw: RawFile) -> None:
        width, height = self._first(entries.get(TAG_WIDTH)), self._first(entries.get(TAG_HEIGHT))
        full_resolution = not (self._first(entries.get(TAG_NEW_SUBFILE_TYPE)) or 0) & 1
        if full_resolution and width and height and (
                raw.sensor is None or width * height > raw.sensor[0] * raw.sensor[1]):
            raw.sensor = (width, height)
        for offsets_tag, counts_tag in _PAIRS:
            offsets, counts = self._values(entries.get(offsets_tag)), self._values(entries.get(counts_tag))
            for offset, length in zip(offsets, counts, strict=False):
                self.furthest = max(self.furthest, offset + length)
            if len(offsets) == 1 and len(counts) == 1 and counts[0] > 0:
                compression = self._first(entries.get(TAG_COMPRESSION))
                if offsets_tag == TAG_JPEG_OFFSET or compression in (6, 7, 99):
                    preview = self._preview(offsets[0], counts[0])
                    if preview is not None:
                        raw.previews.append(preview)

    def _preview(self, offset: int, length: int) -> Preview | None:
        """A JPEG at ``offset`` whose frame a browser-grade decoder reads, with its size."""
        if offset + length > self.size or length < 64:
            return None
        head = self._at(offset, min(length, 65536))
        if not head.startswith(b"\xff\xd8"):
            return None
        pos = 2
        while pos + 9 <= len(head):
            if head[pos] != 0xFF:
                return None
            marker = head[pos + 1]
            if marker == 0xFF:
                pos += 1
                continue
            (segment,) = struct.unpack_from(">H", head, pos + 2)
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                if marker not in _PREVIEW_SOFS:
                    return None
                height, width = struct.unpack_from(">HH", head, pos + 5)
                return Preview(offset, length, width, height) if width and height else None
            if marker == 0xDA:
                return None
            pos += 2 + segment
        return None


def exif_prefix(path: Path) -> bytes:
    """The start of the RAW, long enough to hold its first, EXIF and GPS directories, for the EXIF
    reader (which takes a TIFF structure in memory). Empty when the file is damaged."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        try:
            walker = _Walker(fh, size, "RAW")
            entries, _ = walker._directory(walker.first)
            pointers = [walker.first] + [walker._first(entries.get(tag)) or 0 for tag in (0x8769, 0x8825)]
        except MediaRejected:
            return b""
        fh.seek(0)
        return fh.read(min(size, max(pointers) + 65536))


def preview_bytes(path: Path, preview: Preview) -> bytes:
    with path.open("rb") as fh:
        fh.seek(preview.offset)
        return fh.read(preview.length)
