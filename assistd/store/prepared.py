"""Statements built once and kept for the process's life, which a store may run on its
driver directly (store/sqlite_direct.py), past SQLAlchemy's execution of them.

SQLAlchemy rebuilds an execution context, its parameters and a result object on every
execution, about 30 us of Python a statement even for a cached one, several times what
SQLite takes to run it; a streamed run executes some 25 on the way. Only statements marked
here qualify: their identity is their cache key, so they must never be freed.
"""

from __future__ import annotations

from typing import Any, TypeVar

S = TypeVar("S")

_KEPT: dict[int, Any] = {}


def kept(statement: S) -> S:
    """Marks `statement` as built once and kept (see above); returns it."""
    _KEPT[id(statement)] = statement
    return statement


def is_kept(statement: object) -> bool:
    return _KEPT.get(id(statement)) is statement
