"""PostgreSQL through asyncpg."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from assistd.store.sql import SqlStore


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def postgres_engine(url: str) -> AsyncEngine:
    return create_async_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=False,
        hide_parameters=True,  # errors and logs never show values: they are tenant content
    )


def postgres_store(url: str) -> SqlStore:
    return SqlStore(postgres_engine(url))
