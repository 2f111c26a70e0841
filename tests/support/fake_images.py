"""Fake image providers: real HTTP servers speaking each protocol text_to_image uses.

- `wanx`: DashScope's async task API. Submitting needs `X-DashScope-Async: enable` and
  answers PENDING; each poll moves the task on (PENDING -> RUNNING -> SUCCEEDED, or
  FAILED with a code and message); a PENDING task can be cancelled. The results are
  URLs (signed-looking, as OSS gives them) that this server also serves.
- `openai`: POST /v1/images/generations answering `b64_json` or `url` items; unknown
  request fields are refused, as OpenAI does.
- `a1111`: AUTOMATIC1111's POST /sdapi/v1/txt2img answering base64 PNGs, behind HTTP
  Basic auth (`--api-auth user:password`) when a key is given.

Every request is recorded; a wrong key gets the provider's own 401 answer.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from PIL import Image, ImageDraw

ImageProtocol = Literal["wanx", "openai", "a1111"]
WANX_SUBMIT = "/api/v1/services/aigc/text2image/image-synthesis"


def small_png(width: int = 64, height: int = 48) -> bytes:
    """A real PNG: a blue sky over a green field with a yellow sun."""
    image = Image.new("RGB", (width, height), (90, 160, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height * 2 // 3, width, height), fill=(60, 150, 60))
    draw.ellipse((width - 20, 4, width - 6, 18), fill=(250, 220, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


PNG = small_png()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the JSON body, or None


@dataclass
class Script:
    """How the fake behaves; a test may change it between calls."""

    answer: Literal["b64_json", "url"] = "b64_json"  # openai: what data items carry
    fail: tuple[str, str] | None = None  # wanx: the task ends FAILED with (code, message)
    pending_forever: bool = False  # wanx: the task never leaves PENDING
    result_url: str | None = None  # wanx/openai: hand out this URL instead of our own
    throttle: int = 0  # answer 429 to this many generation calls first
    image: bytes = PNG  # what an image is


@dataclass
class _Task:
    n: int
    status: str = "PENDING"
    polls: int = 0


@dataclass
class _State:
    protocol: ImageProtocol
    key: str
    script: Script
    seen: list[Seen] = field(default_factory=list)
    tasks: dict[str, _Task] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def state(self) -> _State:
        return self.server.state

    @property
    def base(self) -> str:
        return f"http://{self.headers.get('Host')}"

    def _record(self) -> Seen:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = Seen(self.command, self.path, headers, body)
        with self.state.lock:
            self.state.seen.append(seen)
        return seen

    def _send(
        self, status: int, body: bytes, kind: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", extra)

    def do_GET(self) -> None:
        seen = self._record()
        path = seen.path.split("?")[0]
        if re.fullmatch(r"/images/\d+\.png", path):
            self._send(200, self.state.script.image, "image/png")
        elif self.state.protocol == "wanx" and path.startswith("/api/v1/tasks/"):
            self._wanx_poll(seen, path.rsplit("/", 1)[1])
        else:
            self._not_found()

    def do_POST(self) -> None:
        seen = self._record()
        route = {
            ("wanx", WANX_SUBMIT): self._wanx_submit,
            ("openai", "/v1/images/generations"): self._openai,
            ("a1111", "/sdapi/v1/txt2img"): self._a1111,
        }.get((self.state.protocol, seen.path))
        cancel = re.fullmatch(r"/api/v1/tasks/([\w-]+)/cancel", seen.path)
        if route is not None:
            if self._throttled():
                return
            route(seen)
        elif self.state.protocol == "wanx" and cancel:
            self._wanx_cancel(seen, cancel[1])
        else:
            self._not_found()

    def _not_found(self) -> None:
        self._json(404, {"code": "NotFound", "message": f"no route {self.path}"})

    def _throttled(self) -> bool:
        with self.state.lock:
            if self.state.script.throttle <= 0:
                return False
            self.state.script.throttle -= 1
        self._json(429, {"code": "Throttling", "message": "Requests rate limit exceeded"},
                   {"Retry-After": "0"})  # fmt: skip
        return True

    def _images_urls(self, n: int) -> list[str]:
        if self.state.script.result_url:
            return [self.state.script.result_url] * n
        return [f"{self.base}/images/{i}.png?Expires=1999999999&Signature=x" for i in range(n)]

    # ---- wanx -------------------------------------------------------------------------

    def _wanx_denied(self, seen: Seen) -> bool:
        if seen.headers.get("authorization") == f"Bearer {self.state.key}":
            return False
        self._json(401, {"code": "InvalidApiKey", "message": "Invalid API-key provided.",
                         "request_id": str(uuid.uuid4())})  # fmt: skip
        return True

    def _wanx_submit(self, seen: Seen) -> None:
        if self._wanx_denied(seen):
            return
        if seen.headers.get("x-dashscope-async") != "enable":
            refusal = "current user api does not support synchronous calls"
            self._json(403, {"code": "AccessDenied", "message": refusal})
            return
        problem = _wanx_problem(seen.body)
        if problem:
            self._json(400, {"code": "InvalidParameter", "message": problem})
            return
        task_id = str(uuid.uuid4())
        with self.state.lock:
            self.state.tasks[task_id] = _Task(n=int(seen.body["parameters"].get("n", 1)))
        self._json(200, {"output": {"task_id": task_id, "task_status": "PENDING"},
                         "request_id": str(uuid.uuid4())})  # fmt: skip

    def _wanx_poll(self, seen: Seen, task_id: str) -> None:
        if self._wanx_denied(seen):
            return
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is not None and task.status in ("PENDING", "RUNNING"):
                task.polls += 1
                task.status = self._next_status(task)
        output: dict[str, Any] = {"task_id": task_id, "task_status": "UNKNOWN"}
        if task is not None:
            output["task_status"] = task.status
            output.update(self._wanx_outcome(task))
        self._json(200, {"request_id": str(uuid.uuid4()), "output": output})

    def _next_status(self, task: _Task) -> str:
        if self.state.script.pending_forever:
            return "PENDING"
        if task.polls == 1:
            return "RUNNING"
        return "FAILED" if self.state.script.fail else "SUCCEEDED"

    def _wanx_outcome(self, task: _Task) -> dict[str, Any]:
        if task.status == "FAILED" and self.state.script.fail:
            code, message = self.state.script.fail
            return {"code": code, "message": message}
        if task.status != "SUCCEEDED":
            return {}
        return {
            "results": [{"url": url} for url in self._images_urls(task.n)],
            "task_metrics": {"TOTAL": task.n, "SUCCEEDED": task.n, "FAILED": 0},
        }

    def _wanx_cancel(self, seen: Seen, task_id: str) -> None:
        if self._wanx_denied(seen):
            return
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            pending = task is not None and task.status == "PENDING"
            if task is not None and pending:
                task.status = "CANCELED"
                self.state.cancelled.append(task_id)
        if not pending:
            self._json(400, {"code": "UnsupportedOperation", "message": "Failed to cancel the "
                             "task, please confirm if the task is in PENDING status."})  # fmt: skip
            return
        self._json(200, {"request_id": str(uuid.uuid4())})

    # ---- OpenAI Images ------------------------------------------------------------------

    def _openai(self, seen: Seen) -> None:
        if seen.headers.get("authorization") != f"Bearer {self.state.key}":
            self._json(401, {"error": {"message": "Incorrect API key provided.",
                                       "type": "invalid_request_error", "param": None,
                                       "code": "invalid_api_key"}})  # fmt: skip
            return
        problem = _openai_problem(seen.body)
        if problem:
            self._json(400, {"error": {"message": problem, "type": "invalid_request_error",
                                       "param": None, "code": None}})  # fmt: skip
            return
        n = int(seen.body.get("n", 1))
        image = base64.b64encode(self.state.script.image).decode()
        if self.state.script.answer == "url":
            data = [{"url": url} for url in self._images_urls(n)]
        else:
            data = [{"b64_json": image, "revised_prompt": seen.body["prompt"]} for _ in range(n)]
        self._json(200, {"created": 1700000000, "data": data})

    # ---- AUTOMATIC1111 -------------------------------------------------------------------

    def _a1111(self, seen: Seen) -> None:
        expected = "Basic " + base64.b64encode(self.state.key.encode()).decode()
        if self.state.key and seen.headers.get("authorization") != expected:
            self._json(401, {"detail": "Incorrect username or password"},
                       {"WWW-Authenticate": "Basic"})  # fmt: skip
            return
        problem = _a1111_problem(seen.body)
        if problem:
            self._json(422, {"detail": [{"loc": ["body"], "msg": problem, "type": "value_error"}]})
            return
        image = base64.b64encode(self.state.script.image).decode()
        images = [image] * int(seen.body.get("batch_size", 1))
        info = {"prompt": seen.body["prompt"], "seed": 42, "width": seen.body.get("width")}
        self._json(200, {"images": images, "parameters": seen.body, "info": json.dumps(info)})


def _wanx_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return "Model not exist."
    prompt = (body.get("input") or {}).get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return "Field required: input.prompt"
    parameters = body.get("parameters") or {}
    if not re.fullmatch(r"\d+\*\d+", str(parameters.get("size", "1024*1024"))):
        return "The size is not match the allowed size ['1024*1024', '720*1280', '1280*720']"
    if not isinstance(parameters.get("n", 1), int) or not 1 <= parameters.get("n", 1) <= 4:
        return "n should be in [1, 4]"
    return None


_OPENAI_FIELDS = {"prompt", "model", "n", "size", "response_format", "quality", "style", "user"}


def _openai_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
        return "'prompt' is a required property"
    unknown = set(body) - _OPENAI_FIELDS
    if unknown:
        return f"Unrecognized request argument supplied: {', '.join(sorted(unknown))}"
    if not re.fullmatch(r"\d+x\d+", str(body.get("size", "1024x1024"))):
        return f"Invalid size '{body.get('size')}'."
    if body.get("response_format", "url") not in ("url", "b64_json"):
        return "Invalid response_format."
    return None


def _a1111_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
        return "field required: prompt"
    for name in ("width", "height", "batch_size"):
        if not isinstance(body.get(name, 1), int):
            return f"value is not a valid integer: {name}"
    return None


@dataclass
class FakeImages:
    """A running fake provider of one protocol."""

    server: _Server

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def script(self) -> Script:
        return self.server.state.script

    @property
    def seen(self) -> list[Seen]:
        with self.server.state.lock:
            return list(self.server.state.seen)

    @property
    def task_ids(self) -> list[str]:
        """The wanx tasks submitted, in order."""
        with self.server.state.lock:
            return list(self.server.state.tasks)

    @property
    def cancelled(self) -> list[str]:
        with self.server.state.lock:
            return list(self.server.state.cancelled)

    def calls(self, path: str) -> list[Seen]:
        """The requests to `path` (without its query)."""
        return [s for s in self.seen if s.path.split("?")[0] == path]


@contextmanager
def fake_images(
    protocol: ImageProtocol, key: str, script: Script | None = None
) -> Iterator[FakeImages]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = _State(protocol, key, script or Script())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FakeImages(server)
    finally:
        server.shutdown()
        server.server_close()
