"""The child process that loads an untrusted model (``python .../model3d/child.py``, run as a script).

Parsing meshes is CPU- and memory-hungry and trimesh was not written for hostile input, so it runs
here, under :func:`kiln.mediatypes.external.run_external`'s time and address-space limits, never in
a worker. It reads only the file it is given: the mesh is handed to trimesh as bytes with no file
name, a resolver that refuses every other file, and OBJ statements that name files removed first.

    child SOURCE FORMAT [--glb OUT] [--png OUT --size N --supersample K] [--max-triangles N]

prints a JSON report (triangles, vertices, dimensions...) on stdout. On failure its last line on
stderr is a sentence for the model's owner, and it exits with status 2.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    sys.path.pop(0)  # this file's folder: its modules (gltf.py, ...) must not shadow top-level names
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread: thread stacks count against the memory cap

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

OBJ_FILE_STATEMENTS = re.compile(rb"(?m)^[ \t]*(mtllib|maplib|usemap|call|csh|shadow_obj|trace_obj)\b[^\r\n]*")
CLAY = [196, 186, 170]  # the colour of a model that brings none (as raster.CLAY)
Z_UP_TO_Y_UP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


class ModelError(Exception):
    """The model cannot be used; the message is for its owner."""


def load(source: Path, fmt: str) -> Any:
    """The file as a trimesh Scene, Y-up, read without touching any other file."""
    import trimesh
    from trimesh.resolvers import Resolver

    class NoOtherFiles(Resolver):
        def __init__(self) -> None:
            pass

        def get(self, key: str) -> bytes:
            raise ModelError(f"This model refers to another file ({key[:60]}); Kiln reads only the uploaded file.")

        def write(self, name: str, data: Any) -> None:
            raise ModelError("writing is not allowed")

        def namespaced(self, namespace: str) -> Resolver:
            return self

        def keys(self) -> list[str]:
            return []

    data = source.read_bytes()
    if fmt == "obj":
        data = OBJ_FILE_STATEMENTS.sub(b"", data)
    file_type = {"stl_ascii": "stl", "kiln_glb": "glb"}.get(fmt, fmt)
    try:
        scene = trimesh.load_scene(io.BytesIO(data), file_type=file_type, resolver=NoOtherFiles())
    except ModelError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # trimesh raises anything from ValueError to struct.error on bad input
        raise ModelError(f"the model could not be read ({type(exc).__name__}: {str(exc)[:120]})") from None
    if fmt in ("stl", "stl_ascii", "ply"):
        scene.apply_transform(Z_UP_TO_Y_UP)
    return scene


def meshes(scene: Any) -> Any:
    """Every triangle mesh of the scene, placed by its node (instances repeated)."""
    import trimesh

    return [g for g in scene.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]


def face_colours(mesh: Any) -> np.ndarray | None:
    """(F, 3) uint8 colours the model brings (face or vertex colours, or a texture sampled at the
    corners), or None when it brings none."""
    visual = mesh.visual
    try:
        if visual.kind == "texture":
            visual = visual.to_color()
        if visual.kind == "face" and visual.defined:
            return np.asarray(visual.face_colors)[:, :3]
        if visual.kind == "vertex" and visual.defined:
            return np.asarray(visual.vertex_colors)[:, :3][mesh.faces].mean(axis=1).astype(np.uint8)
    except Exception:  # a texture that cannot be sampled: fall back to plain clay
        return None
    return None


def export_glb(scene: Any) -> bytes:
    """The scene as GLB. A mesh without colours gets a matt, double-sided clay material (the
    viewer's default is glossy white, and one-sided, which shows holes where a mesh is wound the
    wrong way). Face colours become colours of unshared corners first: trimesh's own conversion
    needs scipy, which Kiln does not install."""
    from trimesh.visual import ColorVisuals, TextureVisuals
    from trimesh.visual.material import PBRMaterial

    for mesh in scene.geometry.values():
        visual = getattr(mesh, "visual", None)
        if visual is None:
            continue
        if not visual.defined:
            mesh.visual = TextureVisuals(material=PBRMaterial(
                name="clay", baseColorFactor=[*CLAY, 255], metallicFactor=0.0, roughnessFactor=0.85,
                doubleSided=True))
        elif visual.kind == "face":
            colours = np.asarray(visual.face_colors)
            mesh.unmerge_vertices()
            mesh.visual = ColorVisuals(mesh, vertex_colors=np.repeat(colours, 3, axis=0))
    return bytes(scene.export(file_type="glb"))


def report(parts: Any, fmt: str) -> dict[str, Any]:
    vertices = np.concatenate([m.vertices for m in parts])
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    if fmt in ("stl", "stl_ascii", "ply"):  # report the file's own axes, not the upright ones
        lo, hi = lo @ Z_UP_TO_Y_UP[:3, :3], hi @ Z_UP_TO_Y_UP[:3, :3]
    extents = np.abs(hi - lo)
    return {
        "triangles": int(sum(len(m.faces) for m in parts)),
        "vertices": int(sum(len(m.vertices) for m in parts)),
        "dimensions": [float(f"{v:.6g}") for v in extents],
        "parts": len(parts),
        "watertight": all(m.is_watertight for m in parts),
    }


def _raster() -> Any:
    """raster.py, loaded from beside this file: importing it through the ``kiln`` package would
    import Kiln's settings and media registry too, a third of a second per child for nothing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("kiln_model3d_raster", Path(__file__).with_name("raster.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def picture(parts: Any, size: int, supersample: int) -> np.ndarray:
    render = _raster().render
    offsets = np.cumsum([0] + [len(m.vertices) for m in parts])
    vertices = np.concatenate([m.vertices for m in parts])
    faces = np.concatenate([m.faces + offset for m, offset in zip(parts, offsets, strict=False)])
    colours = [face_colours(m) for m in parts]
    face_colors = None
    if any(c is not None for c in colours):
        clay = np.array(CLAY, dtype=np.uint8)
        face_colors = np.concatenate([c if c is not None else np.tile(clay, (len(m.faces), 1))
                                      for c, m in zip(colours, parts, strict=True)])
    closed = np.concatenate([np.full(len(m.faces), _solid(m)) for m in parts])
    return render(vertices, faces, face_colors, size, supersample, closed=closed)


def _solid(mesh: Any) -> bool:
    """A closed surface wound outwards: its inside (the back of its faces) can never be seen."""
    return bool(mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kiln.mediatypes.model3d.child")
    parser.add_argument("source", type=Path)
    parser.add_argument("format")
    parser.add_argument("--glb", type=Path)
    parser.add_argument("--png", type=Path)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--supersample", type=int, default=2)
    parser.add_argument("--max-triangles", type=int, default=5_000_000)
    args = parser.parse_args(argv)
    try:
        scene = load(args.source, args.format)
        parts = meshes(scene)
        if not parts:
            raise ModelError("the model holds no triangles, so there is no surface to show")
        info = report(parts, args.format)
        if info["triangles"] > args.max_triangles:
            raise ModelError(f"the model has {info['triangles']:,} triangles once loaded; this site accepts "
                             f"up to {args.max_triangles:,}")
        if not np.isfinite(np.concatenate([m.vertices for m in parts])).all() or max(info["dimensions"]) <= 0:
            raise ModelError("the model has no size (its corners are all in one place, or not numbers)")
        if args.glb:
            args.glb.write_bytes(export_glb(scene))
        if args.png:
            from PIL import Image

            Image.fromarray(picture(parts, args.size, args.supersample)).save(args.png, compress_level=1)
    except ModelError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except MemoryError:
        print("the model needs more memory than this site allows", file=sys.stderr)
        return 3
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
