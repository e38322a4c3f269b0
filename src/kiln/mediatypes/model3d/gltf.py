"""glTF 2.0 and GLB checked from their JSON before loading: the version, required extensions,
that every buffer and image is inside the file (a GLB chunk or a ``data:`` URI, never a path or an
address), that buffers, views and accessors fit inside each other, and how many triangles the
scene draws once every node instance is counted.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from kiln.mediatypes.base import MediaRejected

MAX_JSON_BYTES = 64 * 1024**2  # a GLB's JSON chunk holds only the structure, never the data
# Extensions a file may *require* and still be read correctly by the loader; anything else (Draco or
# meshopt compression, ...) would load wrongly or not at all.
READABLE_EXTENSIONS = frozenset({
    "KHR_materials_unlit", "KHR_texture_transform", "KHR_materials_emissive_strength",
    "KHR_materials_ior", "KHR_materials_specular", "KHR_materials_transmission", "KHR_materials_volume",
    "KHR_materials_clearcoat", "KHR_materials_sheen",
})
COMPONENT_BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
TYPE_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


def check_glb(path: Path, head: bytes, size: int, max_triangles: int) -> int:
    """Triangles a GLB draws; MediaRejected when it is damaged, cut short or points outside itself."""
    if len(head) < 20:
        raise MediaRejected("This GLB file is cut short: its header is incomplete.", code="corrupt")
    _magic, version, length, json_length, json_type = struct.unpack_from("<4sIIII", head)
    if version != 2:
        raise MediaRejected("This is a glTF %(version)s binary file; Kiln reads glTF 2.0. Export it again as "
                            "glTF 2.0 (GLB).", code="unsupported", version=str(version))
    if length != size:
        raise MediaRejected("This GLB file is damaged or cut short: its header says %(declared)s bytes but the "
                            "file holds %(held)s.", code="corrupt", declared=length, held=size)
    if json_type != 0x4E4F534A or 20 + json_length > size:
        raise MediaRejected("This GLB file is damaged: its first part is not the glTF description.",
                            code="corrupt")
    if json_length > MAX_JSON_BYTES:
        raise MediaRejected("This GLB file's description is larger than 64 MB; Kiln refuses it.", code="too_large")
    with path.open("rb") as fh:
        fh.seek(20)
        text = fh.read(json_length)
        binary_length = None
        chunk_start = 20 + ((json_length + 3) & ~3)
        fh.seek(chunk_start)
        chunk_header = fh.read(8)
        if len(chunk_header) == 8:
            chunk_length, chunk_type = struct.unpack("<II", chunk_header)
            if chunk_type == 0x004E4942:
                binary_length = min(chunk_length, size - chunk_start - 8)
    return _check_document(_parse(text, "GLB"), binary_length, "GLB", max_triangles)


def check_gltf(path: Path, size: int, max_triangles: int) -> int:
    """Triangles a .gltf (JSON) file draws; its buffers must be embedded as ``data:`` URIs."""
    return _check_document(_parse(path.read_bytes(), "glTF"), None, "glTF", max_triangles)


def _parse(text: bytes, label: str) -> dict[str, Any]:
    try:
        doc = json.loads(text.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MediaRejected("This %(format)s file's description is not valid JSON (the file is damaged or cut "
                            "short).", code="corrupt", format=label) from None
    if not isinstance(doc, dict):
        raise MediaRejected("This %(format)s file's description is not a glTF object.", code="corrupt",
                            format=label)
    return doc


def _check_document(doc: dict[str, Any], binary_length: int | None, label: str, max_triangles: int) -> int:
    try:
        return _walk(doc, binary_length, label, max_triangles)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise MediaRejected("This %(format)s file's description is damaged (a part refers to something that "
                            "is missing or malformed).", code="corrupt", format=label) from None


def _walk(doc: dict[str, Any], binary_length: int | None, label: str, max_triangles: int) -> int:
    version = str(doc.get("asset", {}).get("version", ""))
    if not version.startswith("2"):
        if not version:
            raise MediaRejected("This %(format)s file is glTF of an unknown version; Kiln reads "
                                "glTF 2.0. Export it again as glTF 2.0.", code="unsupported", format=label)
        raise MediaRejected("This %(format)s file is glTF %(version)s; Kiln reads "
                            "glTF 2.0. Export it again as glTF 2.0.", code="unsupported", format=label,
                            version=version)
    unreadable = sorted(set(doc.get("extensionsRequired", [])) - READABLE_EXTENSIONS)
    if unreadable:
        raise MediaRejected("This %(format)s file requires %(extensions)s, which Kiln cannot read. "
                            "Export it again without compression.", code="unsupported", format=label,
                            extensions=", ".join(unreadable))
    buffers = [_buffer_length(i, b, binary_length, label) for i, b in enumerate(doc.get("buffers", []))]
    for image in doc.get("images", []):
        if "uri" in image:
            _embedded(image["uri"], label)
    views = []
    for view in doc.get("bufferViews", []):
        start, length = int(view.get("byteOffset", 0)), int(view["byteLength"])
        if start < 0 or length < 0 or start + length > buffers[int(view["buffer"])]:
            raise MediaRejected("This %(format)s file is damaged or cut short: a part of its data lies beyond "
                                "the end of its buffer.", code="corrupt", format=label)
        views.append((length, int(view.get("byteStride", 0))))
    counts = [_accessor_count(accessor, views, label) for accessor in doc.get("accessors", [])]
    if sum(counts) > 64 * max_triangles:
        return sum(counts) // 3
    per_mesh = [_mesh_triangles(mesh, counts) for mesh in doc.get("meshes", [])]
    return _scene_triangles(doc, per_mesh, max_triangles)


def _buffer_length(index: int, buffer: dict[str, Any], binary_length: int | None, label: str) -> int:
    declared = int(buffer["byteLength"])
    if "uri" not in buffer:
        if index != 0 or binary_length is None:
            raise MediaRejected("This %(format)s file is damaged: a buffer has neither data nor an embedded "
                                "binary part.", code="corrupt", format=label)
        held = binary_length
    else:
        held = _embedded(buffer["uri"], label)
    if declared > held:
        raise MediaRejected("This %(format)s file is damaged or cut short: a buffer declares %(declared)s bytes "
                            "but holds %(held)s.", code="corrupt", format=label, declared=declared, held=held)
    return declared


def _embedded(uri: Any, label: str) -> int:
    """The decoded size of a ``data:`` URI; MediaRejected for any other URI (a path or an address)."""
    if not isinstance(uri, str) or not uri.startswith("data:"):
        shown = str(uri)[:60]
        raise MediaRejected(
            "This %(format)s file refers to data in another file or at an address (%(address)s). Kiln reads only "
            "the file you upload and never follows such references; upload a GLB, or a glTF with its data "
            "embedded.", code="external_reference", format=label, address=shown)
    meta, _, payload = uri.partition(",")
    if not meta.endswith(";base64"):
        return len(payload)
    payload = payload.rstrip("=")
    return len(payload) * 3 // 4


def _accessor_count(accessor: dict[str, Any], views: list[tuple[int, int]], label: str) -> int:
    count = int(accessor["count"])
    if count < 0:
        raise ValueError("negative count")
    if "bufferView" in accessor and count:
        length, stride = views[int(accessor["bufferView"])]
        element = COMPONENT_BYTES[int(accessor["componentType"])] * TYPE_COMPONENTS[accessor["type"]]
        needed = int(accessor.get("byteOffset", 0)) + max(stride, element) * (count - 1) + element
        if needed > length:
            raise MediaRejected("This %(format)s file is damaged: an accessor reads %(needed)s bytes from a "
                                "part holding %(held)s.", code="corrupt", format=label, needed=needed, held=length)
    return count


def _mesh_triangles(mesh: dict[str, Any], counts: list[int]) -> int:
    total = 0
    for primitive in mesh.get("primitives", []):
        mode = int(primitive.get("mode", 4))
        corners = counts[int(primitive["indices"])] if "indices" in primitive \
            else counts[int(primitive["attributes"]["POSITION"])]
        if mode == 4:
            total += corners // 3
        elif mode in (5, 6):
            total += max(0, corners - 2)
    return total


def _scene_triangles(doc: dict[str, Any], per_mesh: list[int], max_triangles: int) -> int:
    """Triangles drawn once each node is instanced: a node draws its mesh and everything its children
    draw, so a small file can ask for millions of copies (counted here without walking them)."""
    nodes = doc.get("nodes", [])
    scenes = doc.get("scenes", [])
    if scenes:
        roots = [int(r) for r in scenes[int(doc.get("scene", 0))].get("nodes", [])]
    elif nodes:
        children = {int(c) for node in nodes for c in node.get("children", [])}
        roots = [i for i in range(len(nodes)) if i not in children]
    else:
        return sum(per_mesh)
    drawn: dict[int, int] = {}
    visiting: set[int] = set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            index, children_done = stack.pop()
            if index in drawn:
                continue
            node = nodes[index]
            kids = [int(c) for c in node.get("children", [])]
            if children_done:
                visiting.discard(index)
                own = per_mesh[int(node["mesh"])] if "mesh" in node else 0
                drawn[index] = min(own + sum(drawn[k] for k in kids), 2**62)
                continue
            if index in visiting:
                raise MediaRejected("This glTF scene is damaged: a node contains itself.", code="corrupt")
            visiting.add(index)
            stack.append((index, True))
            stack.extend((k, False) for k in kids if k not in drawn)
    return min(sum(drawn[r] for r in roots), 2**62)
