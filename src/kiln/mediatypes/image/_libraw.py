"""Decoding camera RAW sensor data with LibRaw (rawpy), in a child process with limits.

LibRaw parses dozens of maker formats in C; a hostile file must not be able to take the worker
with it. So the decode runs as ``python -I _libraw.py SOURCE OUT HALF`` through
:func:`~kiln.mediatypes.external.run_external` (its own process group, an address-space cap,
SIGKILL on overrun), reads only the job's own copy of the original, and writes an 8-bit RGB TIFF,
upright (LibRaw applies the RAW's orientation), that the normal pipeline turns into renditions.
This file imports nothing from Kiln, so the child starts in ~0.1 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHILD = Path(__file__)


def command(source: Path, out: Path, half_size: bool) -> list[str]:
    return [sys.executable, "-I", str(CHILD), str(source), str(out), "1" if half_size else "0"]


def main(argv: list[str]) -> int:
    import rawpy
    from PIL import Image

    source, out, half = argv[0], argv[1], argv[2] == "1"
    try:
        with rawpy.imread(source) as raw:
            rgb = raw.postprocess(half_size=half, use_camera_wb=True, output_bps=8)
    except (rawpy.LibRawError, ValueError) as exc:
        print(f"LibRaw: {type(exc).__name__}: {exc}"[:200], file=sys.stderr)
        return 2
    Image.fromarray(rgb).save(out, "TIFF")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
