"""What languages cost: the same pages rendered in English (the baseline: every string still goes
through gettext, with no catalogue) and in German, French, Spanish and Arabic.

    python bench/bench_languages.py [--out bench/results/languages.json] [--rounds 40] [--media 1000]

A site of processed images is built with bench_serving's builder (SQLite, embedded defaults). The
app runs in this process (Starlette's TestClient: no sockets, so the figures are the app's own work),
with the anonymous page cache off so every request renders. Pages: the front page, a busy person's
gallery, a media page, a busy tag page and the tag index, logged out; the same plus the processing panel
and the account page, logged in. Each round asks every (language, page) once in a shuffled order;
the median and p90 per (language, page) and each language's ratio to English are written out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

LANGUAGES = ["en", "de", "fr", "es", "ar"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "languages.json")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--media", type=int, default=1000)
    args = parser.parse_args()

    from bench_serving import PASSWORD, build_site
    from fastapi.testclient import TestClient

    from kiln import i18n
    from kiln.app import create_app
    from kiln.config import load_settings
    from kiln.runtime import build_runtime

    missing = [code for code in LANGUAGES[1:] if code not in i18n.available()]
    if missing:
        raise SystemExit(f"no catalogue for {', '.join(missing)}: nothing to compare")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-languages-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        os.environ["KILN_WEB__PAGE_CACHE_ENTRIES"] = "0"
        db_url = f"sqlite:///{tmp}/kiln.db"
        from kiln.db.migrate import upgrade

        upgrade(db_url)
        settings = load_settings(data_dir=data, database_url=db_url)
        rt = build_runtime(settings)
        site = build_site(rt, args.media, 50, 30, Path(tmp))
        base = "http://127.0.0.1:8000"
        anonymous = TestClient(create_app(settings, rt), base_url=base)
        owner = TestClient(create_app(settings, rt), base_url=base)
        page = owner.get("/auth/login").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        login = owner.post("/auth/login", data={"username": site["busy_user"], "password": PASSWORD,
                                                "csrf_token": token})
        assert login.status_code == 200, login.text
        public = {"front": "/", "gallery": f"/u/{site['busy_user']}",
                  "media": f"/u/{site['busy_user']}/m/{site['sample_media_id']}",
                  "tag": f"/tag/{site['busy_tag']}", "tags": "/tags"}
        cases = [("anonymous", anonymous, name, path) for name, path in public.items()]
        cases += [("logged_in", owner, name, path)
                  for name, path in {**public, "panel": "/panel", "account": "/account"}.items()]
        timings: dict[tuple[str, str, str], list[float]] = {}
        for _who, client, _name, path in cases:  # warm: templates compiled, catalogues loaded
            for code in LANGUAGES:
                response = client.get(path, headers={"Accept-Language": code})
                assert response.status_code == 200, (path, response.status_code)
                assert response.headers["content-language"] == code, (path, code)
        rng = random.Random(7)
        for _ in range(args.rounds):
            order = [(case, code) for case in cases for code in LANGUAGES]
            rng.shuffle(order)
            for (who, client, name, path), code in order:
                started = time.perf_counter()
                client.get(path, headers={"Accept-Language": code})
                timings.setdefault((who, name, code), []).append((time.perf_counter() - started) * 1000)
        rt.close()

    rows = []
    for (who, name, code), values in sorted(timings.items()):
        values.sort()
        rows.append({"who": who, "page": name, "language": code, "median_ms": round(statistics.median(values), 2),
                     "p90_ms": round(values[int(len(values) * 0.9) - 1], 2)})
    english = {(r["who"], r["page"]): r["median_ms"] for r in rows if r["language"] == "en"}
    for r in rows:
        r["ratio_to_en"] = round(r["median_ms"] / english[(r["who"], r["page"])], 3)
    by_language = {code: round(statistics.median([r["ratio_to_en"] for r in rows if r["language"] == code]), 3)
                   for code in LANGUAGES}
    report = {
        "what": "pages rendered in-process (TestClient), page cache off, median of rounds; English is the baseline",
        "rounds": args.rounds, "media": args.media,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rows": rows, "median_ratio_to_english": by_language,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for r in rows:
        print(f"{r['who']:<10} {r['page']:<8} {r['language']}  {r['median_ms']:7.2f} ms  p90 {r['p90_ms']:7.2f}"
              f"  x{r['ratio_to_en']}")
    print("median ratio to English:", by_language)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
