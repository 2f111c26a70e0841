"""Any OpenAI-compatible chat-completions endpoint, over models.http_stream.

One backend per route, shared by every run on it (kept-alive connections, no per-run
setup). Every run's first token waits on this call, and every token of a streamed run
is read through it: the openai SDK's client took 0.56 ms of CPU and 0.66 ms to a reply's
first chunk against a local endpoint, aiohttp alone 0.18 and 0.28 ms, and aiohttp read a
token for 27-29 us of CPU where http_stream takes 17 (bench/README.md). What the SDK did
around the call is kept: retries of a failed connection, a timeout and a 408, 409, 429 or
5xx reply, with its backoff or the upstream's Retry-After, and the same errors for the
same failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import yarl

from assistd.logs import redact
from assistd.models.base import ModelChunk, ModelError, ModelRequest, TextTaker
from assistd.models.http_stream import HttpStreamClient, Limits, Reply, Target, UpstreamError
from assistd.models.reply_feed import ReplyFeed

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
# As many connections at once as the SDK's client allowed (1,000); idle ones kept for the
# next call: at most MAX_KEPT an endpoint, each for about KEEPALIVE_S, as the SDK's client
# kept them (httpx's 100 and 5 s). aiohttp kept every connection a burst opened, for
# 15 s: after a thousand concurrent runs, a thousand idle sockets on both ends.
MAX_CONNECTIONS = 1000
MAX_KEPT = 100
KEEPALIVE_S = 5.0
LIMITS = Limits(MAX_CONNECTIONS, MAX_KEPT, KEEPALIVE_S)
WATCH_FRACTION = 0.25  # of the read timeout: how often a reply's body is checked on


class _ReadWatch:
    """A reply's body read without a timer a chunk (aiohttp re-armed one on every chunk
    it received: 20,000 a second under 1,000 streams): this looks every WATCH_FRACTION
    of the timeout at how many bytes came, and breaks the reply off once none came for
    the whole timeout (late by a fraction of it at most)."""

    def __init__(self, reply: Reply, timeout_s: float) -> None:
        self._reply = reply
        self._timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self._seen = reply.total_bytes
        self._quiet_since = self._loop.time()
        self._handle = self._loop.call_later(timeout_s * WATCH_FRACTION, self._look)

    def _look(self) -> None:
        now, seen = self._loop.time(), self._reply.total_bytes
        if seen != self._seen:
            self._seen, self._quiet_since = seen, now
        elif now - self._quiet_since >= self._timeout_s:
            self._reply.fail(TimeoutError("nothing came of the reply for the read timeout"))
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
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        # Credentials in the URL are sent as basic auth, instead of the key (as the SDK's
        # httpx client did).
        if not url.user:
            headers["Authorization"] = f"Bearer {api_key or 'none'}"
        self._target = Target.of(str(url).rstrip("/") + "/chat/completions", headers)
        # Per connection and per read, as the SDK's timeout: a long reply is never cut.
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.extra_body = extra_body or {}
        self.base_url = base_url
        # Literal secrets to strip from what the upstream says, wherever they show up.
        self._secrets = (api_key, url.password)
        self._client: HttpStreamClient | None = None

    def _current(self) -> HttpStreamClient:
        """One client per event loop: its connections belong to the loop they were made in."""
        client = self._client
        if client is None or client.loop is not asyncio.get_running_loop():
            client = self._client = HttpStreamClient(self._target, self.timeout_s, LIMITS)
        return client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.loop is asyncio.get_running_loop():
            await client.close()

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

    async def stream(
        self, request: ModelRequest, take_text: TextTaker | None = None
    ) -> AsyncIterator[ModelChunk]:
        """The reply's chunks; text that `take_text` takes as it arrives (see
        models.reply_feed) is not among them."""
        reply = await self._open(orjson.dumps(self._body(request)))
        watch = _ReadWatch(reply, self.timeout_s)
        feed = ReplyFeed(take_text)
        reply.feed_to(feed.feed)
        ended = False
        try:
            while True:
                while feed.queue:
                    yield feed.queue.popleft()
                if feed.failure is not None:
                    raise feed.failure
                if feed.done:
                    break
                if reply.ended:
                    feed.finish()
                    continue
                await reply.wait()
            ended = True
        except (UpstreamError, OSError, TimeoutError) as exc:  # the reply was cut short
            message = "The model endpoint broke off its reply"
            raise ModelError("model_error", message, self._detail(exc)) from exc
        except orjson.JSONDecodeError as exc:
            message = "The model endpoint sent a reply this server could not read"
            raise ModelError("model_error", message, self._detail(exc)) from exc
        finally:
            watch.stop()
            if ended:  # the rest (the body's end, after [DONE]) is read off the run's path
                reply.release()
            else:
                reply.close()

    async def _open(self, body: bytes) -> Reply:
        """The reply's head, once the upstream accepts the request; retried as the SDK
        retried it."""
        for attempt in range(self.max_retries + 1):
            try:
                return await self._post(body)
            except (_Refused, TimeoutError, UpstreamError, OSError) as exc:
                if attempt == self.max_retries or not _retried(exc):
                    raise self._error(exc) from exc
                await asyncio.sleep(_backoff(attempt, exc))
        raise AssertionError("unreachable")  # the loop's last turn returns or raises

    async def _post(self, body: bytes) -> Reply:
        reply = await self._current().post(body)
        if reply.status < 300:
            return reply
        try:
            async with asyncio.timeout(self.timeout_s):
                text = await reply.text(_UPSTREAM_TEXT)
        except (UpstreamError, OSError, TimeoutError):
            text = ""
        finally:
            reply.release()
        raise _Refused(reply.status, text, reply.headers)

    def _error(self, exc: BaseException) -> ModelError:
        """What the tenant is told (our words) with the detail for the operator's log."""
        if isinstance(exc, _Refused):
            words = _STATUS_WORDS.get(exc.status) or (
                "failed" if exc.status >= 500 else "rejected the request"
            )
            message = f"The model endpoint {words}: HTTP {exc.status}"
            return ModelError("model_error", message, self._detail(exc))
        if isinstance(exc, TimeoutError):  # the connect and read timeouts are ones too
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
