"""Camera data as a photographer reads it: the fields exif.py stored, turned into display values.

``camera_details(media.exif)`` gives only what makes sense to a person ("Canon EOS R5", "1/250 s",
"f/2.8", "35 mm", "17 May 2024, 14:03"); internals such as the orientation or the firmware never
appear. Words (labels, "ISO", "Fired") stay in the template, so they can be translated; this module
formats numbers, names and dates only. Stored data is trusted no more than the file it came from:
a value of the wrong type or out of range is left out, never shown and never an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

_MAX_NAME = 120
# What a maker's name carries beyond the brand: "NIKON CORPORATION", "OLYMPUS IMAGING CORP.",
# "RICOH IMAGING COMPANY, LTD.", "LEICA CAMERA AG".
_COMPANY = re.compile(
    r"(?:[\s,]+(?:corporation|corp\.?|company|co\.?|ltd\.?|limited|inc\.?|imaging|optical|camera|ag|gmbh|s\.?a\.?))+$",
    re.IGNORECASE,
)
_FRACTION = re.compile(r"\s*(\d{1,9}(?:\.\d{1,6})?)\s*(?:/\s*(\d{1,9}(?:\.\d{1,6})?))?\s*")


def camera_details(exif: Mapping[str, Any] | None) -> dict[str, Any]:
    """The displayable camera data of a stored EXIF summary; keys only for values that are known:
    camera, lens, exposure, aperture, iso, focal_length, focal_length_35mm, taken, taken_iso, flash."""
    if not isinstance(exif, Mapping):
        return {}
    values = {
        "camera": brand_and_model(exif.get("make"), exif.get("model")),
        "lens": brand_and_model(exif.get("lens_make"), exif.get("lens")),
        "exposure": exposure(exif.get("exposure_time")),
        "aperture": aperture(exif.get("f_number")),
        "iso": iso(exif.get("iso")),
        "focal_length": millimetres(exif.get("focal_length")),
        "focal_length_35mm": millimetres(exif.get("focal_length_35mm")),
        "flash": flash_fired(exif.get("flash")),
    }
    if values["focal_length_35mm"] == values["focal_length"]:  # a full-frame camera: nothing to add
        values["focal_length_35mm"] = None
    taken = date_taken(exif.get("date_taken"))
    if taken is not None:
        values["taken"], values["taken_iso"] = taken
    return {key: value for key, value in values.items() if value}


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join("".join(ch for ch in value if ch.isprintable()).split())[:_MAX_NAME]
    return text if any(ch.isalnum() for ch in text) else None


def brand_and_model(make: Any, model: Any) -> str | None:
    """"Canon" + "Canon EOS R5" -> "Canon EOS R5"; "NIKON CORPORATION" + "NIKON D850" -> "NIKON D850";
    "SONY" + "ILCE-7M3" -> "SONY ILCE-7M3". The maker is never repeated."""
    brand = _name(make)
    if brand:
        brand = _COMPANY.sub("", brand) or brand
    name = _name(model)
    if not brand or not name:
        return name or brand
    if name.casefold().startswith(brand.split()[0].casefold()):
        return name
    return f"{brand} {name}"


def _seconds(value: Any) -> float | None:
    """A duration written as a number, or as text: "1/250", "0.8", "30", "1/2.5"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or len(value) > 32:
        return None
    match = _FRACTION.fullmatch(value)
    if not match:
        return None
    top, bottom = float(match.group(1)), float(match.group(2) or 1)
    return top / bottom if bottom else None


def _decimal(number: float, places: int) -> str:
    """``number`` with at most ``places`` decimals and no trailing zeros: 2.80 -> "2.8", 8.0 -> "8"."""
    text = f"{number:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def exposure(value: Any) -> str | None:
    """"1/250 s" for short exposures, "0.5 s", "2 s", "30 s" for long ones (as cameras show them)."""
    seconds = _seconds(value)
    if seconds is None or not math.isfinite(seconds) or not 0 < seconds <= 3600:
        return None
    if seconds >= 0.5 - 1e-9:
        return f"{_decimal(seconds, 1 if seconds < 10 else 0)} s"
    per_second = 1 / seconds
    return f"1/{_decimal(per_second, 1 if per_second < 10 else 0)} s"  # 1/2.5 s, 1/3 s, 1/250 s


def _positive(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0 < number <= limit else None


def aperture(value: Any) -> str | None:
    """"f/2.8", "f/8", "f/0.95"."""
    number = _positive(value, 1000)
    if number is None:
        return None
    return f"f/{_decimal(number, 2 if number < 1 else 1)}"


def iso(value: Any) -> str | None:
    """The sensitivity as a whole number ("400"); the template writes "ISO" before it."""
    number = _positive(value, 10_000_000)
    return str(round(number)) if number is not None and round(number) > 0 else None


def millimetres(value: Any) -> str | None:
    """"35 mm", "4.3 mm" (phones), "600 mm"."""
    number = _positive(value, 100_000)
    if number is None:
        return None
    return f"{_decimal(number, 1 if number < 10 else 0)} mm"


def flash_fired(value: Any) -> bool | None:
    """True when the flash fired (bit 0 of EXIF Flash); None when unknown or it did not."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        return None
    return True if value & 1 else None


def date_taken(value: Any) -> tuple[str, str] | None:
    """("17 May 2024, 14:03", "2024-05-17T14:03:22+02:00"): the clock time where the picture was
    taken, as the camera wrote it (never converted to another time zone), and the machine form."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if not 1826 <= moment.year <= 2200:
        return None
    return f"{moment.day} {moment:%B %Y, %H:%M}", moment.isoformat()
