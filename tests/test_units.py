"""Byte counts as people read them: kiln.units.format_size on the server and static/sizes.js in the
browser give the same text for the same number."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest

from kiln.units import format_size
from kiln.web.templating import STATIC_DIR

EXPECTED = {
    0: "0 B", 1: "1 B", 700: "700 B", 1023: "1023 B",
    1024: "1 KiB", 1126: "1.1 KiB", 1280: "1.3 KiB",  # 1.25 rounds half up, in both languages
    1536: "1.5 KiB", 102_400: "100 KiB", 1_048_575: "1 MiB",  # never "1024 KiB"
    1_048_576: "1 MiB", 1_572_864: "1.5 MiB", 12_345_678: "11.8 MiB", 104_857_600: "100 MiB",
    2 * 1024**3: "2 GiB", 1024**4: "1 TiB", 5000 * 1024**4: "5000 TiB",
}


def test_sizes_read_as_people_read_them():
    assert {size: format_size(size) for size in EXPECTED} == EXPECTED
    assert not any(format_size(size).startswith("0.") for size in range(0, 5 * 1024**2, 997))


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to run static/sizes.js")
def test_the_browser_says_the_same_as_the_server():
    rng = random.Random(7)
    sizes = [*EXPECTED, *(rng.randrange(1, 1024**3) for _ in range(2000)),
             *(rng.randrange(1, 2**50) for _ in range(500)),
             *(n * 1024**k + d for n in range(1, 1025, 17) for k in (1, 2, 3) for d in (-1, 0, 1, 51, 52))]
    script = (f"globalThis.window = globalThis; require({json.dumps(str(STATIC_DIR / 'sizes.js'))});"
              f"console.log(JSON.stringify({json.dumps(sizes)}.map(window.Kiln.formatSize)));")
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=True).stdout
    browser = json.loads(out)
    different = [(size, py, js) for size, py, js in zip(sizes, map(format_size, sizes), browser, strict=True)
                 if py != js]
    assert different == []
