"""A small remote ActivityPub server for the tests: one actor with its own RSA key (made with
``cryptography``), served over real HTTP on 127.0.0.1, that signs what it sends with ``apsig`` (an
implementation of HTTP Signatures nobody here wrote) and keeps what arrives at its inbox.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from apsig.draft.sign import Signer
from apsig.draft.verify import Verifier
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Peer:
    base: str
    key: rsa.RSAPrivateKey
    inbox: list[Received] = field(default_factory=list)
    fetches: list[str] = field(default_factory=list)
    reads: list[Received] = field(default_factory=list)  # every GET, with its headers
    signed_reads_only: bool = False  # answer an unsigned GET 401, as servers with authorized fetch do
    username: str = "rita"
    status: int = 202  # what its inbox answers (a server that is down, or refuses)
    # Other documents served by path: (status, headers, body) — a forger's, a redirect, a wrong type.
    pages: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    answer_bytes: int = 0  # how long an answer its inbox sends (a server that answers a flood)
    answer_sent: int = 0  # how much of it got out before Kiln hung up

    def page(self, path: str, document: Any, status: int = 200, content_type: str = "application/activity+json",
             **headers: str) -> str:
        """Serve ``document`` (JSON) at ``path``; returns its address."""
        self.pages[path] = (status, {"Content-Type": content_type, **headers}, json.dumps(document).encode())
        return f"{self.base}{path}"

    @property
    def actor_id(self) -> str:
        return f"{self.base}/actor"

    @property
    def key_id(self) -> str:
        return f"{self.actor_id}#main-key"

    def actor(self) -> dict[str, Any]:
        pem = self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return {"@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
                "id": self.actor_id, "type": "Person", "preferredUsername": self.username, "name": "Rita Remote",
                "inbox": f"{self.base}/inbox", "outbox": f"{self.base}/outbox",
                "endpoints": {"sharedInbox": f"{self.base}/shared"}, "url": f"{self.base}/@{self.username}",
                "publicKey": {"id": self.key_id, "owner": self.actor_id, "publicKeyPem": pem}}

    def rotate_key(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def signed(self, url: str, activity: dict[str, Any], key: rsa.RSAPrivateKey | None = None,
               **extra: str) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a POST of ``activity`` to ``url``, signed by apsig."""
        body = json.dumps(activity).encode()
        headers = Signer(headers={"Content-Type": "application/activity+json", **extra},
                         private_key=key or self.key, method="POST", url=url, key_id=self.key_id,
                         body=body).sign()
        headers.pop("Authorization", None)
        return body, headers


def verify_with_apsig(received: Received, public_pem: str) -> str | None:
    """The keyId of a valid signature on a request the peer received (apsig's verdict), or None."""
    return Verifier(public_pem=public_pem, method=received.method, url=received.path, headers=received.headers,
                    body=received.body).verify()


@contextmanager
def serve(key: rsa.RSAPrivateKey | None = None) -> Iterator[Peer]:
    peer_ref: dict[str, Peer] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, document: dict[str, Any] | None = None) -> None:
            body = json.dumps(document).encode() if document is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/activity+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            peer = peer_ref["peer"]
            peer.fetches.append(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            peer.reads.append(Received("GET", self.path, headers, b""))
            if peer.signed_reads_only and "signature" not in headers:
                self._answer(401, {"error": "Request not signed"})
            elif self.path in peer.pages:
                status, headers, body = peer.pages[self.path]
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            elif self.path == "/actor":
                self._answer(200, peer.actor())
            elif self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "file:///etc/passwd")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            peer = peer_ref["peer"]
            peer.inbox.append(Received("POST", self.path, headers, body))
            if not peer.answer_bytes:
                self._answer(peer.status)
                return
            self.send_response(peer.status)
            self.send_header("Content-Length", str(peer.answer_bytes))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while peer.answer_sent < peer.answer_bytes:
                    self.wfile.write(chunk)
                    peer.answer_sent += len(chunk)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    peer = Peer(f"http://127.0.0.1:{server.server_address[1]}",
                key or rsa.generate_private_key(public_exponent=65537, key_size=2048))
    peer_ref["peer"] = peer
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
