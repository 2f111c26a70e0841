"""The machine's Redis for the transport contract tests: each test gets a fresh key
prefix, and its keys are deleted afterwards. No Redis: the tests skip, saying why,
unless `CI` is set, where they fail."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from assistd.queue.redis import connect

REDIS_URL = os.environ.get("ASSISTD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def redis_or_skip() -> Redis:
    client = connect(REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    return client


async def fresh_prefix(client: Redis) -> AsyncIterator[str]:
    prefix = f"assistd-test:{secrets.token_hex(6)}:"
    yield prefix
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
