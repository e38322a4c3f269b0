"""3D models: what the software renderer and the whole kind cost, per mesh size.

    python bench/bench_model3d.py [--out bench/results/model3d.json] [--runs 5]

For torus meshes of about 1k, 10k, 100k and 1M triangles (generated with trimesh):

* ``render_ms``: the numpy rasteriser alone (raster.render) drawing the medium picture (1280 px
  long side, 2x supersampled, so 2560 px internally; ``_culled``: the backs of the closed torus
  left out, as the kind does for closed meshes) and a 180 px picture, in this process;
* ``steps_ms``: the kind's three steps as the worker runs them (each in its limited child process:
  load + GLB export, load the GLB + draw the medium, shrink the medium into the thumbnail),
  on a binary STL of the mesh; identify (header checks) is timed separately.

CPU time (process_time) is reported for the renderer, wall time for the steps (they run children).
Medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

from kiln.config import load_settings
from kiln.mediatypes.base import StepContext
from kiln.mediatypes.model3d import KIND
from kiln.mediatypes.model3d.raster import render

SIZES = {"1k": (40, 13), "10k": (125, 40), "100k": (400, 125), "1M": (1250, 400)}


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/model3d.json"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict = {"machine": platform.machine(), "python": platform.python_version(), "meshes": {}}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        settings = load_settings(data_dir=root / "data")
        for label, (major, minor) in SIZES.items():
            mesh = trimesh.creation.torus(1.0, 0.3, major_sections=major, minor_sections=minor)
            figures: dict = {"triangles": len(mesh.faces)}
            solid = np.ones(len(mesh.faces), dtype=bool)
            for name, size, closed in (("medium_1280", 1280, None), ("medium_1280_culled", 1280, solid),
                                       ("thumbnail_180", 180, None)):
                times = []
                for _ in range(args.runs):
                    started = time.process_time()
                    render(mesh.vertices, mesh.faces, None, size, 2, closed=closed)
                    times.append(time.process_time() - started)
                figures[f"render_ms_{name}"] = median_ms(times)
            stl = root / f"torus-{label}.stl"
            stl.write_bytes(mesh.export(file_type="stl"))
            identify, steps = [], {s.name: [] for s in KIND.steps(settings)}
            for run in range(args.runs if len(mesh.faces) < 500_000 else 1):
                started = time.perf_counter()
                with stl.open("rb") as fh:
                    found = KIND.identify(stl, fh.read(65536), settings)
                identify.append(time.perf_counter() - started)
                assert found is not None
                work = root / f"work-{label}-{run}"
                work.mkdir()
                ctx = StepContext(source=stl, workdir=work, settings=settings, identified=found)
                for step in KIND.steps(settings):
                    started = time.perf_counter()
                    for produced in KIND.run_step(step.name, ctx).files:
                        ctx.earlier[produced.name] = produced
                    steps[step.name].append(time.perf_counter() - started)
            figures["identify_ms"] = median_ms(identify)
            figures["steps_ms"] = {name: median_ms(times) for name, times in steps.items()}
            figures["stl_bytes"] = stl.stat().st_size
            results["meshes"][label] = figures
            print(label, json.dumps(figures), file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
