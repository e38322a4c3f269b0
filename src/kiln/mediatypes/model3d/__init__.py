"""3D models: STL (binary and ASCII), OBJ, PLY, glTF (embedded data) and GLB.

Recognised from content (sniff.py), with the triangle count, the file's length and any reference
to another file checked from headers before anything is loaded. Loading and drawing happen in a
child process under time and memory limits (child.py), with a numpy software renderer
(raster.py): no display, no OpenGL, nothing beyond pip packages.

Steps and renditions:

* ``model``: the mesh as GLB (Y-up, materials and textures kept), which the page's viewer shows
  whatever the uploaded format was; also reports triangles, vertices, dimensions, units, parts
  and whether the surface is closed (watertight) into ``media.info``.
* ``medium``: a picture of the model from a 3/4 view above its front right, fitting
  ``image.medium_size``, drawn from the GLB made just before when there is one.
* ``thumbnail`` and ``thumbnail_2x``: fit ``image.thumbnail_size`` and twice it, shrunk from the medium
  when there is one (the 1x from the 2x otherwise).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kiln.config import Settings
from kiln.hookspecs import hookimpl
from kiln.i18n import N_
from kiln.mediatypes.base import (
    THUMBNAILS,
    Identified,
    MediaRejected,
    ProducedFile,
    RenditionSpec,
    StepContext,
    StepDef,
    StepResult,
    output_spec,
    thumbnail_specs,
    wanted_outputs,
)
from kiln.mediatypes.external import run_external
from kiln.mediatypes.model3d.sniff import FORMATS, check, sniff

__all__ = ["KIND", "ModelKind"]

RENDERER_VERSION = 1
CHILD = Path(__file__).with_name("child.py")


class ModelKind:
    name = "model3d"
    label = N_("3D model")
    order = 50
    served_types = {".glb": "model/gltf-binary", ".jpg": "image/jpeg", ".webp": "image/webp"}
    inline_types = frozenset({".jpg", ".webp"})
    settings_section = "model3d"
    formats = "STL, OBJ, PLY, glTF, GLB"
    file_extensions = frozenset({".stl", ".obj", ".ply", ".gltf", ".glb"})
    mime_extensions = {"model/stl": ".stl", "model/obj": ".obj", "model/x-ply": ".ply",
                       "model/gltf+json": ".gltf", "model/gltf-binary": ".glb"}

    # Recognising ---------------------------------------------------------------------------------
    def identify(self, path: Path, head: bytes, settings: Settings) -> Identified | None:
        size = path.stat().st_size
        fmt = sniff(head, size)
        if fmt is None:
            return None
        declared = check(path, head, size, fmt, settings.model3d)
        return Identified(kind=self.name, mime_type=fmt.mime_type,
                          extra={"format": fmt.key, "triangles": declared.triangles})

    # Planning -----------------------------------------------------------------------------------
    def steps(self, settings: Settings) -> list[StepDef]:
        image, model = settings.image, settings.model3d
        look = {"version": RENDERER_VERSION, "view": "3/4 front right, above", "supersample": model.supersample,
                "jpeg_quality": image.jpeg_quality, "webp_quality": image.webp_quality}
        return [
            StepDef("model", (RenditionSpec("model", {"version": RENDERER_VERSION, "format": "glb", "up": "y"}),)),
            StepDef("medium", (RenditionSpec("medium", {**look, "size": image.medium_size}),)),
            StepDef("thumbnail", thumbnail_specs(look, image.thumbnail_size)),
        ]

    # Running ------------------------------------------------------------------------------------
    def run_step(self, step: str, ctx: StepContext) -> StepResult:
        fmt = self._format(ctx)
        if step == "model":
            glb = ctx.workdir / "model.glb"
            info = self._child(ctx, [str(ctx.source), fmt, "--glb", str(glb)])
            ctx.report_progress(1.0)
            info.update(format=FORMATS[fmt].label, units=FORMATS[fmt].units or "unknown")
            return StepResult(files=[ProducedFile("model", glb, "model/gltf-binary")], metadata=info)
        if step == "medium":
            return StepResult(files=[self._picture(ctx, "medium", output_spec(ctx, self, "medium").params)])
        if step == "thumbnail":  # the larger first: the smaller is shrunk from it
            outputs = wanted_outputs(ctx, self, THUMBNAILS)
            files: list[ProducedFile] = []
            for name in sorted(outputs, key=lambda n: -int(outputs[n]["size"])):
                files.append(self._picture(ctx, name, outputs[name], files[0] if files else None))
            return StepResult(files=files)
        raise ValueError(f"The 3D model kind has no step called {step!r}.")

    def _picture(self, ctx: StepContext, name: str, params: Mapping[str, Any],
                 larger: ProducedFile | None = None) -> ProducedFile:
        """Render ``name``; a thumbnail is shrunk from a larger picture made this run (``larger``, else
        the medium) when there is one big enough, which costs no new render of the model."""
        from kiln.mediatypes.image.still import render_still

        box = int(params["size"])
        for made in (larger, ctx.earlier.get("medium")):
            if name in THUMBNAILS and made is not None and made.path.is_file() \
                    and max(made.width or 0, made.height or 0) >= box:
                return render_still(made.path, params, ctx.workdir, name, ctx.settings)
        glb = ctx.earlier.get("model")
        source, fmt = (glb.path, "kiln_glb") if glb is not None and glb.path.is_file() \
            else (ctx.source, self._format(ctx))
        still = ctx.workdir / f"{name}-still.png"
        self._child(ctx, [str(source), fmt, "--png", str(still), "--size", str(box),
                          "--supersample", str(params["supersample"])])
        ctx.report_progress(0.9)
        return render_still(still, params, ctx.workdir, name, ctx.settings)

    @staticmethod
    def _format(ctx: StepContext) -> str:
        fmt = ctx.identified.extra.get("format")
        if fmt not in FORMATS:
            raise MediaRejected("This file is not a 3D model Kiln can read.", code="unsupported")
        return str(fmt)

    @staticmethod
    def _child(ctx: StepContext, args: list[str]) -> dict[str, Any]:
        model = ctx.settings.model3d
        done = run_external(
            [sys.executable, str(CHILD), *args,
             "--max-triangles", str(model.max_triangles)],
            timeout=model.time_limit_seconds, memory_mb=model.memory_mb, cwd=ctx.workdir,
            what=N_("The 3D model reader"))
        return dict(json.loads(done.stdout.decode()))


KIND = ModelKind()


@hookimpl
def kiln_media_kinds() -> list[ModelKind]:
    """Registered through the entry point ``model3d`` in pyproject.toml, as a plugin's kind would be."""
    return [KIND]
