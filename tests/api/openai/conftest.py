"""Fixtures for the OpenAI surface: the unmodified `openai` SDK pointed at /v1."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import make_workspace
from tests.support.server import RunningServer


def openai_url(server: RunningServer) -> str:
    return f"{server.base_url}/v1"


def sdk(server: RunningServer, key: str, **kwargs: object) -> openai.OpenAI:
    """The SDK as an application makes it, the base URL being the only change. No retries:
    a test sees the first answer (a retried 5xx would hide a bug)."""
    return openai.OpenAI(base_url=openai_url(server), api_key=key, max_retries=0, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def workspace(admin: httpx.Client) -> tuple[str, str]:
    """A fresh workspace and a plain key of it: (workspace_id, key)."""
    return make_workspace(admin, "oai")


@pytest.fixture
def client(server: RunningServer, workspace: tuple[str, str]) -> Iterator[openai.OpenAI]:
    """The SDK with the key of a fresh workspace, so each test sees only its own objects."""
    with sdk(server, workspace[1]) as made:
        yield made


@pytest.fixture
def raw(server: RunningServer, workspace: tuple[str, str]) -> Iterator[httpx.Client]:
    """Plain HTTP on /v1 with the same key, for inputs the SDK cannot send."""
    headers = {"Authorization": f"Bearer {workspace[1]}"}
    with httpx.Client(base_url=openai_url(server), headers=headers, timeout=30) as made:
        yield made
