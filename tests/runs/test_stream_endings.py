"""Every stream ends when its run does, whatever ends it, and when the server stops.

A server with one worker keeps a run queued: the worker is held by a run whose model
says nothing for minutes. Deleting a thread ends its run's stream, queued or in
progress; a run that vanishes without any event is noticed at the next heartbeat; and
SIGTERM ends open streams with an `error` frame and exits within its deadline, also
when a client reads nothing.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dashscope
import pytest
from dashscope import Assistants, Runs, Threads

from tests.runs.conftest import StartServer, dedicated_server, sdk_on
from tests.runs.helpers import Event, names, ok, wait_for
from tests.support.fake_model import FakeModel, Hang, Reply
from tests.support.server import RunningServer

HELD_S = 300  # the holding run's model says nothing for this long
BOUND_S = 30  # a stream that should end must end within this (it ends in well under 1 s)


class Collector:
    """Iterates an SDK event stream on a thread of its own, so a test can act meanwhile."""

    def __init__(self, stream: Iterator[Event]) -> None:
        self.events: list[Event] = []
        self.error: BaseException | None = None
        self.started = threading.Event()
        self.ended = threading.Event()
        threading.Thread(target=self._run, args=(stream,), daemon=True).start()

    def _run(self, stream: Iterator[Event]) -> None:
        try:
            for event in stream:
                self.events.append(event)
                self.started.set()
        except BaseException as exc:  # reported by the test, not lost on this thread
            self.error = exc
        finally:
            self.started.set()
            self.ended.set()

    def wait_started(self) -> None:
        assert self.started.wait(BOUND_S), "the stream sent nothing"

    def wait_ended(self) -> list[Event]:
        assert self.ended.wait(BOUND_S), f"the stream is still open after {names(self.events)}"
        assert self.error is None, repr(self.error)
        return self.events


def _assistant(model: str) -> str:
    return str(ok(Assistants.create(model=model, instructions="Be brief.")).id)


def _thread() -> str:
    return str(ok(Threads.create(messages=[{"role": "user", "content": "hello"}])).id)


def _hold_the_worker(fake_model: FakeModel) -> tuple[str, Collector]:
    """A run that occupies the one worker; returns its thread and its stream."""
    assistant_id = _assistant(fake_model.new_model(Hang(HELD_S)))
    thread_id = _thread()
    held = Collector(Runs.create(thread_id, assistant_id=assistant_id, stream=True))
    held.wait_started()
    wait_for(thread_id, held.events[0][1].id, "in_progress")
    return thread_id, held


def _queued_stream(fake_model: FakeModel) -> tuple[str, Collector]:
    assistant_id = _assistant(fake_model.new_model(Reply("never said")))
    thread_id = _thread()
    queued = Collector(Runs.create(thread_id, assistant_id=assistant_id, stream=True))
    queued.wait_started()
    run_id = queued.events[0][1].id
    assert ok(Runs.retrieve(run_id, thread_id=thread_id)).status == "queued"
    return thread_id, queued


def _ended_cancelled(collector: Collector) -> None:
    events = collector.wait_ended()
    assert names(events)[-1] == "thread.run.cancelled", names(events)
    first, final = events[0][1], events[-1][1]
    assert (final.id, final.status) == (first.id, "cancelled")


def test_deleting_the_thread_ends_the_stream_of_a_queued_and_a_running_run(
    start_server: StartServer, fake_model: FakeModel
) -> None:
    # Heartbeats are rarer than the bound: the deletion itself must end the streams.
    server = start_server(
        ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
        ASSISTD_RUN_WORKERS="1",
        ASSISTD_SSE_HEARTBEAT_S="120",
    )
    with sdk_on(server):
        held_thread, held = _hold_the_worker(fake_model)
        queued_thread, queued = _queued_stream(fake_model)

        ok(Threads.delete(queued_thread))
        _ended_cancelled(queued)
        assert not held.ended.is_set()

        ok(Threads.delete(held_thread))
        _ended_cancelled(held)

        # The worker is free again: the next run is served.
        assistant_id = _assistant(fake_model.new_model(Reply("served")))
        events = list(Runs.create(_thread(), assistant_id=assistant_id, stream=True))
        assert names(events)[-1] == "thread.run.completed"


def test_a_run_that_vanished_without_an_event_ends_its_stream_at_a_heartbeat(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    """The run's rows are deleted behind the server's back, so no final event is ever
    published: the stream's own check on a quiet heartbeat ends it."""
    env = {"ASSISTD_RUN_WORKERS": "1", "ASSISTD_SSE_HEARTBEAT_S": "0.5"}
    with (
        dedicated_server(
            "sqlite", tmp_path, ASSISTD_OPENAI_BASE_URL=fake_model.base_url, **env
        ) as server,
        sdk_on(server),
    ):
        held_thread, held = _hold_the_worker(fake_model)
        _, queued = _queued_stream(fake_model)
        run_id = queued.events[0][1].id
        with sqlite3.connect(server.data_dir / "assistd.db") as db:
            assert db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 1
        _ended_cancelled(queued)
        ok(Threads.delete(held_thread))
        _ended_cancelled(held)


@contextmanager
def _stopping(server: RunningServer) -> Iterator[None]:
    """Sends SIGTERM at the end of the block and checks the server exits in time."""
    yield
    assert server.process is not None
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=BOUND_S)
    except Exception:
        pytest.fail(f"the server did not exit within {BOUND_S} s of SIGTERM")
    assert time.monotonic() - sent < BOUND_S


def test_sigterm_ends_open_streams_with_an_error_frame_and_exits(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    env = {"ASSISTD_RUN_WORKERS": "1", "ASSISTD_SHUTDOWN_TIMEOUT_S": "3"}
    with (
        dedicated_server(
            "sqlite", tmp_path, ASSISTD_OPENAI_BASE_URL=fake_model.base_url, **env
        ) as server,
        sdk_on(server),
    ):
        with _stopping(server):
            _, held = _hold_the_worker(fake_model)
            _, queued = _queued_stream(fake_model)
        for stream in (held, queued):
            events = stream.wait_ended()
            name, error = events[-1]
            assert name == "error", names(events)
            assert error.code == "ServerShuttingDown", vars(error)
            assert "shutting down" in error.message


def test_sigterm_exits_within_the_deadline_while_a_client_reads_nothing(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    """A stream blocked on a client that reads nothing cannot be told anything: it is cut
    off at the shutdown deadline."""
    env = {"ASSISTD_SHUTDOWN_TIMEOUT_S": "2"}
    with (
        dedicated_server(
            "sqlite", tmp_path, ASSISTD_OPENAI_BASE_URL=fake_model.base_url, **env
        ) as server,
        sdk_on(server),
        _unread_stream(server, fake_model, words=20_000) as (thread_id, run_id),
        _stopping(server),
    ):
        wait_for(thread_id, run_id, "completed", timeout_s=120)


@contextmanager
def _unread_stream(
    server: RunningServer, fake_model: FakeModel, words: int
) -> Iterator[tuple[str, str]]:
    """Starts a streamed run over a socket that is never read; yields (thread, run)."""
    assistant_id = _assistant(fake_model.new_model(Reply(" ".join(["lorem"] * words))))
    thread_id = _thread()
    body = f'{{"assistant_id": "{assistant_id}", "stream": true}}'.encode()
    head = (
        f"POST /api/v1/threads/{thread_id}/runs HTTP/1.1\r\nHost: assistd\r\n"
        f"Authorization: Bearer {dashscope.api_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(head.encode() + body)
        run_id = _latest_run(thread_id)
        yield thread_id, run_id


def _latest_run(thread_id: str) -> str:
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        found: Any = ok(Runs.list(thread_id))
        if found.data:
            return str(found.data[0].id)
        time.sleep(0.05)
    raise AssertionError("the run was not created")
