"""A real HTTP server in a thread that records every connection and request it gets, to
prove a refused call sent it nothing; its handler is a plain function of the request."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    stall_s: float = 0.0  # send the head, then say nothing for this long


Handler = Callable[[Seen], Answer]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    seen: list[Seen]
    answer: Handler

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)


class _Handle(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes: without TCP_NODELAY the body waits
    # for the client's delayed ACK of the head, 40 ms on Linux, on every keep-alive answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
        self.server.seen.append(seen)
        answer = self.server.answer(seen)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.stall_s:
            self.send_header("Content-Length", str(len(answer.body) + 1))
            self.end_headers()
            self.wfile.write(answer.body)
            self.wfile.flush()
            threading.Event().wait(answer.stall_s)
            return
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any


@dataclass
class Listener:
    server: _Server
    host: str

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def seen(self) -> list[Seen]:
        return self.server.seen


@contextmanager
def listener(answer: Handler = lambda _: Answer(), host: str = "127.0.0.1") -> Iterator[Listener]:
    server_class = type("_S", (_Server,), {"address_family": __import__("socket").AF_INET6}) \
        if ":" in host else _Server  # fmt: skip
    server = server_class((host, 0), _Handle)
    server.seen = []
    server.answer = answer
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Listener(server, host)
    finally:
        server.shutdown()
        server.server_close()
