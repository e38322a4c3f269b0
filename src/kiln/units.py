"""Quantities as people read them. ``format_size`` is the one way Kiln shows a number of bytes: in
pages (the ``filesize`` template filter), messages and the CLI. static/sizes.js is its twin for
the browser and must give the same text for the same number (tests/test_units.py runs both).

The decimal separator is the language's ("1.5 KiB", "1,5 KiB" in German); digits are Latin and never
grouped in every language (Babel's default numbering system, which static/i18n.js and sizes.js force
too), so "5000 TiB" reads the same everywhere."""

from __future__ import annotations

import re

from kiln.i18n import decimal_symbol

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4
_UNITS = ((KIB, "KiB"), (MIB, "MiB"), (GIB, "GiB"), (TIB, "TiB"))


def format_size(size: int, *, decimal: str | None = None) -> str:
    """Bytes in 1024s with at most one decimal, never "0.0": "700 B", "1.5 KiB", "100 MiB", "2 GiB".

    ``decimal`` is the decimal separator, the current language's (``kiln.i18n.decimal_symbol``) unless
    given: "1,5 KiB" in German.

    Rounding is half up, in whole numbers (the same in JavaScript); a value that would round to 1024
    of a unit is shown in the next one ("1 MiB", not "1024 KiB")."""
    if size < KIB:
        return f"{size} B"
    for unit, name in _UNITS:
        tenths = (size * 10 + unit // 2) // unit
        if tenths < 10240 or name == "TiB":
            whole, tenth = divmod(tenths, 10)
            if tenth == 0:
                return f"{whole} {name}"
            if decimal is None:
                decimal = decimal_symbol()
            return f"{whole}{decimal}{tenth} {name}"
    raise AssertionError("unreachable")


_PARSE_UNITS = {"": 1, "b": 1, "k": KIB, "kib": KIB, "m": MIB, "mib": MIB, "g": GIB, "gib": GIB, "t": TIB,
                "tib": TIB, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_SIZE = re.compile(r"^\s*(\d{1,20}(?:\.\d{1,6})?)\s*([a-zA-Z]{0,3})\s*$")


def parse_size(text: str) -> int | None:
    """'500MiB', '2GiB', '1.5 GiB', '1048576' (bytes) as bytes; 'none' (or 'default', 'site') as None.
    KiB/MiB/GiB (or K/M/G) count in 1024s, KB/MB/GB in 1000s. Refuses anything else with a sentence."""
    from kiln.errors import InvalidInput

    if text.strip().lower() in ("none", "default", "site"):
        return None
    found = _SIZE.match(text)
    unit = found.group(2).lower() if found else ""
    if not found or unit not in _PARSE_UNITS:
        raise InvalidInput("'%(text)s' is not a size; write it like 500MiB, 2GiB, 1048576 or none.",
                           code="bad_size", text=text[:40])
    size = int(float(found.group(1)) * _PARSE_UNITS[unit])
    if size < 1:
        raise InvalidInput("An upload limit must be at least 1 byte.", code="bad_limit")
    if size > 2**63 - 1:
        raise InvalidInput("That upload limit is too large.", code="bad_limit")
    return size
