"""Quotas per API key and per workspace: requests per minute, runs per minute and tokens
per (UTC) day.

A limit comes from the key's or workspace's own `limits` (set through the admin API; 0:
none) or else the server's settings (`quota_key_*`, `quota_workspace_*`; unset: none).
Requests and runs are counted in fixed one-minute windows (queue/counters.py: in memory,
or in Redis shared by every replica); tokens are read from the day's usage rows, which
the transaction ending each run writes (core/usage.py). A request over a limit is
refused with RateLimited (429) and a Retry-After of at most 60 s. With no limit set
anywhere a request costs one attribute check: no counter is touched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from assistd.core.objects import JsonDict, Principal
from assistd.core.usage import utc_day
from assistd.errors import InvalidRequest, RateLimited
from assistd.queue.counters import Counters

KINDS = ("requests_per_minute", "runs_per_minute", "tokens_per_day")
SCOPES = ("key", "workspace")
WINDOW_S = 60
DAY_S = 86400
MAX_LIMIT = 10**12
# (day, workspace id, key id) -> (tokens used that day in the workspace, by the key)
TokensUsed = Callable[[str, str, str], Awaitable[tuple[int, int]]]


def check_limits(value: Any, field: str) -> JsonDict:
    """The limits a caller gives a key or workspace: an object of KINDS, each a whole
    number >= 0 (0: no limit) or null (the server's)."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{field}' must be an object of {', '.join(KINDS)}.", field)
    for name, limit in value.items():
        if name not in KINDS:
            raise InvalidRequest(
                f"'{field}.{name}' is not a limit; the limits are: {', '.join(KINDS)}.",
                f"{field}.{name}",
            )
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT
        ):
            raise InvalidRequest(
                f"'{field}.{name}' must be a whole number from 0 (no limit) to {MAX_LIMIT}, "
                "or null (the server's).",
                f"{field}.{name}",
            )
    return {name: limit for name, limit in value.items() if limit is not None}


class Quotas:
    def __init__(self, settings: Any, counters: Counters, tokens_used: TokensUsed) -> None:
        self.defaults = {
            (scope, kind): getattr(settings, f"quota_{scope}_{kind}") or 0
            for scope in SCOPES for kind in KINDS
        }  # fmt: skip
        self.any_default = any(self.defaults.values())
        self.counters = counters
        self.tokens_used = tokens_used

    def limit(self, who: Principal, scope: str, kind: str) -> int:
        own = who.key_limits if scope == "key" else who.workspace_limits
        if own is not None and own.get(kind) is not None:
            return int(own[kind])
        return self.defaults[(scope, kind)]

    async def admit(self, who: Principal, creates_run: bool) -> None:
        """Counts the request (and the run it creates); RateLimited past a limit."""
        if not (self.any_default or who.key_limits or who.workspace_limits):
            return
        now = time.time()
        kinds = ("requests_per_minute", "runs_per_minute") if creates_run else KINDS[:1]
        await self._count(who, kinds, now)
        if creates_run:
            await self._tokens(who, now)

    async def _count(self, who: Principal, kinds: tuple[str, ...], now: float) -> None:
        window = int(now // WINDOW_S)
        checks = [
            (scope, kind, limit)
            for scope in SCOPES for kind in kinds
            if (limit := self.limit(who, scope, kind))
        ]  # fmt: skip
        if not checks:
            return
        names = [f"{_ident(who, s)}:{k}:{window}" for s, k, _ in checks]
        counts = await self.counters.hit(names, WINDOW_S + 1)
        for (scope, kind, limit), count in zip(checks, counts, strict=True):
            if count > limit:
                retry = max(1, math.ceil(WINDOW_S - now % WINDOW_S))
                per = kind.removesuffix("_per_minute")
                raise RateLimited(
                    f"Rate limit reached for {_named(who, scope)}: {limit} {per} per minute. "
                    f"Retry after {retry} s.",
                    retry,
                )

    async def _tokens(self, who: Principal, now: float) -> None:
        limits = {scope: self.limit(who, scope, "tokens_per_day") for scope in SCOPES}
        if not any(limits.values()):
            return
        day = utc_day(int(now * 1000))
        in_ws, by_key = await self.tokens_used(day, who.workspace_id, who.key_id)
        for scope, used in (("key", by_key), ("workspace", in_ws)):
            if limits[scope] and used >= limits[scope]:
                left = math.ceil(DAY_S - now % DAY_S)
                retry = max(1, min(WINDOW_S, left))
                raise RateLimited(
                    f"Token limit reached for {_named(who, scope)}: {used} of "
                    f"{limits[scope]} tokens per day (UTC) used. New runs may start "
                    "when the day ends.",
                    retry,
                    soon=left <= WINDOW_S,
                )


def _ident(who: Principal, scope: str) -> str:
    return f"k:{who.key_id}" if scope == "key" else f"w:{who.workspace_id}"


def _named(who: Principal, scope: str) -> str:
    return f"API key {who.key_id}" if scope == "key" else f"workspace {who.workspace_id}"
