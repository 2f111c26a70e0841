"""Alembic migrations, applied programmatically at start and by `assistd migrate`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

HERE = Path(__file__).parent
# Any fixed number: it serialises concurrent migrations on one PostgreSQL database.
_PG_LOCK_KEY = 0x61737369


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    command.upgrade(alembic_config(connection), "head")


async def upgrade(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(assistd_write=True)
        async with conn.begin():
            await conn.run_sync(_upgrade)
