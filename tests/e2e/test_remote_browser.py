"""A Kiln whose stores are all on Swift, and one all on S3 (Swift's S3 API): a photo uploaded in the
browser is processed and its page's images load from the object store."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import IMAGE_LOADED, serve
from tests.storage.conftest import backend_config

pytestmark = pytest.mark.browser


def toml_for(backend: dict) -> str:
    lines = ["[storage]", 'queue = "remote"', 'originals = "remote"', 'public = "remote"', "",
             "[storage.backends.remote]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in backend.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", ["swift", "s3"])
def test_photo_page_images_load_from_object_storage(kind, tmp_path, images, browser):
    from playwright.sync_api import expect

    backend = backend_config(kind, tmp_path)
    with serve(tmp_path / "site", toml_for(backend), processes=1) as server:
        page = browser.new_context(base_url=server.url).new_page()
        page.goto("/auth/register")
        page.fill("input[name=username]", "gus")
        page.fill("input[name=email]", "gus@example.com")
        page.fill("input[name=password]", "correct horse battery")
        page.get_by_role("button", name="Create account").click()
        page.goto(server.mail_link("/auth/verify", "gus@example.com"))
        page.goto("/upload")
        page.set_input_files("input[name=file]", [str(images["camera"])])
        page.get_by_role("button", name="Upload").click()
        page.locator("#progress li").get_by_role("link", name=re.compile("Published")).click(timeout=60_000)
        medium = page.locator("article.media figure img")
        expect(medium).to_be_visible()
        src = medium.get_attribute("src")
        assert src.startswith("http://127.0.0.1:8080/"), src
        assert medium.evaluate("img => img.complete && img.naturalHeight") == 1280
        page.goto("/u/gus")
        thumb = page.locator("ul.grid img.picture").first
        expect(thumb).to_be_visible()
        assert thumb.evaluate(IMAGE_LOADED)
        page.context.close()
