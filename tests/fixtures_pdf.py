"""PDF fixtures, written by code: a tiny PDF writer (text in the standard Helvetica font, filled and
stroked shapes, a document information dictionary, optional RC4 encryption as in PDF 1.3) and the
hostile files the PDF kind must refuse.

``make_all`` gives documents that must process; ``make_hostile`` files that must end refused or failed.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

TITLE = "Kiln test document"
AUTHOR = "Ada Lovelace"
SUBJECT = "Fixtures for the PDF kind"
A4 = (595, 842)
LETTER = (612, 792)
# Algorithm 3.2's padding string (PDF 1.7, 7.6.3.3).
PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


class Encryption:
    """The standard security handler, revision 2 (40-bit RC4): what PDF 1.3 writers produce."""

    def __init__(self, user_password: str, owner_password: str) -> None:
        self.doc_id = hashlib.md5(b"kiln fixture").digest()
        self.permissions = -44  # printing and copying not allowed
        owner_key = hashlib.md5((owner_password.encode() + PAD)[:32]).digest()[:5]
        self.owner = _rc4(owner_key, (user_password.encode() + PAD)[:32])
        p = self.permissions.to_bytes(4, "little", signed=True)
        self.key = hashlib.md5((user_password.encode() + PAD)[:32] + self.owner + p + self.doc_id).digest()[:5]
        self.user = _rc4(self.key, PAD)

    def object_key(self, number: int) -> bytes:
        return hashlib.md5(self.key + number.to_bytes(3, "little") + b"\x00\x00").digest()[:10]

    def dictionary(self) -> bytes:
        return (b"<< /Filter /Standard /V 1 /R 2 /O <" + self.owner.hex().encode() + b"> /U <"
                + self.user.hex().encode() + b"> /P " + str(self.permissions).encode() + b" >>")


def _literal(text: str) -> bytes:
    return b"(" + text.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


class Writer:
    """Objects are added in order and numbered from 1; ``build`` lays out the body, xref and trailer."""

    def __init__(self, encryption: Encryption | None = None) -> None:
        self.objects: list[bytes] = []
        self.encryption = encryption

    def add(self, body: bytes) -> int:
        self.objects.append(body)
        return len(self.objects)

    def reserve(self) -> int:
        return self.add(b"null")

    def set(self, number: int, body: bytes) -> None:
        self.objects[number - 1] = body

    def stream(self, data: bytes, compress: bool = True) -> int:
        number = self.reserve()
        filters = b" /Filter /FlateDecode" if compress else b""
        if compress:
            data = zlib.compress(data)
        if self.encryption:
            data = _rc4(self.encryption.object_key(number), data)
        self.set(number, b"<< /Length %d%s >>\nstream\n" % (len(data), filters) + data + b"\nendstream")
        return number

    def text(self, number: int, value: str) -> bytes:
        """A string object, encrypted when the document is (strings are encrypted per object)."""
        if self.encryption:
            return b"<" + _rc4(self.encryption.object_key(number), value.encode("latin-1")).hex().encode() + b">"
        return _literal(value)

    def build(self, root: int, info: int | None = None, version: bytes = b"1.4") -> bytes:
        trailer = b"/Root %d 0 R" % root
        if info:
            trailer += b" /Info %d 0 R" % info
        if self.encryption:  # the encryption dictionary itself is never encrypted
            doc_id = self.encryption.doc_id.hex().encode()
            trailer += b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (self.add(self.encryption.dictionary()), doc_id, doc_id)
        out = bytearray(b"%PDF-" + version + b"\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self.objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(self.objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        out += b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(self.objects) + 1, trailer, xref)
        return bytes(out)


def page_content(number: int, total: int, size: tuple[int, int]) -> bytes:
    """A heading, a line of body text and three shapes: enough for a thumbnail to show something."""
    width, height = size
    return b"\n".join([
        b"0.93 0.35 0.1 rg 40 %d %d 60 re f" % (height - 120, width - 80),  # an orange band
        b"BT /F1 28 Tf 1 1 1 rg 56 %d Td %s Tj ET" % (height - 100, _literal(f"Page {number} of {total}")),
        b"BT /F1 12 Tf 0 0 0 rg 56 %d Td %s Tj ET" % (height - 160, _literal("Kiln renders PDF pages as pictures.")),
        b"0.1 0.4 0.8 rg 56 200 180 180 re f",  # a blue square
        b"0 0.6 0.3 RG 6 w 330 200 m 480 380 l S",  # a green diagonal
        b"0.8 0.1 0.1 rg 400 120 m 460 120 l 430 170 l h f",  # a red triangle
    ])


def document(sizes: list[tuple[int, int]], *, title: str = TITLE, encryption: Encryption | None = None,
             mediabox: bytes | None = None) -> bytes:
    """A PDF with one page per size, Helvetica text and shapes on each, and document metadata."""
    writer = Writer(encryption)
    font = writer.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pages = writer.reserve()
    kids = []
    for number, size in enumerate(sizes, start=1):
        content = writer.stream(page_content(number, len(sizes), size))
        box = mediabox or b"[0 0 %d %d]" % size
        kids.append(writer.add(b"<< /Type /Page /Parent %d 0 R /MediaBox %s /Contents %d 0 R "
                               b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages, box, content, font)))
    writer.set(pages, b"<< /Type /Pages /Count %d /Kids [%s] >>"
               % (len(kids), b" ".join(b"%d 0 R" % kid for kid in kids)))
    info = writer.reserve()
    fields = {"Title": title, "Author": AUTHOR, "Subject": SUBJECT, "Creator": "tests/fixtures_pdf.py",
              "Producer": "Kiln fixture writer", "CreationDate": "D:20240229123000Z"}
    writer.set(info, b"<< " + b" ".join(b"/%s %s" % (key.encode(), writer.text(info, value))
                                        for key, value in fields.items()) + b" >>")
    root = writer.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages)
    return writer.build(root, info)


def many_pages(count: int) -> bytes:
    """A small file whose page tree holds ``count`` pages: every leaf is the same tiny page object."""
    writer = Writer()
    pages = writer.reserve()
    content = writer.stream(b"0 0 1 rg 10 10 50 50 re f")
    page = writer.add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 100 100] /Contents %d 0 R >>" % (pages, content))
    writer.set(pages, b"<< /Type /Pages /Count %d /Kids [%s] >>" % (count, b" ".join([b"%d 0 R" % page] * count)))
    root = writer.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages)
    return writer.build(root)


def pillow_pdf() -> bytes:
    """A picture saved as a one-page PDF by Pillow (a scan, as a phone or a scanner makes them)."""
    import io

    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (300, 400), "white")
    draw = ImageDraw.Draw(picture)
    draw.rectangle((30, 30, 270, 120), fill=(30, 90, 200))
    draw.ellipse((60, 180, 240, 360), fill=(220, 40, 40))
    out = io.BytesIO()
    picture.save(out, "PDF", resolution=72.0, title="Scanned page")
    return out.getvalue()


def make_all(directory: Path) -> dict[str, Path]:
    files = {
        "multipage": document([A4, A4[::-1], A4]),  # the middle page is landscape
        "one_page": document([LETTER], title="One page"),
        "scan": pillow_pdf(),
        "owner_locked": document([A4], title="Locked", encryption=Encryption("", "owner secret")),
    }
    out = {}
    for name, data in files.items():
        path = directory / f"{name}.pdf"
        path.write_bytes(data)
        out[name] = path
    return out


def make_hostile(directory: Path) -> dict[str, Path]:
    good = document([A4, A4, A4])
    html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n"
    files = {
        "truncated": good[: len(good) * 2 // 3],
        "encrypted": document([A4], encryption=Encryption("secret", "owner secret")),
        "many_pages": many_pages(20_000),
        "huge_page": document([A4], mediabox=b"[0 0 2000000 2000000]"),
        "polyglot_html_first": html + good,
        "polyglot_pdf_first": good.replace(b"\n", b"\n%" + html, 1),
        "text_named_pdf": b"This is a plain text note, not a PDF at all.\n",
        "not_a_pdf_after_header": b"%PDF-1.7\n" + bytes(range(256)) * 8,
    }
    out = {}
    for name, data in files.items():
        path = directory / f"{name}.pdf"
        path.write_bytes(data)
        out[name] = path
    return out
