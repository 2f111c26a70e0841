"""What a thread time-to-live may be, and where a thread names its own.

A TTL is whole seconds of idleness (no new message or run) after which the worker's sweep
deletes a thread (core/thread_ttl.py); 0 means never. The thread's own TTL is the string
value of its metadata key `expires_after_seconds` (metadata values are strings in both
vendors' APIs, so both SDKs can set it); otherwise its workspace's, otherwise the server's
`thread_ttl_s`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistd.errors import InvalidRequest

METADATA_KEY = "expires_after_seconds"
MAX_TTL_S = 10 * 366 * 86400  # ten years: beyond it, 0 (never) says what is meant


def check_ttl(value: Any, field: str) -> int | None:
    """An admin-set TTL: null (inherit), 0 (never) or seconds up to MAX_TTL_S."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TTL_S:
        raise InvalidRequest(
            f"'{field}' must be null, 0 (never expire) or a whole number of seconds up to "
            f"{MAX_TTL_S}.",
            field,
        )
    return value


def parse_ttl(text: str) -> int | None:
    """The TTL a metadata value names, None when it names none."""
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit():
        return None
    seconds = int(stripped)
    return seconds if seconds <= MAX_TTL_S else None


def check_thread_metadata(metadata: Mapping[str, Any], field: str = "metadata") -> None:
    """InvalidRequest when the metadata's TTL key holds something that is not a TTL."""
    value = metadata.get(METADATA_KEY)
    if value is not None and (not isinstance(value, str) or parse_ttl(value) is None):
        raise InvalidRequest(
            f"'{field}.{METADATA_KEY}' must be a string of whole seconds from 0 (never expire) "
            f'to {MAX_TTL_S}, such as "86400"; got {value!r}.',
            f"{field}.{METADATA_KEY}",
        )


def thread_ttl(metadata: Mapping[str, Any]) -> int | None:
    """The thread's own TTL (None: its workspace's)."""
    value = metadata.get(METADATA_KEY)
    return parse_ttl(value) if isinstance(value, str) else None
