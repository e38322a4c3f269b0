"""Upload bodies read as they arrive: each file part streams into the workbench, never into memory.

FastAPI's `File()` parameters parse the whole multipart body before any dependency runs, so a
stranger's or an over-limit upload would be read whole before it is refused. The upload routes
instead authenticate first, then call `read_upload`, which feeds `request.stream()` to
python-multipart's push parser: a file part goes straight to a temporary file in the workbench
while it is hashed and counted, and the moment the request's files pass the sender's limit the
reading stops and the partial files are deleted (413). Text fields are small and capped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from kiln.config import Settings
from kiln.errors import InvalidInput, KilnError
from kiln.i18n import N_, Size
from kiln.media.services import Spooled, too_large, workbench_file
from kiln.media.space import FULL, check_room, is_disk_full
from kiln.storage import Stores

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# Room for what surrounds the files in a request: boundaries, part headers and the text fields
# (MAX_FIELDS_BYTES at most). A Content-Length past limit + ENVELOPE cannot fit the limit.
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS_BYTES = 256 * 1024
MAX_PARTS = 100
ENVELOPE = 1024 * 1024
# The framework's own body limit for the two upload routes: none of its own, since read_upload
# counts the body against the sender's limit (a number, as FastAPI takes no "unlimited" per route).
STREAMED = 2**62


class UploadInterrupted(KilnError):
    """The sender went away before the body ended; nothing was kept. Nobody reads the answer."""

    code = "interrupted"
    status = 400


@dataclass
class UploadedFile:
    filename: str
    spooled: Spooled


# One whole sentence per field the API reads (the field's name cannot be glued into a sentence).
TOO_LONG = {
    "title": N_("The title is longer than %(max)s characters."),
    "description": N_("The description is longer than %(max)s characters."),
    "tags": N_("The tags are longer than %(max)s characters."),
    "licence": N_("The licence is longer than %(max)s characters."),
}


@dataclass
class UploadForm:
    """The files (already in the workbench) and the text fields of one upload request."""

    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, max_chars: int, label: str | None = None) -> str | None:
        """A text field, or None when it was not sent; refused when longer than ``max_chars``."""
        value = self.fields.get(name)
        if value is not None and len(value) > max_chars:
            sentence = TOO_LONG.get(label or name, N_("The field “%(field)s” is longer than %(max)s characters."))
            raise InvalidInput(sentence, field=name[:40], max=max_chars)
        return value

    def discard(self) -> None:
        """Delete the workbench files not yet handed to a service (which deletes them itself)."""
        for upload in self.files:
            upload.spooled.path.unlink(missing_ok=True)


def refuse_by_length(request: Request, limit: int) -> None:
    """413 from the Content-Length header alone, before a byte of the body is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + ENVELOPE:
        raise too_large(limit)


async def read_upload(request: Request, settings: Settings, limit: int, *, max_files: int, stores: Stores,
                      before_file: Callable[[dict[str, str]], None] | None = None) -> UploadForm:
    """Read a multipart/form-data body as it arrives, files into the workbench, at most ``limit``
    bytes of files in all. ``before_file`` sees the fields sent so far when a file part starts
    (the page form checks its CSRF token there), so a refused request is not read any further.

    The caller owns the returned files: hand each to `submit_spooled`, or call `discard`.
    """
    refuse_by_length(request, limit)
    declared = request.headers.get("content-length", "")
    # On a thread: the queue store may be remote, and opening it must not hold up the event loop.
    await anyio.to_thread.run_sync(check_room, settings, stores, int(declared) if declared.isdigit() else 0)
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidInput("Send the upload as multipart/form-data, with the file in the part named “file”.")
    reader = _PartReader(settings, limit, max_files, before_file)
    try:
        try:
            parser = MultipartParser(boundary, reader.callbacks())
        except Exception as exc:  # python-multipart refuses an over-long boundary with a bare error
            raise InvalidInput("The multipart boundary in Content-Type is not valid.") from exc
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + ENVELOPE:
                raise too_large(limit)
            parser.write(chunk)
            if reader.ended:
                break
        if not reader.ended:
            raise InvalidInput("The upload ended before its last part. Send it again.")
    except ClientDisconnect as exc:
        reader.abandon()
        raise UploadInterrupted("The upload was interrupted before it finished; nothing was kept.") from exc
    except MultipartParseError as exc:
        reader.abandon()
        raise InvalidInput("The upload is not valid multipart/form-data. Send it again.") from exc
    except OSError as exc:
        reader.abandon()
        if is_disk_full(exc):
            raise FULL from exc
        raise
    except BaseException:  # a refusal, a cancelled request: no workbench file outlives it
        reader.abandon()
        raise
    return reader.form


class _PartReader:
    """python-multipart's callbacks: headers, then a part's data into a file or a field buffer."""

    def __init__(self, settings: Settings, limit: int, max_files: int,
                 before_file: Callable[[dict[str, str]], None] | None) -> None:
        self.settings, self.limit, self.max_files, self.before_file = settings, limit, max_files, before_file
        self.form = UploadForm()
        self.ended = False
        self.parts = 0
        self.file_bytes = 0
        self.field_bytes = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.name = ""
        self.filename: str | None = None
        self.buffer = bytearray()
        self.out: BinaryIO | None = None
        self.path = Path()
        self.size = 0
        self.sha = hashlib.sha256()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin, "on_header_field": self.header_field,
            "on_header_value": self.header_value_data, "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
            "on_part_end": self.part_end, "on_end": self.end,
        }

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidInput("The upload has more than %(max)s parts.", max=MAX_PARTS)
        self.headers, self.buffer, self.filename = [], bytearray(), None

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers.append((bytes(self.header_name).lower(), bytes(self.header_value)))
        self.header_name, self.header_value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        headers = dict(self.headers)
        disposition, options = parse_options_header(headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in options:
            raise InvalidInput(N_("A part of the upload has no Content-Disposition: form-data with a name."))
        self.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            return
        if self.name != "file":
            raise InvalidInput("Send files in the part named “file”, not “%(name)s”.", name=self.name[:40])
        if len(self.form.files) >= self.max_files:
            if self.max_files == 1:
                raise InvalidInput(N_("Send one file per request."))
            raise InvalidInput("Send at most %(max)s files at once.", max=self.max_files)
        if self.before_file is not None:
            self.before_file(self.form.fields)
        self.filename = options[b"filename"].decode("utf-8", "replace")
        fd, self.path = workbench_file(self.settings)
        self.out = os.fdopen(fd, "wb")
        self.size, self.sha = 0, hashlib.sha256()

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None:
            self.file_bytes += end - start
            if self.file_bytes > self.limit:
                raise too_large(self.limit)
            piece = memoryview(data)[start:end]
            self.sha.update(piece)
            self.out.write(piece)
            self.size += end - start
            return
        self.field_bytes += end - start
        if len(self.buffer) + end - start > MAX_FIELD_BYTES or self.field_bytes > MAX_FIELDS_BYTES:
            raise InvalidInput("The field “%(name)s” is too long; fields may hold %(each)s each, %(all)s in all.",
                               name=self.name[:40], each=Size(MAX_FIELD_BYTES), all=Size(MAX_FIELDS_BYTES))
        self.buffer += data[start:end]

    def part_end(self) -> None:
        if self.out is None:
            self.form.fields[self.name] = self.buffer.decode("utf-8", "replace")
            return
        self.out.close()
        self.out = None
        if not self.filename and not self.size:  # a browser's file input left empty
            self.path.unlink(missing_ok=True)
            return
        self.form.files.append(UploadedFile(self.filename or "", Spooled(self.path, self.size, self.sha.hexdigest())))

    def end(self) -> None:
        self.ended = True

    def abandon(self) -> None:
        """Close and delete every file this request wrote."""
        if self.out is not None:
            self.out.close()
            self.out = None
            self.path.unlink(missing_ok=True)
        self.form.discard()
