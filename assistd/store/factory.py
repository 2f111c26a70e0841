"""Picks the store for a database URL."""

from __future__ import annotations

from assistd.settings import Settings
from assistd.store.sql import SqlStore


def open_store(settings: Settings) -> SqlStore:
    url = settings.resolved_database_url
    if url.startswith("postgresql+asyncpg://"):
        from assistd.store.postgres import postgres_store

        return postgres_store(url)
    from assistd.store.sqlite import private_dir, sqlite_store

    if not settings.database_url:  # the data dir is assistd's own: keep it private
        private_dir(settings.data_dir, tighten=True)
    return sqlite_store(url, settings.sqlite_busy_timeout_s)
