"""What each vendor SDK does with a 429 and its Retry-After.

The openai SDK retries a 429 after the Retry-After it was given (with `max_retries`), so
a call refused late in a window succeeds once the next one opens. The dashscope SDK
never retries (spec: no retries anywhere in the Assistant API paths): it hands the
refusal back as the call's result (`status_code` 429, `code` "Throttling"), and the
application's own retry after Retry-After succeeds."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from dashscope import Assistants

from tests.api.openai.conftest import openai_url
from tests.conftest import make_workspace
from tests.runs.conftest import sdk_at
from tests.runs.helpers import ok
from tests.support.server import RunningServer
from tests.usage.helpers import key_limits, left_in_window, new_key, window_ending


def test_the_openai_sdk_retries_after_retry_after(
    server: RunningServer, admin: httpx.Client
) -> None:
    ws, _ = make_workspace(admin, "retry")
    key_id, key = new_key(admin, ws)
    key_limits(admin, key_id, requests_per_minute=1)
    window_ending()
    no_retry = openai.OpenAI(base_url=openai_url(server), api_key=key, max_retries=0)
    retrying = openai.OpenAI(base_url=openai_url(server), api_key=key, max_retries=2)
    with no_retry, retrying:
        assert no_retry.beta.assistants.list().data == []
        with pytest.raises(openai.RateLimitError) as raised:
            no_retry.beta.assistants.list()
        wait = int(raised.value.response.headers["Retry-After"])
        assert wait <= 7, wait  # what is left of the window
        started = time.monotonic()
        assert retrying.beta.assistants.list().data == []  # refused, waited, then let in
        assert time.monotonic() - started >= wait - 1.5


def test_the_dashscope_sdk_hands_back_the_refusal(
    server: RunningServer, admin: httpx.Client
) -> None:
    ws, _ = make_workspace(admin, "retry")
    key_id, key = new_key(admin, ws)
    key_limits(admin, key_id, requests_per_minute=1)
    window_ending()
    with sdk_at(server, key):
        assert ok(Assistants.list()).data == []
        started = time.monotonic()
        refused = Assistants.list()
        assert time.monotonic() - started < 5  # answered at once: no retry inside the SDK
        assert refused.status_code == 429 and refused.code == "Throttling", refused
        assert refused.request_id and "Retry after" in refused.message
        time.sleep(left_in_window() + 0.3)  # the application waits as Retry-After said
        assert ok(Assistants.list()).data == []
