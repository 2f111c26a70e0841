"""What a web search provider is, what it finds, and how its HTTP calls are made.

Every provider call goes through the shared guarded client (`trusted`: the endpoint is
the operator's configuration), within the provider's `timeout_s` for the whole call,
retries included. A 429 or 5xx answer is retried a few times, after the server's
`Retry-After` when it gives one, but only when that wait is short and fits in the time
left; any other answer is the adapter's to explain.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from assistd.tools.base import ToolResult
from assistd.tools.http import OutboundClient, OutboundError, OutboundResponse, OutboundTimeout

MAX_ATTEMPTS = 3
RETRY_WAIT_CAP_S = 5.0  # a server asking for a longer wait gets its answer reported
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# How long to wait before trying again after `response` (attempt 0 is the first), or
# None when it is not worth retrying.
RetryDelay = Callable[[OutboundResponse, int], float | None]


class ProviderError(Exception):
    """A failed provider call: a short code and a sentence the model can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class SearchHit:
    title: str
    url: str
    snippet: str
    site_name: str | None = None  # the provider's name for the site, when it has one


class SearchProvider(Protocol):
    name: str  # as the model and the operator know it: "SearXNG", "Brave", "Tavily"

    async def search(
        self, http: OutboundClient, query: str, max_results: int, timeout_s: float
    ) -> list[SearchHit]:
        """The provider's hits for `query`, best first; raises ProviderError."""
        ...


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds (it may be a number or an HTTP date), or None."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def standard_delay(response: OutboundResponse, attempt: int) -> float | None:
    """429 and 5xx: the server's Retry-After, else 0.25 s, 0.5 s, ..."""
    if response.status not in RETRY_STATUSES:
        return None
    given = retry_after_s(response.headers)
    return given if given is not None else 0.25 * 2**attempt


async def call_provider(
    http: OutboundClient,
    provider: str,
    method: str,
    url: str,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    delay: RetryDelay = standard_delay,
) -> OutboundResponse:
    """One provider request, retried as `delay` says within `timeout_s` in all; the last
    answer, whatever its status. Raises ProviderError when no answer came."""
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timed_out(provider, timeout_s)
        try:
            response = await http.request(
                method, url, trusted=True, headers=headers, params=params, json=json,
                timeout_s=left,
            )  # fmt: skip
        except OutboundTimeout:
            raise _timed_out(provider, timeout_s) from None
        except OutboundError as exc:
            raise ProviderError("unreachable", f"{provider} could not be reached: {exc}") from None
        wait = delay(response, attempt)
        attempt += 1
        if (
            wait is None
            or attempt >= MAX_ATTEMPTS
            or wait > RETRY_WAIT_CAP_S
            or time.monotonic() + wait >= deadline
        ):
            return response
        await asyncio.sleep(wait)


def _timed_out(provider: str, timeout_s: float) -> ProviderError:
    return ProviderError("timeout", f"{provider} did not answer within {timeout_s:g} seconds")


def json_body(response: OutboundResponse, provider: str) -> Any:
    """The response's JSON, or a ProviderError saying the provider answered something else."""
    try:
        return response.json()
    except ValueError:
        raise ProviderError(
            "bad_response", f"{provider} answered HTTP {response.status} with something not JSON"
        ) from None


def error_body(response: OutboundResponse) -> Any:
    """An unsuccessful answer's JSON, if it is JSON (an outage may answer an HTML page)."""
    try:
        return response.json()
    except ValueError:
        return None


def status_error(response: OutboundResponse, provider: str, detail: str = "") -> ProviderError:
    """The common reading of an unsuccessful answer: auth, rate limit, bad query, outage."""
    status = response.status
    extra = f": {detail}" if detail else ""
    if status in (401, 403):
        return ProviderError(
            "auth_failed", f"{provider} refused the request (HTTP {status}){extra}; the "
            "server's API key for it is missing or wrong"
        )  # fmt: skip
    if status == 429:
        wait = retry_after_s(response.headers)
        when = f"; try again in {wait:.0f} seconds" if wait is not None else ""
        return ProviderError("rate_limited", f"{provider} is rate limiting searches{when}")
    if status in (400, 422):
        return ProviderError("invalid_query", f"{provider} could not run this query{extra}")
    if status >= 500:
        return ProviderError("unavailable", f"{provider} failed (HTTP {status}){extra}")
    return ProviderError("provider_error", f"{provider} answered HTTP {status}{extra}")


def failure(what: str, code: str, message: str) -> ToolResult:
    """A failed call of the tool `what` ("the search"): the error object in the step, and
    a sentence the model can act on."""
    return ToolResult(
        output=f"Error: {what} failed: {message}. Answer without it, or try again later.",
        display=dumps({"error": {"code": code, "message": message}}),
    )


def redact(text: str, secret: str | None) -> str:
    """Never let a key reach a step or the model, whatever echoed it."""
    return text.replace(secret, "[redacted]") if secret else text


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
