"""`kiln storage migrate` moves a live site's public store from local disk to Swift and back, while
`kiln serve` keeps serving, surviving a SIGKILL half-way, with every checksum equal at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from kiln.config import load_settings
from kiln.storage import open_store
from kiln.storage.operations import checksum
from tests.e2e.conftest import serve
from tests.storage.conftest import backend_config

MEDIA = 12  # 39 objects with their renditions: enough for a kill part-way (after 6)


def kiln(server, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "KILN_DATABASE_URL": server.db_url}
    result = subprocess.run([sys.executable, "-m", "kiln", "--data", str(server.data), *args], env=env,
                            capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_migrate_public_store_to_swift_and_back_while_serving(tmp_path, images):
    swift = backend_config("swift", tmp_path)
    toml = "[storage.backends.swift]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in swift.items())
    with serve(tmp_path / "site", toml, processes=1) as server:
        kiln(server, "adduser", "hana", "--email", "h@example.com", "--password", "correct horse")
        files = [str(images[name]) for name in ("plain", "flat_png", "webp", "gif")] * (MEDIA // 4)
        kiln(server, "addmedia", "hana", *files, "--wait")
        settings = load_settings(data_dir=server.data, database_url=server.db_url)
        local, remote = open_store(settings, "local", "public"), open_store(settings, "swift", "public")
        before = {tuple(k): checksum(local, k) for k in local.iter_keys()}
        assert len(before) == 3 * MEDIA + MEDIA // 4  # medium and the two thumbnails; the GIFs also animate

        dry = kiln(server, "storage", "migrate", "--store", "public", "--to", "swift", "--dry-run")
        assert f"{len(before)} object(s) in the public store on 'local' would be copied" in dry.stdout

        # Interrupt the first run with SIGKILL once it has copied some objects.
        env = {**os.environ, "KILN_DATABASE_URL": server.db_url}
        proc = subprocess.Popen([sys.executable, "-m", "kiln", "--data", str(server.data), "storage", "migrate",
                                 "--store", "public", "--to", "swift"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while len(list(remote.iter_keys())) < 6 and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 0 < len(list(remote.iter_keys())) < len(before)
        page = httpx.get(server.url + "/u/hana")
        assert page.status_code == 200 and "/media/entries/" in page.text  # still served from local disk

        # An upload while the store is mirrored lands on both backends.
        kiln(server, "addmedia", "hana", str(images["camera"]), "--wait")
        resumed = kiln(server, "storage", "migrate", "--store", "public", "--to", "swift")
        assert "The public store is now on 'swift'" in resumed.stdout
        after = {tuple(k): checksum(remote, k) for k in remote.iter_keys()}
        assert len(after) == len(before) + 3  # the new item's medium and two thumbnails
        assert all(after[key] == digest for key, digest in before.items())

        deadline = time.monotonic() + 15  # the server re-reads the assignment within 5 s
        while True:
            page = httpx.get(server.url + "/u/hana").text
            if "/media/entries/" not in page or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "http://127.0.0.1:8080/v1/" in page and "/media/entries/" not in page
        first_thumb = page.split('src="http://127.0.0.1:8080/v1/')[1].split('"')[0]
        assert httpx.get("http://127.0.0.1:8080/v1/" + first_thumb).status_code == 200

        back = kiln(server, "storage", "migrate", "--store", "public", "--to", "local", "--delete-old")
        assert "The public store is now on 'local'" in back.stdout
        assert list(remote.iter_keys()) == []
        final = {tuple(k): checksum(local, k) for k in local.iter_keys()}
        assert final == after
        gc = kiln(server, "storage", "gc", "--dry-run")
        assert "public: 0 unreferenced" in gc.stdout and "missing" not in gc.stdout
