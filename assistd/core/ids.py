"""Object ids and timestamps, one way for every object."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_id(prefix: str) -> str:
    """A path-safe id such as `asst_3k9...`: 24 random base-36 characters (~124 bits)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def now_ms() -> int:
    """Unix time in milliseconds, the unit DashScope shows in `created_at`."""
    return time.time_ns() // 1_000_000
