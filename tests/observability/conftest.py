"""Fixtures of the observability tests: dedicated servers (tests/runs/conftest.py) and a
small OTLP/HTTP collector that the server's real exporter sends its spans to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.observability.collector import Collector
from tests.runs.conftest import (  # noqa: F401
    backend,
    database,
    start_module_server,
    start_server,
)


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with Collector() as running:
        yield running
