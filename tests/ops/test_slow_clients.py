"""Slow clients hold only so much: a request's head and body must arrive in time, a client
that reads nothing of its stream is disconnected, a reader far behind gets its stream in
bounded chunks, and one whose run's events were dropped is told so.

Raw sockets, because the point is what the client does not send or read.
"""

from __future__ import annotations

import json
import random
import socket
import string
import threading
import time
from collections.abc import Iterator

import dashscope
import pytest
from dashscope import Assistants, Runs, Threads

from tests.runs.conftest import dedicated_server, sdk_on, workspace_key
from tests.runs.helpers import ok, wait_for
from tests.support.fake_model import FakeModel, Reply
from tests.support.server import RunningServer

BOUND_S = 30  # what a test waits for the server to act (it acts within about 2 s)


@pytest.fixture(scope="module")
def strict_server(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    """Heads, bodies and stalled readers all get one or two seconds."""
    env = {
        "ASSISTD_OPENAI_BASE_URL": fake_model.base_url,
        "ASSISTD_REQUEST_HEADER_TIMEOUT_S": "1",
        "ASSISTD_REQUEST_BODY_TIMEOUT_S": "1",
        "ASSISTD_CLIENT_STALL_TIMEOUT_S": "2",
    }
    workdir = tmp_path_factory.mktemp("strict")
    with dedicated_server("sqlite", workdir, **env) as server:
        yield server


@pytest.fixture(scope="module")
def small_bus_server(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    """Finished runs' event logs may hold 480 KiB together (a finished log is one
    compressed block: a few bytes a delta of a repeated word, beside the message)."""
    workdir = tmp_path_factory.mktemp("small-bus")
    env = {
        "ASSISTD_OPENAI_BASE_URL": fake_model.base_url,
        "ASSISTD_EVENT_LOG_MAX_BYTES": str(480 * 1024),
    }
    with dedicated_server("sqlite", workdir, **env) as server:
        yield server


def _connect(server: RunningServer) -> socket.socket:
    port = int(server.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND_S)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    return sock


def _head(path: str, key: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: assistd\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _read_to_end(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the server sends until it closes; and whether it reset the connection."""
    received = bytearray()
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return bytes(received), True
        if not data:
            return bytes(received), False
        received += data


def test_a_body_that_trickles_in_gets_408_and_the_connection_closed(
    strict_server: RunningServer,
) -> None:
    _, key = workspace_key(strict_server)
    with _connect(strict_server) as sock:
        sock.sendall(_head("/api/v1/threads", key, 1000) + b'{"metadata"')
        stop = threading.Event()

        def trickle() -> None:  # a byte every half second: the clock is not reset by it
            while not stop.wait(0.5):
                try:
                    sock.sendall(b" ")
                except OSError:
                    return

        threading.Thread(target=trickle, daemon=True).start()
        try:
            answer, _ = _read_to_end(sock)
        finally:
            stop.set()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b"connection: close" in head.lower()
    error = json.loads(body)
    assert error["code"] == "RequestTimeOut"
    assert "did not arrive within 1 seconds" in error["message"]


def test_a_request_head_that_never_ends_is_dropped(strict_server: RunningServer) -> None:
    with _connect(strict_server) as sock:
        sock.sendall(b"POST /api/v1/threads HTTP/1.1\r\nHost: assistd\r\nContent-Le")
        answer, _ = _read_to_end(sock)  # a timeout here fails the test
    assert answer == b""


def _stream_run(
    server: RunningServer, fake_model: FakeModel, words: int, *, varied: bool = False
) -> tuple[socket.socket, str, str]:
    """Starts a streamed run of a `words`-long reply and reads nothing of it yet; returns
    the socket, the thread and the run. A `varied` reply's words are random letters:
    compression barely shrinks its finished log (memory_log.SealedLog)."""
    rng = random.Random(words)
    said = [
        "".join(rng.choices(string.ascii_lowercase, k=10)) if varied else "lorem"
        for _ in range(words)
    ]
    model = fake_model.new_model(Reply(" ".join(said)))
    assistant_id = str(ok(Assistants.create(model=model)).id)
    thread_id = str(ok(Threads.create(messages=[{"role": "user", "content": "talk"}])).id)
    body = json.dumps({"assistant_id": assistant_id, "stream": True}).encode()
    sock = _connect(server)
    path = f"/api/v1/threads/{thread_id}/runs"
    sock.sendall(_head(path, str(dashscope.api_key), len(body)) + body)
    deadline = time.monotonic() + BOUND_S
    while not (found := ok(Runs.list(thread_id)).data):
        assert time.monotonic() < deadline, "the run was not created"
        time.sleep(0.05)
    return sock, thread_id, str(found[0].id)


def _chunks(raw: bytes) -> list[bytes]:
    """The HTTP/1.1 chunks of a chunked response body."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower(), head
    chunks = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return chunks
        chunks.append(rest[:size])
        rest = rest[size + 2 :]


def test_a_client_that_reads_nothing_is_disconnected(
    strict_server: RunningServer, fake_model: FakeModel
) -> None:
    with sdk_on(strict_server):
        sock, thread_id, run_id = _stream_run(strict_server, fake_model, 20_000)
        with sock:
            wait_for(thread_id, run_id, "completed", timeout_s=120)  # the run goes on
            time.sleep(3)  # past the stall timeout
            received, _ = _read_to_end(sock)
    assert b"event:done" not in received
    assert len(received) < 2_000_000  # of about 6.6 MB the stream would have carried


def test_a_reader_far_behind_gets_its_stream_in_bounded_chunks(
    small_bus_server: RunningServer, fake_model: FakeModel
) -> None:
    with sdk_on(small_bus_server):
        sock, thread_id, run_id = _stream_run(small_bus_server, fake_model, 20_000)
        with sock:
            wait_for(thread_id, run_id, "completed", timeout_s=120)
            received, reset = _read_to_end(sock)
    assert not reset
    chunks = _chunks(received)
    assert chunks[-1].endswith(b"event:done\ndata:[DONE]\n\n")
    assert b"event:thread.run.completed" in chunks[-1]
    # A chunk stops growing at its cap: what comes before its last frame is small (that
    # frame may be large, e.g. the whole message once completed).
    for chunk in chunks:
        before_last = chunk[: chunk.rstrip(b"\n").rfind(b"\n\nevent:") + 2]
        assert len(before_last) <= 64 * 1024, len(before_last)


def test_a_reader_whose_runs_events_were_dropped_is_told_so(
    small_bus_server: RunningServer, fake_model: FakeModel
) -> None:
    with sdk_on(small_bus_server):
        # About 700 KB sealed, its text twice (the deltas, the completed message):
        # over the budget, dropped as the run ends.
        sock, thread_id, run_id = _stream_run(small_bus_server, fake_model, 40_000, varied=True)
        with sock:
            wait_for(thread_id, run_id, "completed", timeout_s=120)
            received, reset = _read_to_end(sock)
    assert not reset
    tail = _chunks(received)[-1].decode()
    assert "event:thread.run.completed" not in tail
    frame = tail.split("event:error\ndata:", 1)[1].split("\n", 1)[0]
    assert json.loads(frame)["code"] == "StreamFellBehind"
    assert tail.endswith("event:done\ndata:[DONE]\n\n")
