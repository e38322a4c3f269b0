"""Absolute links when ``base_url`` is not set: responses link to the address the request came to,
mail and CLI output to the address `kiln serve` listens on; a configured base_url always wins."""

from __future__ import annotations

from pathlib import Path

import feedparser
import pytest
from fastapi.testclient import TestClient

from kiln.app import create_app
from kiln.config import load_settings
from tests.conftest import inline_runtime, mails
from tests.test_api import make_user, token_for


@pytest.fixture
def unset_rt(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("KILN_BASE_URL", raising=False)
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    assert settings.base_url is None
    yield from inline_runtime(settings)


def _upload(client: TestClient, images: dict[str, Path]) -> dict:  # type: ignore[type-arg]
    with images["plain"].open("rb") as fh:
        resp = client.post("/api/v1/media", headers=token_for(client), files={"file": ("a.jpg", fh)})
    assert resp.status_code in (201, 202), resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_api_and_feeds_link_to_the_address_the_request_came_to(unset_rt, images):
    make_user(unset_rt)
    with TestClient(create_app(unset_rt.settings, unset_rt), base_url="http://photos.lan:7801") as client:
        item = _upload(client, images)
        assert item["url"] == f"http://photos.lan:7801/u/alice/m/{item['id']}"
        for rendition in client.get(f"/api/v1/media/{item['id']}").json()["renditions"].values():
            assert rendition["url"].startswith("http://photos.lan:7801/"), rendition
            assert client.get(rendition["url"]).status_code == 200
        feed = feedparser.parse(client.get("/feeds/atom").content)
        assert feed.feed.link == "http://photos.lan:7801/"
        assert [e.link for e in feed.entries] == [item["url"]]
        # Another address gets its own links (and its own cached copy of the page).
        other = client.get("/feeds/atom", headers={"host": "127.0.0.1:9999"})
        assert "http://127.0.0.1:9999/u/alice/m/" in other.text and "photos.lan" not in other.text
        # A Host header that is not a host name falls back to the listening address.
        odd = client.get(f"/api/v1/media/{item['id']}", headers={"host": 'evil"<x>'}).json()
        assert odd["url"].startswith("http://127.0.0.1:6543/")


def test_mail_links_use_the_address_serve_listens_on_not_the_host_header(unset_rt):
    make_user(unset_rt, verified=False)
    unset_rt.settings.serve_url_file.write_text("http://127.0.0.1:7801\n")
    with TestClient(create_app(unset_rt.settings, unset_rt), base_url="http://attacker.example") as client:
        page = client.get("/auth/forgot")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/auth/forgot", data={"email": "alice@example.com", "csrf_token": token})
    (mail,) = [m for m in mails(unset_rt.settings) if "/auth/reset?token=" in m["body"]]
    assert "http://127.0.0.1:7801/auth/reset?token=" in mail["body"]
    assert "attacker.example" not in mail["body"]


def test_a_configured_base_url_wins(tmp_path: Path, db_url: str, images):  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url, base_url="https://media.example.org/")
    settings.serve_url_file.write_text("http://127.0.0.1:7801\n")
    rt = next(inline_runtime(settings))
    make_user(rt)
    with TestClient(create_app(settings, rt), base_url="http://127.0.0.1:7801") as client:
        item = _upload(client, images)
    assert item["url"] == f"https://media.example.org/u/alice/m/{item['id']}"
    assert settings.link_base() == "https://media.example.org"
    rt.close()


def test_cli_output_links_to_the_address_serve_listens_on(kiln, monkeypatch, images):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("KILN_BASE_URL")
    kiln("adduser", "bob", "--email", "bob@example.com", input="pw-long-enough\npw-long-enough\n")
    kiln.data.joinpath("serve-url").write_text("http://127.0.0.1:7801\n")
    out = kiln("addmedia", "bob", str(images["plain"]), "--wait").output
    assert "\thttp://127.0.0.1:7801/u/bob/m/" in out, out
