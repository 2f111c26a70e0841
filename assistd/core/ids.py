"""Object ids and timestamps, one way for every object."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


_ID_CHARS = 24
_ID_RANGE = len(_ALPHABET) ** _ID_CHARS


def new_id(prefix: str) -> str:
    """A path-safe id such as `asst_3k9...`: 24 random base-36 characters (~124 bits).

    One random draw, written in base 36: the same ids as a draw a character, at a tenth
    of the cost (several are made for every run)."""
    n = secrets.randbelow(_ID_RANGE)
    chars = []
    for _ in range(_ID_CHARS):
        n, digit = divmod(n, 36)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(chars)


def now_ms() -> int:
    """Unix time in milliseconds, the unit DashScope shows in `created_at`."""
    return time.time_ns() // 1_000_000
