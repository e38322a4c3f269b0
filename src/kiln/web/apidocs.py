"""The interactive API docs at /api/docs: Swagger UI, served by Kiln itself.

Swagger UI's script and stylesheet come from the fastapi-offline package (they are never fetched
from another host, so the page works on a machine without Internet access) and are served at
/api/docs/assets/NAME?v=FINGERPRINT, cached like the other static files. The page has no inline
script: static/apidocs.js starts the UI, so it runs under the same strict Content-Security-Policy as
every other page. /api/docs/assets is outside /static on purpose: a front web server that serves
/static from Kiln's own static folder (contrib/nginx) passes /api/ to Kiln.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from kiln.web.templating import FingerprintedStatic, render

ASSETS = "/api/docs/assets"
FILES = ("swagger-ui-bundle.js", "swagger-ui.css")

router = APIRouter(include_in_schema=False)


def swagger_dir() -> Path:
    """Where fastapi-offline keeps Swagger UI (found without importing the package)."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The fastapi-offline package (Swagger UI for /api/docs) is not installed.")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@cache
def asset_urls() -> dict[str, str]:
    """``name -> URL`` with a fingerprint of the file's bytes, read once per process."""
    folder = swagger_dir()
    return {name: f"{ASSETS}/{name}?v={hashlib.sha256((folder / name).read_bytes()).hexdigest()[:10]}"
            for name in FILES}


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    urls = asset_urls()
    return render(request, "api_docs.html", openapi_url=request.app.openapi_url,
                  swagger_js=urls["swagger-ui-bundle.js"], swagger_css=urls["swagger-ui.css"])


def install(app: FastAPI) -> None:
    """The docs page and Swagger UI's files."""
    app.include_router(router)
    app.mount(ASSETS, FingerprintedStatic(directory=swagger_dir()), name="apidocs")
