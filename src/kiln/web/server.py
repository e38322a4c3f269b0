"""The production web server: gunicorn's arbiter with uvicorn workers, one app per process.

Each worker process builds its own app (and with it its own database engine and caches) after the
fork, so nothing made in the parent is shared; the code is imported before the fork, so a new worker
is ready at once. gunicorn gives the process model: SIGHUP replaces every
worker gracefully, SIGTERM drains requests in flight and stops, a worker that dies is replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

import kiln.app  # noqa: F401  (imported once, before the fork: workers start in a fraction of a second)
from kiln.config import Settings


class KilnServer(BaseApplication):
    def __init__(self, settings: Settings, *, bind: str, workers: int, access_log: bool = False,
                 log_file: Path | None = None, on_reload: Callable[[], None] | None = None) -> None:
        log = str(log_file) if log_file is not None else "-"
        self.settings = settings
        self.options: dict[str, Any] = {
            "bind": [bind],
            "workers": workers,
            "worker_class": "kiln.web.server.KilnWorker",
            # Proxy headers are believed from nginx on this machine; Kiln's own ClientIP and HSTS checks
            # apply security.trusted_proxies on top.
            "forwarded_allow_ips": "127.0.0.1",
            "graceful_timeout": 30,
            # Async workers answer the arbiter's heartbeat while they wait on slow clients, so this only
            # catches a worker stuck in a blocking call.
            "timeout": 120,
            "keepalive": 5,
            "accesslog": log if access_log else None,
            "errorlog": log,
            "loglevel": "info",
            "proc_name": "kiln-web",
            # gunicorn's control socket lives in $HOME by default, shared by every site on the machine;
            # signals do the same job here.
            "control_socket_disable": True,
        }
        if on_reload is not None:
            self.options["on_reload"] = lambda arbiter: on_reload()
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        """Runs in each new web process: settings are read again, so a reload (SIGHUP) applies an
        edited kiln.toml. Code is not reloaded (it was imported before the fork): restart to upgrade."""
        from kiln.app import create_app
        from kiln.config import load_settings

        return create_app(load_settings(data_dir=self.settings.data_dir))


# How long a reload waits for the first request on a connection it has just accepted.
FIRST_REQUEST_GRACE = 1.0


class _PatientHttp(HttpToolsProtocol):
    """uvicorn's HTTP protocol, except in a graceful shutdown (a reload, SIGHUP): uvicorn closes every
    connection with no request in progress, including one accepted a moment before whose request is
    already on its way. That visitor gets "server disconnected" and, unlike one on a reused keep-alive
    connection, has no reason to retry. Such a connection is given FIRST_REQUEST_GRACE seconds to ask;
    its answer then closes it (the old process waits for its connections before it exits)."""

    _heard = False

    def data_received(self, data: bytes) -> None:
        self._heard = True
        super().data_received(data)

    def shutdown(self) -> None:
        if not self._heard and self.cycle is None:
            self._heard = True  # once: then as uvicorn does
            self.loop.call_later(FIRST_REQUEST_GRACE, self.shutdown)
            return
        super().shutdown()


class KilnWorker(UvicornWorker):
    """gunicorn's uvicorn worker with the patient protocol above."""

    CONFIG_KWARGS = {"loop": "auto", "http": _PatientHttp}
