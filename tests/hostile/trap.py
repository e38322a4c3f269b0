"""A trap server on 127.0.0.1: it answers nothing useful and records every connection made to it.

Hostile files point their external references (HLS segments, SVG images, glTF buffers, ...) at it;
any recorded connection means a decoder fetched a URL it was handed by an upload.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Trap:
    host: str = "127.0.0.1"
    hits: list[tuple[str, bytes]] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def url(self, path: str = "x") -> str:
        return f"http://{self.host}:{self.port}/{path}"

    def start(self) -> Trap:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self._sock.listen(16)
        self._thread = threading.Thread(target=self._serve, name="hostile-trap", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, peer = self._sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(1.0)
                try:
                    first = conn.recv(512)
                except OSError:
                    first = b""
                self.hits.append((f"{peer[0]}:{peer[1]}", first))
                with contextlib.suppress(OSError):  # a plausible answer, so a client would keep going
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: 0\r\n\r\n")

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def probe(trap: Trap) -> None:
    """Connect once ourselves (the test proves the trap would notice a fetch)."""
    with socket.create_connection((trap.host, trap.port), timeout=5) as conn:
        conn.sendall(b"GET /self-test HTTP/1.0\r\n\r\n")
        conn.recv(64)
