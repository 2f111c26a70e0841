"""Web search and GitHub search in runs, through the real dashscope SDK: the scripted model
calls `quark_search` / `search` / `github_search`, the server calls a local stand-in of the
configured provider (tests.support.fake_search), the step's output is the JSON array
DashScope's clients index (`json.loads(call['quark_search']['output'])[0]['mainbody']`), and
the model's next request carries the results as numbered lines it can cite. A failed
search becomes an output, and the run goes on to an answer.

One server per provider configuration, on SQLite only: storage is not what these test
(the `server` fixture covers both backends elsewhere)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashscope import Assistants, Runs, Steps, Threads

from tests.runs.conftest import dedicated_server, sdk_on
from tests.runs.helpers import ok, settle
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.fake_search import (
    FakeBrave,
    FakeGitHub,
    FakeSearXNG,
    FakeTavily,
    rate_limited,
    result_url,
    serve,
    snippet,
)
from tests.support.listener import Answer
from tests.support.sdk import as_json
from tests.support.server import RunningServer

BRAVE_KEY = "brave-secret-key-4f1d2c"
TAVILY_KEY = "tvly-secret-key-9a8b7c"
GITHUB_TOKEN = "ghp_secret_token_5e6f7a"


@pytest.fixture(scope="module")
def searxng() -> Iterator[FakeSearXNG]:
    with serve(FakeSearXNG()) as fake:
        yield fake


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with serve(FakeGitHub(GITHUB_TOKEN)) as fake:
        yield fake


def _server(tmp: pytest.TempPathFactory, fake_model: FakeModel, name: str, **sections: Any) -> Any:
    env = {f"ASSISTD_{k.upper()}": json.dumps(v) for k, v in sections.items()}
    return dedicated_server(
        "sqlite", tmp.mktemp(name), ASSISTD_OPENAI_BASE_URL=fake_model.base_url, **env
    )


@pytest.fixture(scope="module")
def main_server(
    tmp_path_factory: pytest.TempPathFactory,
    fake_model: FakeModel,
    searxng: FakeSearXNG,
    github: FakeGitHub,
) -> Iterator[RunningServer]:
    """SearXNG search and GitHub (Enterprise-style base URL, with a token)."""
    with _server(
        tmp_path_factory, fake_model, "searxng",
        search={"provider": "searxng", "base_url": searxng.url, "max_results": 3},
        github={"base_url": f"{github.url}/api/v3", "api_key": GITHUB_TOKEN, "max_results": 2},
    ) as running:  # fmt: skip
        yield running


@pytest.fixture
def on_main(main_server: RunningServer) -> Iterator[str]:
    with sdk_on(main_server) as workspace:
        yield workspace


def run_with(
    fake_model: FakeModel, tool: str, *turns: Any, question: str = "Search, please."
) -> tuple[Any, list[dict[str, Any]], str]:
    """One run of an assistant with `tool` on a model scripted with `turns`: the run once
    ended, its tool calls as the SDK gives them (plain dicts), and the model's name."""
    model = fake_model.new_model(*turns)
    assistant = ok(Assistants.create(model=model, tools=[{"type": tool}]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": question}]))
    run = settle(thread.id, ok(Runs.create(thread.id, assistant_id=assistant.id)).id)
    assert run.status == "completed", as_json(run)
    steps = ok(Steps.list(run.id, thread_id=thread.id, order="asc")).data
    calls = [c for s in steps if s.type == "tool_calls" for c in s.step_details.tool_calls]
    return run, calls, model


def told_model(fake_model: FakeModel, model: str) -> list[str]:
    """The tool outputs in the model's latest request."""
    latest = fake_model.requests(model)[-1]
    return [str(m["content"]) for m in latest["messages"] if m.get("role") == "tool"]


@pytest.mark.parametrize("tool", ["quark_search", "search"])
def test_search_step_shows_the_results_and_the_model_reads_numbered_lines(
    on_main: str, fake_model: FakeModel, searxng: FakeSearXNG, tool: str
) -> None:
    _, [call], model = run_with(
        fake_model, tool, ToolCalls([(tool, {"query": "ragdoll cats"})]), Reply("They are [1].")
    )
    assert call["type"] == tool
    assert json.loads(call[tool]["input"]) == {"query": "ragdoll cats"}
    # What the vendor guide's readers do with the step.
    assert json.loads(call[tool]["output"])[0]["mainbody"] == snippet("ragdoll cats", 1)
    results = json.loads(call[tool]["output"])
    assert [(r["index"], r["url"], r["hostname"]) for r in results] == [
        (i, result_url("ragdoll cats", i), "example.org") for i in (1, 2, 3)
    ]
    [numbered] = told_model(fake_model, model)
    assert numbered.splitlines()[0] == (
        f"[1] ragdoll cats result 1 ({result_url('ragdoll cats', 1)}): {snippet('ragdoll cats', 1)}"
    )
    assert len(numbered.splitlines()) == 3
    assert "format=json" in searxng.seen[-1].path


def test_a_failed_search_is_an_output_and_the_run_goes_on(
    on_main: str, fake_model: FakeModel, searxng: FakeSearXNG
) -> None:
    searxng.json_enabled = False
    try:
        _, [call], model = run_with(
            fake_model, "quark_search",
            ToolCalls([("quark_search", {"query": "cats"})]), Reply("I could not search."),
        )  # fmt: skip
    finally:
        searxng.json_enabled = True
    error = json.loads(call["quark_search"]["output"])["error"]
    assert error["code"] == "json_disabled" and "settings.yml" in error["message"]
    [told] = told_model(fake_model, model)
    assert told.startswith("Error: the search failed: SearXNG refused the JSON format")


def test_github_search_answers_and_its_rate_limit_is_explained(
    on_main: str, fake_model: FakeModel, github: FakeGitHub
) -> None:
    github.then(rate_limited(3600))
    _, calls, model = run_with(
        fake_model, "github_search",
        ToolCalls([("github_search", {"query": "assistd"})]),
        ToolCalls([("github_search", {"query": "crash", "type": "issues"})]),
        Reply("Found it."),
    )  # fmt: skip
    limited, issues = (json.loads(c["github_search"]["output"]) for c in calls)
    assert limited["error"]["code"] == "rate_limited"
    assert "resets at" in limited["error"]["message"]
    assert issues[0] == {
        "title": "Issue 1: crash", "url": "https://github.com/octo/app/issues/1",
        "state": "open", "repo": "octo/app", "updated_at": "2025-02-01T00:00:00Z",
    }  # fmt: skip
    first, second = told_model(fake_model, model)
    assert first.startswith("Error: the GitHub search failed: GitHub rate limited")
    assert second.startswith("[1] Issue 1: crash (https://github.com/octo/app/issues/1)")
    assert github.seen[-1].headers["Authorization"] == f"Bearer {GITHUB_TOKEN}"


UNAUTHORIZED = {
    "brave": b'{"type":"ErrorResponse","error":{"status":401,"detail":"The provided '
    b'subscription token is invalid."}}',
    "tavily": b'{"detail":{"error":"Unauthorized: missing or invalid API key."}}',
}


@pytest.mark.parametrize(
    ("provider", "fake"),
    [("brave", FakeBrave(BRAVE_KEY)), ("tavily", FakeTavily(TAVILY_KEY))],
    ids=["brave", "tavily"],
)
def test_brave_and_tavily_answer_and_their_keys_stay_secret(
    tmp_path_factory: pytest.TempPathFactory,
    fake_model: FakeModel,
    provider: str,
    fake: FakeBrave | FakeTavily,
) -> None:
    with (
        serve(fake),
        _server(
            tmp_path_factory, fake_model, provider,
            search={"provider": provider, "base_url": fake.url, "api_key": fake.key},
        ) as server,
        sdk_on(server),
    ):  # fmt: skip
        fake.then(Answer(401, UNAUTHORIZED[provider], {"Content-Type": "application/json"}))
        _, [refused, answered], model = run_with(
            fake_model, "quark_search",
            ToolCalls([("quark_search", {"query": "cats"})]),
            ToolCalls([("quark_search", {"query": "dogs"})]),
            Reply("Done."),
        )  # fmt: skip
        error = json.loads(refused["quark_search"]["output"])["error"]
        assert error["code"] == "auth_failed", error
        results = json.loads(answered["quark_search"]["output"])
        assert results[0]["url"] == result_url("dogs", 1)
        assert results[0]["mainbody"].endswith(snippet("dogs", 1))  # Brave's "<q>: " prefix
        assert "<strong>" not in answered["quark_search"]["output"]
        assert [r["index"] for r in results] == [1, 2, 3, 4, 5]
        seen = fake.seen[-1]
        sent = seen.headers.get("X-Subscription-Token") or seen.headers["Authorization"]
        assert sent.removeprefix("Bearer ") == fake.key
        # The key is in no step, in nothing the model was sent, in no log line.
        everything = json.dumps([refused, answered]) + json.dumps(fake_model.requests(model))
        logs = "".join(p.read_text() for p in Path(server.data_dir).glob("*.log"))
        assert fake.key not in everything + logs
