"""Processing throughput on one and on two worker hosts, on the multi-host rig (tests/rig).

    python bench/bench_hosts.py [--out bench/results/hosts.json] [--count 60] [--size 1600] [--runs 2]

Needs root and `ip netns` (as the rig does). For each number of worker hosts (1, then 2; each
`kiln worker --multi-host --processes 2`), the rig is built afresh: a services host (PostgreSQL,
Redis, Swift), two web hosts behind nginx, the worker hosts. ``--count`` JPEGs of ``--size`` px on
the long side are uploaded through nginx by the API from four client threads, and the clock runs from
the first upload to the last item ``processed`` (read from the rig's PostgreSQL every 0.1 s). The
rig's start-up is not timed.

Every host of the rig shares this machine's CPUs: with two cores, a second worker host adds
processes, not cores, so the ratio measures how well the hosts share the work (no item waits while
a host is idle) rather than how a real second machine would add capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the rig lives with the tests

PASSWORD = "correct horse battery"


def one_run(workers: int, paths: list[Path]) -> dict[str, Any]:
    import httpx
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session
    from tests.rig.site import rig

    from kiln.media.models import MediaEntry

    with rig(workers=workers) as site:
        made = site.kiln(site.web[0], "adduser", "bench", "--email", "bench@example.org", "--password", PASSWORD,
                         "--admin", log="adduser.log")
        assert made.wait(120) == 0, (site.web[0].folder / "adduser.log").read_text()
        resp = httpx.post(site.url + "/api/v1/tokens", json={"username": "bench", "password": PASSWORD}, timeout=30)
        resp.raise_for_status()
        headers = {"Authorization": f"Bearer {resp.json()['token']}"}

        def upload(path: Path) -> int:
            with path.open("rb") as fh:
                answer = httpx.post(site.url + "/api/v1/media", headers=headers, files={"file": (path.name, fh)},
                                    timeout=120)
            answer.raise_for_status()
            return int(answer.json()["id"])

        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(upload, paths))
        uploaded = time.perf_counter()
        deadline = time.monotonic() + 900
        with Session(site.db) as session:
            while True:
                done = session.scalar(select(func.count()).select_from(MediaEntry).where(
                    MediaEntry.id.in_(ids), MediaEntry.state.in_(("processed", "failed"))))
                if done == len(ids):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {done} of {len(ids)} items settled in 15 minutes")
                session.rollback()
                time.sleep(0.1)
            finished = time.perf_counter()
            processed = session.scalar(select(func.count()).select_from(MediaEntry).where(
                MediaEntry.id.in_(ids), MediaEntry.state == "processed"))
        # Which host processed how many items: the tasks each worker host's log says it finished.
        by_host = {host.name: (host.folder / "worker.log").read_text(errors="replace").count("succeeded in")
                   for host in site.workers}
        if processed != len(ids):
            raise SystemExit(f"{len(ids) - processed} items failed; see {site.net.folder}")
    return {"s": finished - started, "upload_s": uploaded - started, "steps_by_host": by_host}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hosts.json")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--size", type=int, default=1600, help="long side of the test JPEGs, px")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    from tests.fixtures_images import photo

    with tempfile.TemporaryDirectory(prefix="kiln-bench-hosts-") as tmp:
        paths = []
        for index in range(args.count):
            path = Path(tmp) / f"photo-{index:03}.jpg"
            photo(args.size, args.size * 3 // 4, seed=index).save(path, quality=88)
            paths.append(path)
        samples: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        for _ in range(args.runs):  # interleaved: drift hits both alike
            for workers in (1, 2):
                samples[workers].append(one_run(workers, paths))
                print(f"{workers} worker host(s): {samples[workers][-1]['s']:.1f} s", flush=True)

    cases = {}
    for workers, runs in samples.items():
        seconds = statistics.median(r["s"] for r in runs)
        cases[str(workers)] = {"s_median": round(seconds, 2), "s_runs": [round(r["s"], 2) for r in runs],
                               "upload_s_runs": [round(r["upload_s"], 2) for r in runs],
                               "items_per_s": round(args.count / seconds, 2),
                               "items_per_hour": round(args.count / seconds * 3600),
                               "steps_by_host_last_run": runs[-1]["steps_by_host"]}
    report = {
        "what": (f"{args.count} JPEGs of {args.size}x{args.size * 3 // 4} px uploaded through nginx (4 client threads) "
                 "to the multi-host rig (tests/rig), first upload to last processed; each worker host runs "
                 "`kiln worker --multi-host --processes 2`; every host shares this machine's CPUs"),
        "machine": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()},
        "runs": args.runs,
        "worker_hosts": cases,
        "two_over_one": round(cases["1"]["s_median"] / cases["2"]["s_median"], 2),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v["items_per_s"] for k, v in cases.items()}), "ratio", report["two_over_one"])
    print("->", args.out)


if __name__ == "__main__":
    main()
