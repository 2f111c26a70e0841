"""Any OpenAI-compatible chat-completions endpoint, over aiohttp.

One backend per route, shared by every run on it (kept-alive connections, no per-run
setup). Every run's first token waits on this call: the openai SDK's client (its aiohttp
transport) took 0.56 ms of CPU and 0.66 ms to a reply's first chunk against a local
endpoint, aiohttp alone 0.18 and 0.28 ms (bench/README.md). What the SDK did around the
call is kept: retries of a failed connection, a timeout and a 408, 409, 429 or 5xx reply,
with its backoff or the upstream's Retry-After, and the same errors for the same failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
import yarl
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ConnectionKey

from assistd.logs import redact
from assistd.models.base import ModelChunk, ModelError, ModelRequest, chunks_of

# What a tenant is told for an upstream HTTP status: our words, never the upstream's.
_STATUS_WORDS = {
    401: "refused this server's credentials",
    403: "refused this server's credentials",
    404: "does not know this model or path",
    429: "is rate limiting this server",
}
# The openai SDK's retry policy: these statuses and every 5xx; its backoff doubles from
# INITIAL_RETRY_S up to MAX_RETRY_S, less up to a quarter at random, unless the upstream
# said how long to wait (Retry-After, at most MAX_RETRY_AFTER_S).
_RETRIED_STATUSES = frozenset({408, 409, 429})
INITIAL_RETRY_S, MAX_RETRY_S, MAX_RETRY_AFTER_S = 0.5, 8.0, 60.0
_UPSTREAM_TEXT = 4000  # characters of a refusal's body kept for the operator's log
MAX_CONNECTIONS = 1000
# Idle connections kept for the next call: at most MAX_KEPT an endpoint, each for about
# KEEPALIVE_S, as the SDK's client kept them (httpx's 100 and 5 s). aiohttp alone keeps
# every connection a burst opened, for 15 s: after a thousand concurrent runs, a
# thousand idle sockets on both ends.
MAX_KEPT = 100
KEEPALIVE_S = 5.0
WATCH_FRACTION = 0.25  # of the read timeout: how often a reply's body is checked on


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, closing a finished call's connection once MAX_KEPT idle
    ones wait for its endpoint already. aiohttp has no setting for this; `_release` is
    where a finished call's connection goes back (tests/ops/test_model_connections.py
    fails if that changes)."""

    def _release(
        self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False
    ) -> None:
        kept = self._conns.get(key)
        if kept is not None and len(kept) >= MAX_KEPT:
            should_close = True
        super()._release(key, protocol, should_close=should_close)


class _ReadWatch:
    """A reply's body read without a timer a chunk. aiohttp re-arms its read timer on
    every chunk it receives (one cancelled and one made: 20,000 a second under 1,000
    streams); this looks every WATCH_FRACTION of the timeout at how many bytes came,
    and fails the read as that timer would once none came for the whole timeout (late
    by a fraction of it at most). The reply's head is still timed by aiohttp."""

    def __init__(self, response: aiohttp.ClientResponse, timeout_s: float) -> None:
        connection = response.connection
        if connection is not None and connection.protocol is not None:
            connection.protocol.read_timeout = None  # its next chunk drops the timer
        self._response = response
        self._timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self._seen = response.content.total_bytes
        self._quiet_since = self._loop.time()
        self._handle = self._loop.call_later(timeout_s * WATCH_FRACTION, self._look)

    def _look(self) -> None:
        now, seen = self._loop.time(), self._response.content.total_bytes
        if seen != self._seen:
            self._seen, self._quiet_since = seen, now
        elif now - self._quiet_since >= self._timeout_s:
            failed = aiohttp.SocketTimeoutError("Timeout on reading data from socket")
            self._response.content.set_exception(failed)
            self._response.close()
            return
        self._handle = self._loop.call_later(self._timeout_s * WATCH_FRACTION, self._look)

    def stop(self) -> None:
        self._handle.cancel()


class _Refused(Exception):
    """The upstream answered with an HTTP error status."""

    def __init__(self, status: int, text: str, headers: Mapping[str, str]) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.headers = headers


class OpenAICompatBackend:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_s: float = 120.0,
        max_retries: int = 2,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        url = yarl.URL(base_url)
        self._url = str(url.with_user(None)).rstrip("/") + "/chat/completions"
        self._headers = {"Content-Type": "application/json"}
        # Credentials in the URL are sent as basic auth, instead of the key (as the SDK's
        # httpx client did); aiohttp refuses both at once.
        self._auth = aiohttp.BasicAuth(url.user or "", url.password or "") if url.user else None
        if self._auth is None:
            self._headers["Authorization"] = f"Bearer {api_key or 'none'}"
        # Per connection and per read, as the SDK's timeout: a long reply is never cut.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout_s, sock_read=timeout_s
        )
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.extra_body = extra_body or {}
        self.base_url = base_url
        # Literal secrets to strip from what the upstream says, wherever they show up.
        self._secrets = (api_key, url.password)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current(self) -> aiohttp.ClientSession:
        """One session per event loop: a session belongs to the loop it was made in."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # As many connections as the SDK's client allowed (1,000): aiohttp's default
            # of 100 would queue the 101st concurrent run behind the others.
            connector = _Connector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_S)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._loop = loop
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            args["tools"] = request.tools
            if request.tool_choice is not None:
                args["tool_choice"] = request.tool_choice
            if request.parallel_tool_calls is not None:
                args["parallel_tool_calls"] = request.parallel_tool_calls
        if request.response_format is not None:
            args["response_format"] = request.response_format
        if request.response_schema is not None:
            args["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": request.response_schema,
                    "strict": True,
                },
            }
        for name in ("temperature", "top_p", "max_tokens"):
            value = getattr(request, name)
            if value is not None:
                args[name] = value
        extra = dict(self.extra_body)
        if request.top_k is not None:
            extra["top_k"] = (
                request.top_k
            )  # not an OpenAI parameter; vLLM, llama.cpp and DashScope take it
        return {**args, **extra}

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        response = await self._open(orjson.dumps(self._body(request)))
        watch = _ReadWatch(response, self.timeout_s)
        blocks = response.content.iter_any()
        ended = False
        try:
            async for data in sse_data(blocks):
                for part in chunks_of(data):
                    yield part
            ended = True
        except (aiohttp.ClientError, TimeoutError) as exc:  # the reply was cut short
            message = "The model endpoint broke off its reply"
            raise ModelError("model_error", message, self._detail(exc)) from exc
        except orjson.JSONDecodeError as exc:
            message = "The model endpoint sent a reply this server could not read"
            raise ModelError("model_error", message, self._detail(exc)) from exc
        finally:
            watch.stop()
            if ended:
                _close_later(response, blocks)
            else:
                response.close()

    async def _open(self, body: bytes) -> aiohttp.ClientResponse:
        """The reply's head, once the upstream accepts the request; retried as the SDK
        retried it."""
        for attempt in range(self.max_retries + 1):
            try:
                return await self._post(body)
            except (_Refused, TimeoutError, aiohttp.ClientError) as exc:
                if attempt == self.max_retries or not _retried(exc):
                    raise self._error(exc) from exc
                await asyncio.sleep(_backoff(attempt, exc))
        raise AssertionError("unreachable")  # the loop's last turn returns or raises

    async def _post(self, body: bytes) -> aiohttp.ClientResponse:
        response = await self._current().post(
            self._url, data=body, headers=self._headers, auth=self._auth
        )
        if response.status < 400:
            return response
        try:
            text = (await response.text(errors="replace"))[:_UPSTREAM_TEXT]
        except (aiohttp.ClientError, TimeoutError):
            text = ""
        finally:
            response.release()
        raise _Refused(response.status, text, response.headers)

    def _error(self, exc: BaseException) -> ModelError:
        """What the tenant is told (our words) with the detail for the operator's log."""
        if isinstance(exc, _Refused):
            words = _STATUS_WORDS.get(exc.status) or (
                "failed" if exc.status >= 500 else "rejected the request"
            )
            message = f"The model endpoint {words}: HTTP {exc.status}"
            return ModelError("model_error", message, self._detail(exc))
        if isinstance(exc, TimeoutError):  # aiohttp's connect and read timeouts are ones too
            message = "The model endpoint did not answer in time"
            return ModelError("model_timeout", message, self._detail(exc))
        message = "The model endpoint could not be reached"
        return ModelError("model_unreachable", message, self._detail(exc))

    def _detail(self, exc: BaseException) -> str:
        """For the operator's log: the endpoint and everything the failure says."""
        causes = [f"{type(exc).__name__}: {exc}"]
        cause = exc.__cause__ or exc.__context__
        while cause is not None and len(causes) < 4:
            said = f"{type(cause).__name__}: {cause}"
            if said != causes[-1]:
                causes.append(said)
            cause = cause.__cause__ or cause.__context__
        text = f"POST {self.base_url.rstrip('/')}/chat/completions: " + "; caused by ".join(causes)
        return redact(" ".join(text.split()), *self._secrets)


def _retried(exc: BaseException) -> bool:
    """Whether the SDK would have asked again: the upstream's `x-should-retry` decides
    where it says; else a failed connection, a timeout, or a 408, 409, 429 or 5xx."""
    if not isinstance(exc, _Refused):
        return True
    said = exc.headers.get("x-should-retry")
    if said in ("true", "false"):
        return said == "true"
    return exc.status in _RETRIED_STATUSES or exc.status >= 500


def _backoff(attempt: int, exc: BaseException) -> float:
    """Seconds before the next try: the upstream's Retry-After where it gave a sane one."""
    if isinstance(exc, _Refused) and (asked := _retry_after(exc.headers)) is not None:
        return asked
    return min(INITIAL_RETRY_S * 2.0**attempt, MAX_RETRY_S) * (1 - 0.25 * random.random())


def _retry_after(headers: Mapping[str, str]) -> float | None:
    seconds: float | None = None
    with contextlib.suppress(TypeError, ValueError):
        if (ms := headers.get("retry-after-ms")) is not None:
            seconds = float(ms) / 1000
        elif (after := headers.get("retry-after")) is not None:
            try:
                seconds = float(after)
            except ValueError:
                when = email.utils.parsedate_to_datetime(after)
                seconds = when.timestamp() - time.time()
    return seconds if seconds is not None and 0 < seconds <= MAX_RETRY_AFTER_S else None


# The rest of a reply after `[DONE]` (the chunked body's end) is read off the run's path,
# for at most this long: a response closed before its end takes its connection with it,
# and every run would then open a new one.
_DRAIN_S = 5.0
_draining: set[asyncio.Task[None]] = set()


def _close_later(response: aiohttp.ClientResponse, blocks: AsyncIterator[bytes]) -> None:
    task = asyncio.get_running_loop().create_task(_drain(response, blocks))
    _draining.add(task)
    task.add_done_callback(_draining.discard)


async def _drain(response: aiohttp.ClientResponse, blocks: AsyncIterator[bytes]) -> None:
    # The reply was complete: a failure here only means the connection is not kept.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_DRAIN_S):
            async for _ in blocks:
                pass
    response.release()  # read to its end, its connection goes back to the pool


async def sse_data(blocks: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    """The parsed JSON of each server-sent event's data, up to `[DONE]`."""
    buffer = b""
    data: list[bytes] = []
    async for block in blocks:
        buffer += block
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            line = line.rstrip(b"\r")
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif not line and data:
                payload = b"\n".join(data)
                data = []
                if payload == b"[DONE]":
                    return
                yield orjson.loads(payload)
    if data and data != [b"[DONE]"]:  # a stream cut off without its closing blank line
        yield orjson.loads(b"\n".join(data))
