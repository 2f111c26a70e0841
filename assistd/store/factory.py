"""Picks the store for a database URL."""

from __future__ import annotations

from assistd.settings import Settings
from assistd.store.sql import SqlStore


def open_store(settings: Settings) -> SqlStore:
    url = settings.resolved_database_url
    if url.startswith("postgresql+asyncpg://"):
        from assistd.store.postgres import postgres_store

        return postgres_store(url)
    from assistd.store.sqlite import sqlite_store

    return sqlite_store(url, settings.sqlite_busy_timeout_s)
