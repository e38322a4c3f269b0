"""Video transcode speed: Kiln's 720p step against the same ffmpeg command run by hand.

    python bench/bench_video.py [--out bench/results/video.json] [--runs 5] [--seconds 10]

A 1080p H.264/AAC clip (``--seconds`` long, 30 fps, ffmpeg's testsrc2 pattern with a tone) is
generated, then three cases run ``--runs`` times each, alternating (ABC, CBA, ...) so drift in
the machine's load hits every case alike:

  by-hand   the exact ffmpeg command Kiln's step runs (same arguments, from
            ``transcode_args``), started directly with subprocess: what an admin would type.
  kiln      ``VideoKind.run_step("video-720")`` as the processing service calls it: the guarded
            ffmpeg run (file protocol, forced demuxer, memory cap, SIGKILL timer), live progress
            parsed from ``-progress``, the completeness check. The step context's identify (the
            sandboxed header probe, once per job) is timed separately as ``probe``.
  floor     decode + scale to 720p only, no encode (``-f null``): the least any 720p transcode costs.

Speed is seconds of video per second of wall time; the target is kiln >= 90% of by-hand. The
CPU seconds the ffmpeg processes used are recorded too: on a box shared with other work, wall
times swing with the load while CPU time barely moves, so the CPU ratio shows whether Kiln's
wrapping costs anything.
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
sys.path.insert(0, str(ROOT))


def generate(directory: Path, seconds: float) -> Path:
    from tests import fixtures_video as fixtures

    path = directory / "clip-1080p.mp4"
    fixtures.ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
                    "-f", "lavfi", "-i", fixtures.TONE.format(seconds=seconds),
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "128k", str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "video.json")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    from kiln.config import load_settings
    from kiln.mediatypes.base import StepContext
    from kiln.mediatypes.external import ffmpeg_binary
    from kiln.mediatypes.video import KIND
    from kiln.mediatypes.video.transcode import Target, ladder_size, transcode_args

    with tempfile.TemporaryDirectory(prefix="kiln-bench-video-") as tmp:
        directory = Path(tmp)
        settings = load_settings(data_dir=directory / "data")
        source = generate(directory, args.seconds)
        probe_times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            identified = KIND.identify(source, source.read_bytes()[:65536], settings)
            probe_times.append(time.perf_counter() - started)
        assert identified is not None
        width, height = ladder_size((identified.width or 0, identified.height or 0), 720, [720, 360]) or (0, 0)
        ffmpeg = [ffmpeg_binary(settings), "-nostdin", "-hide_banner", "-loglevel", "error"]

        def by_hand(run: int) -> None:
            out = directory / f"hand-{run}.mp4"
            params = {"preset": settings.video.preset, "crf": settings.video.crf,
                      "audio_kbps": settings.video.audio_bitrate_kbps}
            command = transcode_args(source, Target(width, height, "h264"), True, out, params, settings)
            subprocess.run([*ffmpeg, *command], check=True)

        def kiln(run: int) -> None:
            workdir = directory / f"kiln-{run}"
            workdir.mkdir()
            ctx = StepContext(source=source, workdir=workdir, settings=settings, identified=identified)
            result = KIND.run_step("video-720", ctx)
            assert result.files and (result.files[0].width, result.files[0].height) == (width, height)

        def floor(run: int) -> None:
            subprocess.run([*ffmpeg, "-i", str(source), "-map", "0:v:0", "-vf", f"scale={width}:{height}",
                            "-f", "null", "-"], check=True)

        cases = {"by-hand": by_hand, "kiln": kiln, "floor": floor}
        times: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        order = list(cases)
        for run in range(args.runs):
            for name in (order if run % 2 == 0 else order[::-1]):
                cpu_before = children_cpu()
                started = time.perf_counter()
                cases[name](run)
                times[name].append(time.perf_counter() - started)
                cpu[name].append(children_cpu() - cpu_before)
        hand_bytes = (directory / "hand-0.mp4").stat().st_size
        kiln_bytes = (directory / "kiln-0" / "video-720.mp4").stat().st_size

    results = {name: {"seconds_median": round(statistics.median(t), 3), "seconds_min": round(min(t), 3),
                      "seconds_max": round(max(t), 3),
                      "speed_x_realtime": round(args.seconds / statistics.median(t), 2),
                      "cpu_seconds_median": round(statistics.median(cpu[name]), 3)}
               for name, t in times.items()}
    hand, ours = results["by-hand"]["seconds_median"], results["kiln"]["seconds_median"]
    report = {
        "what": f"{args.seconds:g} s 1080p30 H.264/AAC -> {width}x{height} H.264 (x264 {settings.video.preset}, "
                f"CRF {settings.video.crf}) + AAC MP4 with faststart; seconds per transcode",
        "runs": args.runs,
        "versions": {"python": platform.python_version(), "ffmpeg": ffmpeg_version(ffmpeg[0]),
                     "cpus": str(os.cpu_count()), "machine": platform.machine()},
        "cases": results,
        "probe_seconds_median": round(statistics.median(probe_times), 3),
        "output_bytes": {"by-hand": hand_bytes, "kiln": kiln_bytes},
        "kiln_speed_vs_by_hand": round(hand / ours, 3),
        "kiln_cpu_vs_by_hand": round(results["kiln"]["cpu_seconds_median"] / results["by-hand"]["cpu_seconds_median"],
                                     3),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "target": ">= 0.90",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'case':<10}{'median s':>10}{'min':>8}{'max':>8}{'x realtime':>12}{'CPU s':>8}")
    for name, r in results.items():
        print(f"{name:<10}{r['seconds_median']:>10.2f}{r['seconds_min']:>8.2f}{r['seconds_max']:>8.2f}"
              f"{r['speed_x_realtime']:>12.2f}{r['cpu_seconds_median']:>8.2f}")
    print(f"probe (identify) {report['probe_seconds_median']:.3f} s   kiln speed / by-hand speed = "
          f"{report['kiln_speed_vs_by_hand']}   -> {args.out}")


def children_cpu() -> float:
    """User + system CPU seconds used so far by finished child processes (ffmpeg runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ffmpeg_version(binary: str) -> str:
    done = subprocess.run([binary, "-hide_banner", "-version"], capture_output=True, text=True, check=False)
    return (done.stdout.split("\n", 1)[0].split(" ")[2:3] or ["?"])[0]


if __name__ == "__main__":
    main()
