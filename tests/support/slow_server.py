"""A slow HTTP provider: `GET /slow?seconds=S&id=X` answers after S seconds with JSON
`{"id", "started", "ended"}` (monotonic seconds of this process); with `hold=1` instead of
`seconds` it answers once the test calls `release()`. It records how many
requests were in flight at once, and which ones the client gave up on (closed the
connection before the answer), so tests can see calls overlap and calls abandoned
without measuring speed."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class SlowLog:
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    most_in_flight: int = 0
    started: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)

    def enter(self, request_id: str) -> None:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.started.append(request_id)

    def leave(self, request_id: str, answered: bool) -> None:
        with self.lock:
            self.in_flight -= 1
            (self.answered if answered else self.abandoned).append(request_id)


def _client_gone(connection: socket.socket) -> bool:
    readable, _, _ = select.select([connection], [], [], 0)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        seconds = float(query.get("seconds", ["1"])[0])
        held = "hold" in query
        request_id = query.get("id", ["?"])[0]
        log = self.server.log
        log.enter(request_id)
        started = time.monotonic()
        while not self.server.released.is_set() if held else time.monotonic() - started < seconds:
            if _client_gone(self.connection):
                log.leave(request_id, answered=False)
                return
            time.sleep(0.02)
        body = json.dumps({"id": request_id, "started": started, "ended": time.monotonic()})
        log.leave(request_id, answered=True)
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    log: SlowLog
    released: threading.Event


@dataclass
class SlowServer:
    base_url: str
    log: SlowLog
    released: threading.Event

    def url(self, request_id: str, seconds: float) -> str:
        return f"{self.base_url}/slow?seconds={seconds:g}&id={request_id}"

    def held_url(self, request_id: str) -> str:
        """A request that is answered only once `release` is called."""
        return f"{self.base_url}/slow?hold=1&id={request_id}"

    def release(self) -> None:
        self.released.set()

    def wait_started(self, count: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.log.started) < count:
            assert time.monotonic() < deadline, f"started: {self.log.started}"
            time.sleep(0.02)

    def wait_abandoned(self, count: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.log.abandoned) < count:
            assert time.monotonic() < deadline, f"abandoned: {self.log.abandoned}"
            time.sleep(0.02)


@contextmanager
def slow_server() -> Iterator[SlowServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.log = SlowLog()
    server.released = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SlowServer(
            f"http://127.0.0.1:{server.server_address[1]}", server.log, server.released
        )
    finally:
        server.shutdown()
        server.server_close()
