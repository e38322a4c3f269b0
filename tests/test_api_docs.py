"""/api/docs works offline and under the strict policy: Swagger UI's files come from Kiln itself
(fingerprinted, cached a year), and the page has no inline script and no outside host."""

from __future__ import annotations

import re

from kiln.web.apidocs import swagger_dir


def test_docs_page_uses_only_its_own_files_under_the_strict_policy(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert csp == client.get("/").headers["content-security-policy"]  # the same policy as every page
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "unsafe-inline" not in csp
    html = page.text
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []  # no inline script
    assert not re.search(r"\son[a-z]+\s*=|\sstyle\s*=", html)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert not [u for u in urls if "//" in u], urls  # nothing from another host
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert [s.split("?")[0] for s in scripts] == ["/api/docs/assets/swagger-ui-bundle.js", "/static/apidocs.js"]
    assert 'data-openapi-url="/api/openapi.json"' in html


def test_swagger_files_are_served_fingerprinted_with_long_caching(client):
    html = client.get("/api/docs").text
    for name, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css")):
        url = re.search(rf'"(/api/docs/assets/{re.escape(name)}\?v=[0-9a-f]{{10}})"', html).group(1)
        resp = client.get(url)
        assert resp.status_code == 200 and kind in resp.headers["content-type"]
        assert resp.content == (swagger_dir() / name).read_bytes()
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/docs/oauth2-redirect").status_code == 404  # no OAuth: bearer tokens only
