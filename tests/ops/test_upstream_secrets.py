"""An upstream model's failure never shows a tenant the upstream's URL, answer or
credentials (defect 2). The tenant's `last_error` says what failed and an error id; the
operator's log has the upstream's own words under the same id, credentials redacted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import dashscope
import httpx
import pytest
from dashscope import Assistants, Runs, Threads

from tests.ops.helpers import server_log, wait_for_log
from tests.runs.conftest import dedicated_server, sdk_on
from tests.runs.helpers import ok, raw_stream, wait_done
from tests.support.fake_model import Fail, FakeModel
from tests.support.sdk import as_json
from tests.support.server import RunningServer, free_port

USER, PASSWORD = "svc-assistd", "pw-9d2e7c41b8"
API_KEY = "sk-live-4f9b2c7e1a3d5f60aa"
INTERNAL_HOST = "llm-gw-7.internal.corp.example"
UPSTREAM_SAYS = f"Incorrect API key provided: {API_KEY}. Served by {INTERNAL_HOST}:8443"
# Nothing of these may reach a tenant; the first two reach no one.
CREDENTIALS = (PASSWORD, API_KEY)
UPSTREAM_WORDS = (INTERNAL_HOST, "Incorrect API key", USER)
ERROR_ID = re.compile(r"\(error id (err_[0-9a-f]{8,})\)")


@pytest.fixture(scope="module")
def behind_credentials(
    fake_model: FakeModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server whose model route carries a password in its URL and an API key."""
    host = fake_model.base_url.split("://", 1)[1]
    with dedicated_server(
        "sqlite", tmp_path_factory.mktemp("credentials"),
        ASSISTD_OPENAI_BASE_URL=f"http://{USER}:{PASSWORD}@{host}", ASSISTD_OPENAI_API_KEY=API_KEY,
    ) as server:  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def unreachable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose model route, credentials in its URL, points at a closed port."""
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/v1"
    with dedicated_server(
        "sqlite", tmp_path_factory.mktemp("unreachable"),
        ASSISTD_OPENAI_BASE_URL=url, ASSISTD_OPENAI_API_KEY=API_KEY,
    ) as server:  # fmt: skip
        yield server


def _seen_by_tenant(server: RunningServer, model: str) -> tuple[dict[str, str], list[str]]:
    """Runs `model` once polled and once streamed; returns the run's last_error and every
    text the tenant received about the runs (SDK objects, raw JSON, the SSE stream)."""
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hello?"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    done = wait_done(thread.id, run.id)
    assert done.status == "failed", as_json(done)
    texts = [json.dumps(as_json(done))]
    headers = {"Authorization": f"Bearer {dashscope.api_key}"}
    with httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30) as client:
        for path in (f"/threads/{thread.id}/runs/{run.id}", f"/threads/{thread.id}/runs"):
            answer = client.get(path)
            assert answer.status_code == 200, answer.text
            texts.append(answer.text)
    streamed = raw_stream(
        server, f"/threads/{thread.id}/runs", {"assistant_id": assistant.id, "stream": True}
    )
    events = dict(streamed.events())
    assert "thread.run.failed" in events, streamed.lines
    texts.append("\n".join(streamed.lines))
    assert events["thread.run.failed"]["last_error"]["code"] == done.last_error["code"]
    return done.last_error, texts


def _assert_clean(texts: list[str]) -> None:
    for text in texts:
        for secret in (*CREDENTIALS, *UPSTREAM_WORDS):
            assert secret not in text, (secret, text)


def test_an_upstream_401_is_told_in_our_words(
    behind_credentials: RunningServer, fake_model: FakeModel
) -> None:
    model = fake_model.new_model(Fail(401, UPSTREAM_SAYS), Fail(401, UPSTREAM_SAYS))
    with sdk_on(behind_credentials):
        error, texts = _seen_by_tenant(behind_credentials, model)
    assert len(fake_model.requests(model)) == 2  # the upstream was asked, and said no
    _assert_clean(texts)
    assert error["code"] == "model_error", error
    assert "401" in error["message"] and "credentials" in error["message"], error
    found = ERROR_ID.search(error["message"])
    assert found, error
    # The operator's log has what the upstream said, under the same id, keys redacted.
    log = wait_for_log(behind_credentials, lambda text: found.group(1) in text)
    (line,) = [line for line in log.splitlines() if found.group(1) in line]
    assert re.search(r"Incorrect API key provided: (sk-)?\*\*\*", line), line
    assert INTERNAL_HOST in line and "401" in line, line
    for secret in CREDENTIALS:
        assert secret not in log, secret


def test_an_unreachable_upstream_does_not_show_its_url(unreachable: RunningServer) -> None:
    with sdk_on(unreachable):
        error, texts = _seen_by_tenant(unreachable, "qwen-max")
    _assert_clean(texts)
    for text in texts:
        assert "127.0.0.1" not in text, text  # not even the endpoint's address
    assert error["code"] == "model_unreachable", error
    assert error["message"].startswith("The model endpoint could not be reached"), error
    found = ERROR_ID.search(error["message"])
    assert found, error
    log = wait_for_log(unreachable, lambda text: found.group(1) in text)
    (line,) = [line for line in log.splitlines() if found.group(1) in line]
    assert "http://***@127.0.0.1:" in line, line  # which endpoint, without its password
    for secret in CREDENTIALS:
        assert secret not in server_log(unreachable), secret
