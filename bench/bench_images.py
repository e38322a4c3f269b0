"""Image processing speed and memory: Kiln's pipeline against the decode floor and Pillow.

    python bench/bench_images.py [--out bench/results/images.json] [--runs 7]

A 24 MP camera JPEG (6000x4000, orientation 1, and a copy with orientation 6) is generated, then
each case runs ``--runs`` times, interleaved, each time in a fresh subprocess so that its peak
resident memory (ru_maxrss) is its own. Inside the subprocess the libraries are imported and
warmed up on a small image first, as in a long-running worker; only the work on the 24 MP image
is timed.

Cases:
  floor          libvips JPEG decode at 1/4 scale (shrink-on-load) alone: the least any pipeline
                 making a 1280 px rendition from this file can cost.
  kiln, kiln-o6  ImageKind's medium then thumbnail steps, as the processing service calls them
                 (the thumbnail derived from the medium), plus the identify that builds the
                 step context (~1.5 ms).
  kiln-arena2    the same with MALLOC_ARENA_MAX=2 (memory only differs).
  pillow-naive   Pillow: open, resize to 1280, save; resize to 180, save.
  pillow-draft   Pillow with draft() (its JPEG shrink-on-load) and thumbnail(): a careful Pillow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "floor": ("camera-o1.jpg", {}),
    "kiln": ("camera-o1.jpg", {}),
    "kiln-o6": ("camera-o6.jpg", {}),
    "kiln-arena2": ("camera-o1.jpg", {"MALLOC_ARENA_MAX": "2"}),
    "pillow-naive": ("camera-o1.jpg", {}),
    "pillow-draft": ("camera-o1.jpg", {}),
}
MEDIUM, THUMB, QUALITY = 1280, 180, 82


# The work, run inside a child process -------------------------------------------------------------
def floor(path: Path, workdir: Path) -> None:
    import pyvips

    pyvips.cache_set_max(0)
    pyvips.Image.jpegload(str(path), shrink=4, access="sequential").avg()


def kiln(path: Path, workdir: Path) -> None:
    from kiln.config import load_settings
    from kiln.mediatypes.base import StepContext
    from kiln.mediatypes.image import KIND

    settings = load_settings(data_dir=workdir / "data")
    identified = KIND.identify(path, path.read_bytes()[:65536], settings)
    ctx = StepContext(source=path, workdir=workdir, settings=settings, identified=identified)
    for step in ("medium", "thumbnail"):
        for produced in KIND.run_step(step, ctx).files:
            ctx.earlier[produced.name] = produced


def _fit(size: tuple[int, int], box: int) -> tuple[int, int]:
    scale = min(1.0, box / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def pillow_naive(path: Path, workdir: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.resize(_fit(image.size, MEDIUM)).save(workdir / "medium.jpg", quality=QUALITY)
        image.resize(_fit(image.size, THUMB)).save(workdir / "thumbnail.jpg", quality=QUALITY)


def pillow_draft(path: Path, workdir: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", _fit(image.size, MEDIUM))
        image.thumbnail((MEDIUM, MEDIUM))
        image.save(workdir / "medium.jpg", quality=QUALITY)
        image.thumbnail((THUMB, THUMB))
        image.save(workdir / "thumbnail.jpg", quality=QUALITY)


WORK = {
    "floor": floor,
    "kiln": kiln,
    "kiln-o6": kiln,
    "kiln-arena2": kiln,
    "pillow-naive": pillow_naive,
    "pillow-draft": pillow_draft,
}


def peak_rss_mib() -> float:
    """This process's peak resident memory.

    VmHWM rather than ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child would
    report its parent's peak when that was higher.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def child(case: str, path: Path, warmup: Path, workdir: Path) -> None:
    work = WORK[case]
    (workdir / "warm").mkdir(parents=True, exist_ok=True)
    work(warmup, workdir / "warm")  # imports, library start-up, thread pool
    baseline = peak_rss_mib()
    (workdir / "timed").mkdir()
    started = time.perf_counter()
    work(path, workdir / "timed")
    elapsed = time.perf_counter() - started
    print(json.dumps({"ms": elapsed * 1000, "rss_mib": peak_rss_mib(), "baseline_rss_mib": baseline}))


# The driver ---------------------------------------------------------------------------------------
def generate(directory: Path) -> None:
    """Make the test images (run in a child process, so this driver stays small)."""
    sys.path.insert(0, str(ROOT))
    from tests import fixtures_images as fixtures

    fixtures.make_camera_jpeg(directory, orientation=1, name="camera-o1.jpg")
    fixtures.make_camera_jpeg(directory, orientation=6, name="camera-o6.jpg")
    fixtures.make_small_jpeg(directory, "warmup.jpg", fixtures.camera_exif(1), size=(1600, 1200))


def run_child(case: str, directory: Path, index: int) -> dict[str, float]:
    name, env = CASES[case]
    workdir = directory / f"{case}-{index}"
    command = [
        sys.executable,
        __file__,
        "--child",
        case,
        str(directory / name),
        str(directory / "warmup.jpg"),
        str(workdir),
    ]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{case} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def versions() -> dict[str, str]:
    import PIL
    import pyvips

    return {
        "python": platform.python_version(),
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
        "pyvips": pyvips.__version__,
        "pillow": PIL.__version__,
        "cpus": str(os.cpu_count()),
        "machine": platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "images.json")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--child", nargs=4, metavar=("CASE", "IMAGE", "WARMUP", "WORKDIR"), help=argparse.SUPPRESS
    )
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.generate)
        return
    if args.child:
        case, image, warmup, workdir = args.child
        child(case, Path(image), Path(warmup), Path(workdir))
        return

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        directory = Path(tmp)
        subprocess.run([sys.executable, __file__, "--generate", str(directory)], check=True)
        samples: dict[str, list[dict[str, float]]] = {case: [] for case in CASES}
        for index in range(args.runs):  # interleaved, so drift hits every case alike
            for case in CASES:
                samples[case].append(run_child(case, directory, index))
        source_bytes = (directory / "camera-o1.jpg").stat().st_size

    results = {}
    for case, runs in samples.items():
        results[case] = {
            "ms_median": round(statistics.median(r["ms"] for r in runs), 1),
            "ms_min": round(min(r["ms"] for r in runs), 1),
            "ms_max": round(max(r["ms"] for r in runs), 1),
            "peak_rss_mib_median": round(statistics.median(r["rss_mib"] for r in runs), 1),
            "baseline_rss_mib_median": round(statistics.median(r["baseline_rss_mib"] for r in runs), 1),
        }
    floor_ms = results["floor"]["ms_median"]
    report = {
        "what": "24 MP JPEG (6000x4000) -> 1280 px medium + 180 px thumbnail; ms per image",
        "runs": args.runs,
        "source_bytes": source_bytes,
        "versions": versions(),
        # Other work on the machine slows every case alike; the load average says how busy it was.
        "loadavg_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "cases": results,
        "ratio_kiln_over_floor": round(results["kiln"]["ms_median"] / floor_ms, 2),
        "ratio_kiln_o6_over_floor": round(results["kiln-o6"]["ms_median"] / floor_ms, 2),
        "ratio_pillow_naive_over_kiln": round(
            results["pillow-naive"]["ms_median"] / results["kiln"]["ms_median"], 2
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"{'case':<14}{'median ms':>11}{'min':>8}{'max':>8}{'peak RSS MiB':>14}{'baseline':>10}")
    for case, r in results.items():
        print(
            f"{case:<14}{r['ms_median']:>11.1f}{r['ms_min']:>8.1f}{r['ms_max']:>8.1f}"
            f"{r['peak_rss_mib_median']:>14.1f}{r['baseline_rss_mib_median']:>10.1f}"
        )
    print(
        f"kiln/floor = {report['ratio_kiln_over_floor']}"
        f"  (orientation 6: {report['ratio_kiln_o6_over_floor']})"
        f"   pillow-naive/kiln = {report['ratio_pillow_naive_over_kiln']}   -> {args.out}"
    )


if __name__ == "__main__":
    main()
