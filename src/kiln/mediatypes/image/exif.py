"""Reading camera EXIF and GPS into plain, JSON-safe values. Never raises on malformed data.

Cameras and phone apps write EXIF badly: rationals of 0/0, orientation 0, offsets pointing past
the end, text full of NULs. Every field is parsed on its own; a field that makes no sense is
left out, and GPS is reported only when the position is plausible.
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825

# (key, IFD, tag): IFD 0 is the main directory.
_TEXT_FIELDS = (
    ("make", 0, 0x010F),
    ("model", 0, 0x0110),
    ("software", 0, 0x0131),
    ("lens_make", _IFD_EXIF, 0xA433),
    ("lens", _IFD_EXIF, 0xA434),
)
_NUMBER_FIELDS = (
    ("f_number", _IFD_EXIF, 0x829D),
    ("focal_length", _IFD_EXIF, 0x920A),
    ("focal_length_35mm", _IFD_EXIF, 0xA405),
    ("iso", _IFD_EXIF, 0x8827),
)
_DATE_FIELDS = ((_IFD_EXIF, 0x9003, 0x9011), (_IFD_EXIF, 0x9004, 0x9012), (0, 0x0132, None))
_TAG_ORIENTATION = 0x0112
_TAG_EXPOSURE_TIME = 0x829A
_TAG_FLASH = 0x9209

_MAX_TEXT = 120
_OFFSET = re.compile(r"[+-]\d\d:\d\d")


def read_exif(
    blob: bytes | None, path: Path | None = None
) -> tuple[dict[str, Any], dict[str, float | None] | None]:
    """Return ``(fields, gps)`` from a raw EXIF block, or else from the file at ``path`` (TIFF)."""
    with warnings.catch_warnings():  # Pillow warns about each corrupt entry it skips
        warnings.simplefilter("ignore")
        directories = _directories(blob, path)
    if directories is None:
        return {}, None
    return _fields(directories), _gps(directories[_IFD_GPS])


def _directories(blob: bytes | None, path: Path | None) -> dict[int, Any] | None:
    try:
        if blob:
            exif = Image.Exif()
            exif.load(blob)
            return _collect(exif)
        if path is not None:
            with Image.open(path) as image:  # reads the header only
                return _collect(image.getexif())
    except Exception:
        return None
    return None


def _collect(exif: Image.Exif) -> dict[int, Any]:
    """The main directory and the EXIF and GPS sub-directories, each as a plain dict."""
    directories: dict[int, Any] = {}
    for ifd in (0, _IFD_EXIF, _IFD_GPS):
        try:
            directories[ifd] = dict(exif) if ifd == 0 else dict(exif.get_ifd(ifd)) if ifd in exif else {}
        except Exception:  # an offset pointing nowhere, a loop, ...
            directories[ifd] = {}
    return directories


def _fields(directories: dict[int, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, ifd, tag in _TEXT_FIELDS:
        text = _text(_get(directories, ifd, tag))
        if text:
            out[key] = text
    for key, ifd, tag in _NUMBER_FIELDS:
        number = _number(_get(directories, ifd, tag))
        if number is not None and number > 0:
            out[key] = int(number) if key == "iso" or number.is_integer() else round(number, 2)
    exposure = _exposure(_get(directories, _IFD_EXIF, _TAG_EXPOSURE_TIME))
    if exposure:
        out["exposure_time"] = exposure
    flash = _get(directories, _IFD_EXIF, _TAG_FLASH)
    if isinstance(flash, int) and not isinstance(flash, bool) and 0 <= flash <= 0xFFFF:
        out["flash"] = flash
    orientation = _get(directories, 0, _TAG_ORIENTATION)
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        out["orientation"] = orientation
    for ifd, tag, offset_tag in _DATE_FIELDS:
        date = _date(_get(directories, ifd, tag), _get(directories, ifd, offset_tag) if offset_tag else None)
        if date:
            out["date_taken"] = date
            break
    return out


def _get(directories: dict[int, Any], ifd: int, tag: int) -> Any:
    try:
        return directories[ifd].get(tag)
    except Exception:
        return None


def _text(value: Any) -> str | None:
    """Printable text, or None. EXIF says ASCII; many writers put UTF-8 there anyway."""
    if isinstance(value, str):
        try:  # Pillow decodes ASCII fields as Latin-1: undo that to try UTF-8
            value = value.encode("latin-1")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace")
    if not isinstance(value, bytes):
        return None
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:  # neither ASCII nor UTF-8: keep only the ASCII letters
        text = value.decode("ascii", "ignore")
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    if not any(ch.isalnum() for ch in text):
        return None
    return text[:_MAX_TEXT]


def _number(value: Any) -> float | None:
    """A finite number from an int, a rational or a one-element sequence, else None."""
    if isinstance(value, (tuple, list)):
        value = value[0] if value and not isinstance(value[0], (tuple, list)) else None
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _exposure(value: Any) -> str | None:
    """Exposure time as photographers write it: "1/250", "1/2.5", "0.8", "30" (camera.py adds the unit)."""
    seconds = _number(value)
    if seconds is None or seconds <= 0 or seconds > 3600:
        return None
    if seconds >= 0.5:
        return f"{seconds:.1f}".removesuffix(".0")
    per_second = 1 / seconds
    return f"1/{per_second:.1f}".removesuffix(".0") if per_second < 10 else f"1/{round(per_second)}"


def _date(value: Any, offset: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    for pattern in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M"):
        try:
            moment = datetime.strptime(text[:19], pattern)
        except ValueError:
            continue
        if not 1826 <= moment.year <= 2200:  # 1826: the oldest surviving photograph
            return None
        stamp = moment.isoformat()
        offset_text = _text(offset)
        if offset_text and _OFFSET.fullmatch(offset_text):
            stamp += offset_text
        return stamp
    return None


def _gps(gps: Any) -> dict[str, float | None] | None:
    """Decimal degrees, or None when the position is absent, void or not plausible."""
    try:
        status = _text(gps.get(9))
        if status and status.upper().startswith("V"):  # "void": the receiver had no fix
            return None
        lat = _degrees(gps.get(2), gps.get(1), "N", "S")
        lon = _degrees(gps.get(4), gps.get(3), "E", "W")
        if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
            return None
        alt = _number(gps.get(6))
        if alt is not None:
            if _ref_byte(gps.get(5)) == 1:
                alt = -alt
            alt = round(alt, 2) if -12_000 <= alt <= 100_000 else None
        return {"lat": round(lat, 7), "lon": round(lon, 7), "alt": alt}
    except Exception:
        return None


def _degrees(value: Any, ref: Any, positive: str, negative: str) -> float | None:
    if not isinstance(value, (tuple, list)):
        value = (value,)
    if not 1 <= len(value) <= 3:
        return None
    parts = [_number(part) for part in value]
    if any(part is None or part < 0 for part in parts):
        return None
    degrees = sum(part / 60**i for i, part in enumerate(parts))
    hemisphere = (_text(ref) or positive).upper()[:1]
    if hemisphere not in (positive, negative):
        return None
    return -degrees if hemisphere == negative else degrees


def _ref_byte(value: Any) -> int | None:
    if isinstance(value, bytes) and value:
        return value[0]
    if isinstance(value, int):
        return value
    with contextlib.suppress(ValueError):
        if isinstance(value, str) and value.strip("\x00"):
            return int(value.strip("\x00"))
    return None
