"""A real HTTP server speaking OpenAI's POST /v1/embeddings, for the HTTP embedder's tests.

Its vectors are bags of hashed words (texts sharing words point the same way), so a search
through it still ranks sensibly; a text given its own vector in `vectors` gets that one.
It records each request and can be told to fail, or to hold each request until its gate
opens (`close_gate`, then `arrived` says one is held)."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GATE_WAIT_S = 60.0  # a held request answers after this even if its gate stays closed


def bag_vector(text: str, dimension: int) -> list[float]:
    vector = [0.0] * dimension
    for word in text.lower().split():
        slot = int(hashlib.sha1(word.encode()).hexdigest(), 16) % dimension
        vector[slot] += 1.0
    return vector


class FakeEmbeddings:
    def __init__(self, dimension: int = 64, keep_alive: bool = False) -> None:
        self.dimension = dimension
        self.vectors: dict[str, list[float]] = {}  # a text's own vector, where one is given
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.gate = threading.Event()  # requests wait for it; open unless close_gate()
        self.gate.set()
        self.arrived = threading.Event()  # set by every request, before it waits
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            # Headers and body leave in two writes: with Nagle's algorithm on, a kept-alive
            # connection's body waits for the client's delayed ACK (40 ms on Linux).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                )
                outer.arrived.set()
                outer.gate.wait(GATE_WAIT_S)
                if outer.fail_with is not None:
                    self._send(outer.fail_with, {"error": {"message": "upstream says no"}})
                    return
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                data = [
                    {"object": "embedding", "index": i, "embedding": outer.vector(t)}
                    for i, t in reversed(list(enumerate(texts)))  # out of order, as some servers
                ]
                self._send(200, {"object": "list", "data": data, "model": body["model"]})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def vector(self, text: str) -> list[float]:
        return self.vectors.get(text) or bag_vector(text, self.dimension)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close_gate(self) -> None:
        self.arrived.clear()
        self.gate.clear()

    def start(self) -> FakeEmbeddings:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()
