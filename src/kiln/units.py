"""Quantities as people read them. ``format_size`` is the one way Kiln shows a number of bytes: in
pages (the ``filesize`` template filter), messages and the CLI. static/sizes.js is its twin for
the browser and must give the same text for the same number (tests/test_units.py runs both).

The decimal separator is the language's ("1.5 KiB", "1,5 KiB" in German); digits are Latin and never
grouped in every language (Babel's default numbering system, which static/i18n.js and sizes.js force
too), so "5000 TiB" reads the same everywhere."""

from __future__ import annotations

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
