"""Fixtures of the usage and quota tests: dedicated servers (for the server's own limits)
on SQLite and PostgreSQL, as the run tests start them."""

from __future__ import annotations

from tests.runs.conftest import backend, start_server  # noqa: F401
