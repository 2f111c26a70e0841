"""A scripted model: a real HTTP server speaking OpenAI chat completions.

The only stand-in the tests use. Each model name has its own queue of scripted turns, so
a test that uses a fresh model name (see `FakeModel.new_model`) controls exactly what the
model answers, and can read back every request the server sent it. With no script left,
the model answers "echo: <the last user message>".

A model name may instead have a responder (`FakeModel.respond`): a function of the request
that picks the turn, so a request sent again (a run taken over after its worker died)
gets the same answer as the first time.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    text: str
    tokens_per_s: float | None = None  # pace the deltas; None = as fast as possible
    first_delay_s: float = 0.0
    finish: str = "stop"  # the finish_reason; "length" as if a token cap cut it off


@dataclass
class ToolCalls:
    calls: list[tuple[str, dict[str, Any]]]  # (function name, arguments)
    text: str = ""  # optional text before the calls
    ids: tuple[str, ...] = ()  # the calls' ids; random ones when left out
    finish: str = "tool_calls"  # the finish_reason; "length" as if a token cap cut them off


@dataclass
class Fail:
    status: int = 500
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Retry-After


@dataclass
class Hang:
    seconds: float  # say nothing for this long, then answer "late"


@dataclass
class Gate:
    """Say nothing until the test calls `open()` (or `timeout_s` passes), then answer
    `text`: holds a run in progress for exactly as long as a test needs."""

    text: str
    timeout_s: float = 120.0
    opened: threading.Event = field(default_factory=threading.Event)

    def open(self) -> None:
        self.opened.set()


Turn = Reply | ToolCalls | Fail | Hang | Gate
Responder = Callable[[dict[str, Any]], Turn]  # the request's JSON body -> the answer


@dataclass
class _State:
    scripts: dict[str, deque[Turn]] = field(default_factory=lambda: defaultdict(deque))
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    responders: dict[str, Responder] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found"}})
            return
        model = str(body.get("model"))
        state = self.server.state
        with state.lock:
            state.requests[model].append(body)
            state.arrivals[model].append(time.monotonic())
            responder = state.responders.get(model)
            script = state.scripts[model]
            if responder is not None:
                turn = responder(body)
            else:
                turn = script.popleft() if script else Reply(f"echo: {_last_user_text(body)}")
        self._answer(model, body, turn)

    def _answer(self, model: str, body: dict[str, Any], turn: Turn) -> None:
        if isinstance(turn, Fail):
            error = {"error": {"message": turn.message, "type": "server_error"}}
            self._json(turn.status, error, turn.headers)
            return
        if isinstance(turn, Hang):
            time.sleep(turn.seconds)
            turn = Reply("late")
        if isinstance(turn, Gate):
            turn.opened.wait(turn.timeout_s)
            turn = Reply(turn.text)
        chunks = self._chunks(turn)
        if body.get("stream"):
            self._stream(model, chunks, turn)
        else:
            self._whole(model, chunks)

    def _chunks(self, turn: Reply | ToolCalls) -> list[dict[str, Any]]:
        if isinstance(turn, Reply):
            return [{"content": word} for word in _words(turn.text)]
        deltas: list[dict[str, Any]] = (
            [{"content": word} for word in _words(turn.text)] if turn.text else []
        )
        for index, (name, arguments) in enumerate(turn.calls):
            text = json.dumps(arguments)
            half = len(text) // 2
            call_id = turn.ids[index] if index < len(turn.ids) else f"call_{secrets.token_hex(6)}"
            first = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": text[:half]},
            }
            deltas.append({"tool_calls": [first]})
            deltas.append(
                {"tool_calls": [{"index": index, "function": {"arguments": text[half:]}}]}
            )
        return deltas

    def _stream(self, model: str, deltas: list[dict[str, Any]], turn: Reply | ToolCalls) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        pace = 1.0 / turn.tokens_per_s if isinstance(turn, Reply) and turn.tokens_per_s else 0.0
        if isinstance(turn, Reply) and turn.first_delay_s:
            time.sleep(turn.first_delay_s)
        finish = turn.finish
        try:
            self._event(model, {"role": "assistant", "content": ""}, None)
            for delta in deltas:
                if pace:
                    time.sleep(pace)
                self._event(model, delta, None)
            self._event(model, {}, finish)
            usage = {
                "prompt_tokens": 10,
                "completion_tokens": len(deltas),
                "total_tokens": 10 + len(deltas),
            }
            self._send_line(
                {
                    "id": "chatcmpl-x",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            return

    def _event(self, model: str, delta: dict[str, Any], finish: str | None) -> None:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        self._send_line(
            {
                "id": "chatcmpl-x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [choice],
            }
        )

    def _send_line(self, data: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
        self.wfile.flush()

    def _whole(self, model: str, deltas: list[dict[str, Any]]) -> None:
        text = "".join(d.get("content", "") for d in deltas)
        calls = [c for d in deltas for c in d.get("tool_calls", []) if "id" in c]
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
        choice = {
            "index": 0,
            "message": message,
            "finish_reason": "tool_calls" if calls else "stop",
        }
        usage = {
            "prompt_tokens": 10,
            "completion_tokens": len(deltas),
            "total_tokens": 10 + len(deltas),
        }
        self._json(
            200,
            {
                "id": "chatcmpl-x",
                "object": "chat.completion",
                "model": model,
                "choices": [choice],
                "usage": usage,
            },
        )

    def _json(
        self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many runs (several server processes) connect at once
    state: _State


class FakeModel:
    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeModel:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def new_model(self, *turns: Turn) -> str:
        """A fresh model name whose answers are `turns`, in order."""
        name = f"fake-{secrets.token_hex(4)}"
        self.script(name, *turns)
        return name

    def script(self, model: str, *turns: Turn) -> None:
        with self._server.state.lock:
            self._server.state.scripts[model].extend(turns)

    def respond(self, model: str, responder: Responder) -> None:
        """Answers every request for `model` with `responder(request body)`."""
        with self._server.state.lock:
            self._server.state.responders[model] = responder

    def requests(self, model: str) -> list[dict[str, Any]]:
        with self._server.state.lock:
            return list(self._server.state.requests[model])

    def arrivals(self, model: str) -> list[float]:
        """When each request for `model` arrived (time.monotonic, this process's clock)."""
        with self._server.state.lock:
            return list(self._server.state.arrivals[model])

    def wait_asked(self, model: str, count: int = 1, timeout_s: float = 30) -> None:
        """Waits until `model` has received `count` requests (bounded): a run can be in
        progress before its worker has sent the model anything."""
        deadline = time.monotonic() + timeout_s
        while len(self.requests(model)) < count:
            asked = len(self.requests(model))
            assert time.monotonic() < deadline, f"{model} was asked {asked} times, not {count}"
            time.sleep(0.02)
