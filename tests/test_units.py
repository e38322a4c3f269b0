"""Byte counts as people read them: kiln.units.format_size on the server and static/sizes.js in the
browser give the same text for the same number, in every language (the decimal symbol is the
language's, digits are Latin); numbers in messages likewise (kiln.i18n.format_number, static/i18n.js)."""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from kiln import i18n
from kiln.i18n import format_number
from kiln.units import format_size
from kiln.web.templating import STATIC_DIR

EXPECTED = {
    0: "0 B", 1: "1 B", 700: "700 B", 1023: "1023 B",
    1024: "1 KiB", 1126: "1.1 KiB", 1280: "1.3 KiB",  # 1.25 rounds half up, in both languages
    1536: "1.5 KiB", 102_400: "100 KiB", 1_048_575: "1 MiB",  # never "1024 KiB"
    1_048_576: "1 MiB", 1_572_864: "1.5 MiB", 12_345_678: "11.8 MiB", 104_857_600: "100 MiB",
    2 * 1024**3: "2 GiB", 1024**4: "1 TiB", 5000 * 1024**4: "5000 TiB",
}


LANGUAGES = ("en", "de", "es", "fr", "ar")
EACH_SIZE = "function (n) { return window.Kiln.formatSize(n); }"  # without map's index as the decimal
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="no node to run the static scripts")


def test_sizes_read_as_people_read_them():
    assert {size: format_size(size) for size in EXPECTED} == EXPECTED
    assert not any(format_size(size).startswith("0.") for size in range(0, 5 * 1024**2, 997))


def test_sizes_take_the_languages_decimal_symbol():
    assert format_size(1536, decimal=",") == "1,5 KiB"
    assert format_size(2 * 1024**3, decimal=",") == "2 GiB"
    with speaking("de"):
        assert format_size(1536) == "1,5 KiB" and format_size(12_345_678) == "11,8 MiB"
        assert format_size(1536, decimal=".") == "1.5 KiB"
        assert format_size(5000 * 1024**4) == "5000 TiB"  # never grouped
    with speaking("fr"):
        assert format_size(1536) == "1,5 KiB"
    with speaking("ar"):  # Latin digits, as Babel writes Arabic numbers
        assert format_size(1536) == "1.5 KiB" and format_size(700) == "700 B"
    assert format_size(1536) == "1.5 KiB"


@contextlib.contextmanager
def speaking(code: str) -> Iterator[None]:
    """The current language, whether or not a catalogue for it exists yet (``use_locale`` falls back to
    English without one; numbers and sizes need only Babel's CLDR data)."""
    token = i18n.begin(code)
    try:
        yield
    finally:
        i18n.end(token)


def _node(script: str) -> object:
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


@needs_node
def test_the_browser_says_the_same_as_the_server():
    rng = random.Random(7)
    sizes = [*EXPECTED, *(rng.randrange(1, 1024**3) for _ in range(2000)),
             *(rng.randrange(1, 2**50) for _ in range(500)),
             *(n * 1024**k + d for n in range(1, 1025, 17) for k in (1, 2, 3) for d in (-1, 0, 1, 51, 52))]
    script = (f"globalThis.window = globalThis; require({json.dumps(str(STATIC_DIR / 'sizes.js'))});"
              f"console.log(JSON.stringify({json.dumps(sizes)}.map({EACH_SIZE})));")
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=True).stdout
    browser = json.loads(out)
    different = [(size, py, js) for size, py, js in zip(sizes, map(format_size, sizes), browser, strict=True)
                 if py != js]
    assert different == []


@needs_node
@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_browser_says_sizes_in_the_pages_language_as_the_server_does(lang):
    sizes = [*EXPECTED, 1_234_567, 987_654_321, 3 * 1024**4 + 5 * 1024**3]
    page = json.dumps({"documentElement": {"lang": lang}})
    script = (f"globalThis.window = globalThis; globalThis.document = {page};"
              f"require({json.dumps(str(STATIC_DIR / 'sizes.js'))});"
              f"console.log(JSON.stringify({json.dumps(sizes)}.map({EACH_SIZE})));")
    browser = _node(script)
    with speaking(lang):
        server = [format_size(size) for size in sizes]
    assert browser == server
    assert all(ch.isascii() for text in server for ch in text)  # Latin digits, Arabic too


@needs_node
@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_browser_writes_numbers_as_the_server_does(lang):
    numbers = [0, 7, 999, 1000, 1234, 12_345, 1_234_567, 1.5, 1234.5, 0.25, 3.125]
    page = json.dumps({"documentElement": {"lang": lang}})
    script = (f"globalThis.window = globalThis; globalThis.document = {page};"
              "document.getElementById = function () { return null; };"
              f"require({json.dumps(str(STATIC_DIR / 'i18n.js'))});"
              f"console.log(JSON.stringify({json.dumps(numbers)}.map(window.formatNumber).concat("
              "[window.gettext('Failed: %(reason)s', {reason: 'x'}),"
              " window.gettext('Version %(number)s', {number: 1234})])));")
    browser = _node(script)
    with speaking(lang):
        server = [format_number(n) for n in numbers]
        version = f"Version {format_number(1234)}"
    assert browser == [*server, "Failed: x", version]
