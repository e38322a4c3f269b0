"""Recognising 3D models from their content, and the limits checked before any mesh is loaded.

Only bytes are read here (no trimesh): the header or a streaming scan tells the format, how many
triangles the model declares, whether the file was cut short, and whether it points at other
files. Anything this module accepts is then loaded in a child process with time and memory
limits (see ``child.py``).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kiln.config import ModelSettings
from kiln.i18n import Size
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.model3d.gltf import check_glb, check_gltf


@dataclass(frozen=True)
class Format:
    key: str  # also the file type trimesh is asked to read
    label: str
    mime_type: str
    up: str  # the axis that points up by the format's custom: "y" (glTF, OBJ) or "z" (STL, PLY)
    units: str  # what one unit of the file means, when the format says so


FORMATS = {
    "stl": Format("stl", "binary STL", "model/stl", "z", ""),
    "stl_ascii": Format("stl_ascii", "ASCII STL", "model/stl", "z", ""),
    "obj": Format("obj", "OBJ", "model/obj", "y", ""),
    "ply": Format("ply", "PLY", "model/x-ply", "z", ""),
    "gltf": Format("gltf", "glTF", "model/gltf+json", "y", "metres"),
    "glb": Format("glb", "GLB", "model/gltf-binary", "y", "metres"),
}

STL_HEADER = 84
STL_TRIANGLE = 50
CHUNK = 1 << 20
OBJ_KEYWORDS = frozenset(
    b"v vt vn vp f l p o g s mtllib usemtl cstype deg bmat step curv curv2 surf parm trim hole scrv sp end "
    b"con mg lod usemap maplib shadow_obj trace_obj ctech stech bevel c_interp d_interp call csh".split()
)
# OBJ statements that name another file. A bare name (``mtllib chair.mtl``) is ignored: Kiln reads
# only the uploaded file, so the model shows without its materials. A path or an address is refused.
OBJ_FILE_STATEMENTS = re.compile(rb"(?m)^[ \t]*(mtllib|maplib|usemap|call|csh|shadow_obj|trace_obj)[ \t]+([^\r\n]*)")
NUMBER = rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
OBJ_FACE = re.compile(rb"(?m)^[ \t]*f[ \t]")
OBJ_VERTEX = re.compile(rb"(?m)^[ \t]*v[ \t]+" + NUMBER + rb"[ \t]+" + NUMBER + rb"[ \t]+" + NUMBER)


@dataclass(frozen=True)
class Declared:
    """What the header says, before loading."""

    fmt: Format
    triangles: int


def sniff(head: bytes, size: int) -> Format | None:
    """The model format of a file from its first bytes and its length, or None."""
    if head.startswith(b"glTF"):
        return FORMATS["glb"]
    if head.startswith((b"ply\n", b"ply\r")):
        return FORMATS["ply"]
    sample = head[:4096]
    if b"\x00" not in sample:
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if text.startswith(b"solid") and re.search(rb"\bfacet\s+normal\b|\bendsolid\b", head):
            return FORMATS["stl_ascii"]
        if text.startswith(b"{") and any(key in head for key in (b'"asset"', b'"accessors"', b'"bufferViews"')):
            return FORMATS["gltf"]
        if _looks_like_obj(head):
            return FORMATS["obj"]
    if size >= STL_HEADER and len(head) >= STL_HEADER:
        (count,) = struct.unpack_from("<I", head, 80)
        if size == STL_HEADER + STL_TRIANGLE * count or _plausible_stl_triangles(head):
            return FORMATS["stl"]
    return None


def check(path: Path, head: bytes, size: int, fmt: Format, limits: ModelSettings) -> Declared:
    """Refuse (MediaRejected) a model that is too large, cut short, empty or points outside itself."""
    if size > limits.max_bytes:
        raise MediaRejected(
            "This %(format)s file is %(size)s; this site accepts 3D models of up to %(limit)s.",
            code="too_large", format=fmt.label, size=Size(size), limit=Size(limits.max_bytes))
    if fmt.key == "stl":
        triangles = _check_binary_stl(head, size, limits.max_triangles)
    elif fmt.key == "stl_ascii":
        triangles = _check_ascii_stl(path, size)
    elif fmt.key == "obj":
        triangles = _check_obj(path)
    elif fmt.key == "ply":
        triangles = _check_ply(path, head, size, limits)
    elif fmt.key == "glb":
        triangles = check_glb(path, head, size, limits.max_triangles)
    else:
        triangles = check_gltf(path, size, limits.max_triangles)
    if triangles <= 0:
        raise MediaRejected("This %(format)s file holds no triangles, so there is no surface to show.",
                            code="empty", format=fmt.label)
    if triangles > limits.max_triangles:
        raise MediaRejected(
            "This %(format)s file declares %(triangles)s triangles; this site accepts 3D models of up to "
            "%(max)s triangles.", code="too_large", format=fmt.label, triangles=triangles, max=limits.max_triangles)
    return Declared(fmt, triangles)


# STL ------------------------------------------------------------------------------------------------
def _plausible_stl_triangles(head: bytes) -> bool:
    """Does the data after the header look like STL triangles (a unit or zero normal, then three
    finite corners)? Used to recognise a binary STL whose length does not match its count."""
    if len(head) < STL_HEADER + 2 * STL_TRIANGLE:
        return False
    for start in (STL_HEADER, STL_HEADER + STL_TRIANGLE):
        values = struct.unpack_from("<12f", head, start)
        if not all(math.isfinite(v) and abs(v) < 1e12 for v in values):
            return False
        norm = math.sqrt(sum(v * v for v in values[:3]))
        if not (norm < 1e-6 or 0.95 < norm < 1.05):
            return False
        if len(set(values[3:])) < 3:  # three identical corners and coordinates: not geometry
            return False
    return True


def _check_binary_stl(head: bytes, size: int, max_triangles: int) -> int:
    (count,) = struct.unpack_from("<I", head, 80)
    expected = STL_HEADER + STL_TRIANGLE * count
    if count > max_triangles:
        return count  # refused as too large by the caller, with the number it claims
    if size != expected:
        raise MediaRejected(
            "This STL file is damaged or cut short: it declares %(triangles)s triangles (%(expected)s bytes) "
            "but the file holds %(held)s bytes.", code="corrupt", triangles=count, expected=expected, held=size)
    return count


def _check_ascii_stl(path: Path, size: int) -> int:
    facets = _count(path, b"endfacet")
    with path.open("rb") as fh:
        fh.seek(max(0, size - 4096))
        tail = fh.read()
    if b"endsolid" not in tail:
        raise MediaRejected("This STL file is cut short: it does not end with \u201cendsolid\u201d. "
                            "Upload the complete file.", code="corrupt")
    return facets


def _count(path: Path, token: bytes) -> int:
    total, carry = 0, b""
    for chunk in _chunks(path):
        window = carry + chunk
        total += window.count(token)
        carry = window[-(len(token) - 1):]
    return total


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


# OBJ ------------------------------------------------------------------------------------------------
def _looks_like_obj(head: bytes) -> bool:
    lines = head.splitlines()
    if len(head) >= 64 * 1024:
        lines = lines[:-1]  # the last line may be cut at the head's end
    seen = 0
    for line in lines:
        words = line.split(None, 1)
        if not words or words[0].startswith(b"#"):
            continue
        if words[0] not in OBJ_KEYWORDS:
            return False
        seen += 1
    return seen > 0 and OBJ_VERTEX.search(head) is not None


def _check_obj(path: Path) -> int:
    faces = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            chunk += fh.readline(CHUNK)  # end on a line boundary, so every chunk starts a line
            faces += len(OBJ_FACE.findall(chunk))
            for match in OBJ_FILE_STATEMENTS.finditer(chunk):
                _check_reference("OBJ", match.group(1).decode(), match.group(2).decode("utf-8", "replace").strip())
    return faces


def _check_reference(label: str, statement: str, names: str) -> None:
    """Refuse a file name that is a path or an address. (Bare names are never read either: the
    model is shown without the materials or textures they would bring.)"""
    for name in names.split():
        if "/" in name or "\\" in name or ":" in name or name.startswith((".", "~")):
            shown = name if len(name) <= 60 else name[:57] + "..."
            raise MediaRejected(
                "This %(format)s file points at another file or address (%(statement)s %(address)s). Kiln reads "
                "only the file you upload and never follows such paths; export the model again without "
                "them (or as a GLB, which carries its materials inside).", code="external_reference",
                format=label, statement=statement, address=shown)


# PLY ------------------------------------------------------------------------------------------------
PLY_SIZES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
             "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}


def _check_ply(path: Path, head: bytes, size: int, limits: ModelSettings) -> int:
    end = head.find(b"end_header")
    if end < 0:
        raise MediaRejected("This PLY file's header is damaged or longer than 64 KB.", code="corrupt")
    header_end = head.find(b"\n", end) + 1 or len(head)
    header_lines = head[:end].decode("ascii", "replace").splitlines()
    encoding = ""
    elements: list[list] = []  # [name, count, bytes per item at least]
    for line in header_lines[1:]:
        words = line.split()
        if words[:2] == ["comment", "TextureFile"] and len(words) > 2:
            _check_reference("PLY", "TextureFile", " ".join(words[2:]))
        if not words or words[0] in ("comment", "obj_info"):
            continue
        try:
            if words[0] == "format":
                encoding = words[1]
            elif words[0] == "element":
                elements.append([words[1], int(words[2]), 0])
            elif words[0] == "property" and elements:
                if words[1] == "list":
                    least = 3 if elements[-1][0] == "face" else 0
                    elements[-1][2] += PLY_SIZES[words[2]] + least * PLY_SIZES[words[3]]
                else:
                    elements[-1][2] += PLY_SIZES[words[1]]
        except (IndexError, KeyError, ValueError):
            raise MediaRejected("This PLY file's header is damaged (\u201c%(line)s\u201d).",
                                code="corrupt", line=line[:60]) from None
    if encoding not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise MediaRejected("This PLY file's header names no format Kiln reads (ASCII or binary).", code="corrupt")
    counts = {name: count for name, count, _ in elements}
    faces, vertices = counts.get("face", 0), counts.get("vertex", 0)
    if faces == 0:
        raise MediaRejected("This PLY file has no faces (it is a point cloud), so there is no surface to show.",
                            code="empty")
    if faces > limits.max_triangles or vertices > 3 * limits.max_triangles:
        return max(faces, vertices // 3)
    if encoding != "ascii":
        least = header_end + sum(count * item for _, count, item in elements)
        if size < least:
            raise MediaRejected("This PLY file is cut short: its header declares %(vertices)s vertices and "
                                "%(faces)s faces (at least %(least)s bytes) but the file holds %(held)s bytes.",
                                code="corrupt", vertices=vertices, faces=faces, least=least, held=size)
    else:
        items = sum(count for _, count, _ in elements)
        with path.open("rb") as fh:
            fh.seek(header_end)
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(CHUNK), b""))
            fh.seek(max(header_end, size - 1))
            lines += fh.read(1) not in (b"\n", b"")
        if lines < items:
            raise MediaRejected("This PLY file is cut short: its header declares %(vertices)s vertices and "
                                "%(faces)s faces (%(items)s lines) but holds %(lines)s lines.", code="corrupt",
                                vertices=vertices, faces=faces, items=items, lines=lines)
    return faces
