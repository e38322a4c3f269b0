"""The only code in Kiln that lets pdfium parse a PDF. It runs as its own process (``python -I
_child.py ...``, started by :mod:`kiln.mediatypes.pdf.reader` through ``run_external``), so a PDF that
crashes pdfium, eats memory or loops ends that process only, killed by the address-space cap or the
time-out; the web process and the worker carry on.

It is a plain script with no Kiln imports, so it starts in ~0.1 s. It prints JSON on stdout:

``probe FILE MAX_PAGES MAX_SIDE_PT``
    ``{"pages", "encrypted", "version", "metadata", "width_pt", "height_pt"}``, or
    ``{"refused": code, ...details}`` when the file must be refused. Page sizes are checked for every
    page from the page tree (cheap: no page is loaded), before anything is drawn.
``render FILE OUTDIR FIRST LAST BOX_W BOX_H FORMAT QUALITY``
    draws pages FIRST..LAST (1-based) to ``OUTDIR/page-N.jpg`` (or ``.png``), each fitting the box,
    on white, printing one JSON line (size, text) as each page is finished (the parent's live progress). A page
    file appears under its final name only when complete (written, then renamed).
``strip FILE OUT``
    writes the pages into a new document, leaving behind the document information (author, title,
    dates, software), XMP metadata, bookmarks, attachments and document-level scripts.
"""

from __future__ import annotations

import json
import os
import sys

import pypdfium2 as pdfium
import pypdfium2.raw as raw

TEXT_LIMIT = 300  # characters kept of each metadata value
PAGE_TEXT_LIMIT = 20_000  # characters of text reported per page drawn


def _open(path: str) -> pdfium.PdfDocument | None:
    try:
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        code = {raw.FPDF_ERR_PASSWORD: "encrypted", raw.FPDF_ERR_SECURITY: "encrypted"}.get(exc.err_code, "corrupt")
        print(json.dumps({"refused": code}))
        return None


def probe(path: str, max_pages: int, max_side: float) -> None:
    pdf = _open(path)
    if pdf is None:
        return
    pages = len(pdf)
    if pages < 1:
        print(json.dumps({"refused": "no_pages"}))
        return
    if pages > max_pages:
        print(json.dumps({"refused": "too_many_pages", "pages": pages}))
        return
    first = None
    for index in range(pages):
        try:
            width, height = pdf.get_page_size(index)
        except pdfium.PdfiumError:
            print(json.dumps({"refused": "corrupt_page", "page": index + 1}))
            return
        if not (0 < width <= max_side and 0 < height <= max_side):
            print(json.dumps({"refused": "page_size", "page": index + 1, "width_pt": width, "height_pt": height}))
            return
        first = first or (width, height)
    metadata = {key: value.strip()[:TEXT_LIMIT] for key, value in pdf.get_metadata_dict(skip_empty=True).items()
                if value.strip()}
    version = pdf.get_version()
    print(json.dumps({
        "pages": pages,
        "encrypted": raw.FPDF_GetSecurityHandlerRevision(pdf) != -1,
        "version": f"{version // 10}.{version % 10}" if version else None,
        "metadata": metadata,
        "width_pt": first[0] if first else None,
        "height_pt": first[1] if first else None,
    }))


def render(path: str, outdir: str, first: int, last: int, box_w: int, box_h: int, fmt: str, quality: int) -> None:
    pdf = _open(path)
    if pdf is None:
        return
    last = min(last, len(pdf))
    suffix = ".png" if fmt == "png" else ".jpg"
    for number in range(first, last + 1):
        page = pdf[number - 1]
        width, height = page.get_size()
        scale = min(box_w / width, box_h / height)
        picture = page.render(scale=scale, may_draw_forms=False).to_pil().convert("RGB")
        partial = os.path.join(outdir, f".page-{number}{suffix}")
        if suffix == ".png":
            picture.save(partial, "PNG", compress_level=1)
        else:
            picture.save(partial, "JPEG", quality=quality, optimize=True, progressive=True)
        os.replace(partial, os.path.join(outdir, f"page-{number}{suffix}"))
        text = page.get_textpage().get_text_bounded()[:PAGE_TEXT_LIMIT].replace("\r\n", "\n").strip()
        print(json.dumps({"page": number, "width": picture.width, "height": picture.height, "text": text}),
              flush=True)
        page.close()


def strip(path: str, out: str) -> None:
    pdf = _open(path)
    if pdf is None:
        return
    copy = pdfium.PdfDocument.new()
    copy.import_pages(pdf)
    copy.save(out)
    print(json.dumps({"pages": len(copy)}))


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "probe":
        probe(args[0], int(args[1]), float(args[2]))
    elif command == "render":
        render(args[0], args[1], int(args[2]), int(args[3]), int(args[4]), int(args[5]), args[6], int(args[7]))
    elif command == "strip":
        strip(args[0], args[1])
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
