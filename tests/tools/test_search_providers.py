"""The search tools through the real tool registry (entry points, argument checks, the
guarded client) against local servers speaking each provider's protocol: what the step
shows, what the model reads, retries and how each failure is explained. The run-level
flows through the dashscope SDK are in tests/runs/test_search_tools.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from assistd.settings import Settings
from assistd.tools.base import ToolContext, ToolResult
from assistd.tools.registry import ToolRegistry
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

KEY = "brave-key-0123456789"
CONTEXT = ToolContext("ws", "thread", "run")


async def call(settings: Settings, kind: str, **args: Any) -> ToolResult:
    registry = ToolRegistry(settings)
    try:
        offer = await registry.offer([{"type": kind}], CONTEXT)
        if kind not in offer.tools:  # not configured: what a run would tell the model
            return ToolResult(output=f"unavailable: {offer.unavailable}")
        return await registry.run(offer.tools[kind], json.dumps(args), CONTEXT)
    finally:
        await registry.close()


def error_of(result: ToolResult) -> dict[str, str]:
    assert result.display is not None
    error: dict[str, str] = json.loads(result.display)["error"]
    assert result.output.startswith("Error: "), result.output
    return error


@pytest.fixture(scope="module")
def searxng() -> Any:
    with serve(FakeSearXNG()) as fake:
        yield fake


def searxng_settings(url: str, **more: Any) -> Settings:
    return Settings(search={"provider": "searxng", "base_url": url, **more})


async def test_searxng_results_are_numbered_deduplicated_and_capped(searxng: Any) -> None:
    result = await call(searxng_settings(searxng.url, max_results=4), "quark_search", query="cats")
    assert result.display is not None
    shown = json.loads(result.display)
    assert [r["index"] for r in shown] == [1, 2, 3, 4]
    assert [r["url"] for r in shown] == [result_url("cats", i) for i in (1, 2, 3, 4)]
    assert shown[0] == {
        "index": 1, "title": "cats result 1", "url": result_url("cats", 1),
        "mainbody": snippet("cats", 1), "hostname": "example.org", "site_name": "example.org",
    }  # fmt: skip
    lines = result.output.splitlines()
    assert lines[0] == f"[1] cats result 1 ({result_url('cats', 1)}): {snippet('cats', 1)}"
    assert len(lines) == 4


async def test_searxng_gets_the_configured_language_and_safesearch(searxng: Any) -> None:
    settings = searxng_settings(searxng.url, language="fr", safesearch="strict")
    await call(settings, "search", query="chats")
    assert searxng.seen[-1].path == "/search?q=chats&format=json&language=fr&safesearch=2"


async def test_searxng_without_json_format_says_how_to_enable_it(searxng: Any) -> None:
    searxng.json_enabled = False
    try:
        result = await call(searxng_settings(searxng.url), "quark_search", query="cats")
    finally:
        searxng.json_enabled = True
    error = error_of(result)
    assert error["code"] == "json_disabled"
    assert "search.formats" in error["message"] and "settings.yml" in error["message"]
    assert "settings.yml" in result.output


async def test_429_and_5xx_are_retried_after_retry_after(searxng: Any) -> None:
    before = len(searxng.seen)
    searxng.then(Answer(503, b"busy"), Answer(429, b"", {"Retry-After": "0"}))
    result = await call(searxng_settings(searxng.url), "quark_search", query="retry")
    assert json.loads(result.display or "")[0]["title"] == "retry result 1"
    assert len(searxng.seen) - before == 3


async def test_a_long_retry_after_is_reported_not_waited(searxng: Any) -> None:
    before = len(searxng.seen)
    searxng.then(Answer(429, b"", {"Retry-After": "120"}))
    result = await call(searxng_settings(searxng.url), "quark_search", query="later")
    assert error_of(result) == {
        "code": "rate_limited", "message": "SearXNG is rate limiting searches; try again in "
        "120 seconds",
    }  # fmt: skip
    assert len(searxng.seen) - before == 1


async def test_a_server_that_does_not_answer_in_time_is_a_timeout(searxng: Any) -> None:
    searxng.then(Answer(200, b"{}", stall_s=3))
    result = await call(searxng_settings(searxng.url, timeout_s=0.5), "quark_search", query="x")
    assert error_of(result)["code"] == "timeout"
    assert "0.5 seconds" in result.output


async def test_an_unreachable_provider_is_explained() -> None:
    with serve(FakeSearXNG()) as gone:
        url = gone.url
    result = await call(searxng_settings(url), "quark_search", query="x")
    assert error_of(result)["code"] == "unreachable"


async def test_searxng_engines_that_did_not_answer_are_named(searxng: Any) -> None:
    body = {"query": "x", "results": [], "unresponsive_engines": [["google", "timeout"]]}
    searxng.then(Answer(200, json.dumps(body).encode()))
    result = await call(searxng_settings(searxng.url), "quark_search", query="x")
    assert error_of(result) == {
        "code": "unavailable",
        "message": "SearXNG found nothing: its engines did not answer (google timeout)",
    }


async def test_no_results_is_an_empty_array_and_a_sentence(searxng: Any) -> None:
    searxng.then(Answer(200, b'{"query": "zzz", "results": [], "unresponsive_engines": []}'))
    result = await call(searxng_settings(searxng.url), "quark_search", query="zzz")
    assert (result.display, result.output) == ("[]", "No web results for 'zzz'.")


async def test_an_empty_query_is_sent_back_to_the_model(searxng: Any) -> None:
    result = await call(searxng_settings(searxng.url), "quark_search", query="   ")
    assert error_of(result)["code"] == "invalid_query"


async def test_brave_strips_its_markup_and_keeps_the_site_name() -> None:
    with serve(FakeBrave(KEY)) as brave:
        settings = Settings(search={"provider": "brave", "base_url": brave.url, "api_key": KEY,
                                    "language": "en", "safesearch": "off"})  # fmt: skip
        result = await call(settings, "quark_search", query="cats")
        first = json.loads(result.display or "")[0]
        assert first["title"] == "cats result 1 & more"
        assert first["mainbody"] == f"cats: {snippet('cats', 1)}"
        assert first["site_name"] == "Example Org"
        assert "q=cats&count=10&search_lang=en&safesearch=off" in brave.seen[-1].path
        assert brave.seen[-1].headers["X-Subscription-Token"] == KEY

        page = Answer(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"})
        brave.then(page, page, page)
        result = await call(settings, "quark_search", query="cats")
        assert error_of(result) == {"code": "unavailable", "message": "Brave failed (HTTP 502)"}

        brave.then(Answer(401, b'{"type":"ErrorResponse","error":{"detail":"bad token"}}'))
        result = await call(settings, "quark_search", query="cats")
        assert error_of(result)["code"] == "auth_failed"
        assert KEY not in result.output + (result.display or "")


async def test_brave_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BRAVE_KEY", KEY)
    with serve(FakeBrave(KEY)) as brave:
        settings = Settings(search={"provider": "brave", "base_url": brave.url,
                                    "api_key_env": "TEST_BRAVE_KEY"})  # fmt: skip
        result = await call(settings, "quark_search", query="dogs")
        assert json.loads(result.display or "")[0]["url"] == result_url("dogs", 1)


async def test_tavily_with_bearer_key_and_its_usage_limit() -> None:
    with serve(FakeTavily(KEY)) as tavily:
        settings = Settings(search={"provider": "tavily", "base_url": tavily.url, "api_key": KEY})
        result = await call(settings, "quark_search", query="birds")
        assert [r["index"] for r in json.loads(result.display or "")] == [1, 2, 3, 4, 5]
        sent = json.loads(tavily.seen[-1].body)
        assert sent["query"] == "birds" and "api_key" not in sent

        tavily.then(Answer(432, b'{"detail":{"error":"This request exceeds your plan."}}'))
        result = await call(settings, "quark_search", query="birds")
        assert error_of(result) == {
            "code": "rate_limited",
            "message": "Tavily's usage limit for this key is reached: This request exceeds "
            "your plan.",
        }


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"provider": "searxng"}, "set base_url"),
        ({"provider": "brave"}, "api_key"),
        ({"provider": "tavily", "base_url": "http://x"}, "api_key"),
    ],
)
def test_an_incomplete_search_section_is_refused_at_start(
    section: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings(search=section)


async def test_without_a_section_the_tools_are_not_configured() -> None:
    registry = ToolRegistry(Settings())
    try:
        tools = [{"type": "quark_search"}, {"type": "github_search"}]
        offer = await registry.offer(tools, CONTEXT)
        assert offer.tools == {} and offer.unavailable == ["quark_search", "github_search"]
    finally:
        await registry.close()


# ---- GitHub -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def github() -> Any:
    with serve(FakeGitHub("ghp-token-123")) as fake:
        yield fake


def github_settings(url: str, token: str | None = "ghp-token-123") -> Settings:
    return Settings(github={"base_url": f"{url}/api/v3", "api_key": token, "max_results": 2})


async def test_github_repositories_by_default(github: Any) -> None:
    result = await call(github_settings(github.url), "github_search", query="assistant api")
    assert json.loads(result.display or "") == [
        {"full_name": "octo/assistant-api-1", "url": "https://github.com/octo/assistant-api-1",
         "description": "Repository 1 about assistant api", "stars": 100, "language": "Python",
         "updated_at": "2025-01-01T00:00:00Z"},
        {"full_name": "octo/assistant-api-2", "url": "https://github.com/octo/assistant-api-2",
         "description": "Repository 2 about assistant api", "stars": 200, "language": "Python",
         "updated_at": "2025-01-02T00:00:00Z"},
    ]  # fmt: skip
    assert result.output.splitlines() == [
        "[1] octo/assistant-api-1 (https://github.com/octo/assistant-api-1) [Python, 100 "
        "stars]: Repository 1 about assistant api",
        "[2] octo/assistant-api-2 (https://github.com/octo/assistant-api-2) [Python, 200 "
        "stars]: Repository 2 about assistant api",
        "42 results in all; the first 2 shown.",
    ]
    seen = github.seen[-1]
    assert seen.path == "/api/v3/search/repositories?q=assistant+api&per_page=2"
    assert seen.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert seen.headers["Authorization"] == "Bearer ghp-token-123"


async def test_github_issues_and_code(github: Any) -> None:
    issues = await call(github_settings(github.url), "github_search", query="bug", type="issues")
    assert json.loads(issues.display or "")[0] == {
        "title": "Issue 1: bug", "url": "https://github.com/octo/app/issues/1", "state": "open",
        "repo": "octo/app", "updated_at": "2025-02-01T00:00:00Z",
    }  # fmt: skip
    code = await call(github_settings(github.url), "github_search", query="def x", type="code")
    assert json.loads(code.display or "")[1] == {
        "repo": "octo/app", "path": "src/f2.py",
        "url": "https://github.com/octo/app/blob/main/src/f2.py",
    }  # fmt: skip
    assert code.output.startswith("[1] octo/app: src/f1.py (https://github.com/")


async def test_github_code_search_without_a_token_says_it_needs_one(github: Any) -> None:
    before = len(github.seen)
    result = await call(github_settings(github.url, None), "github_search", query="x", type="code")
    assert error_of(result)["code"] == "auth_required"
    assert "github.api_key" in result.output
    assert len(github.seen) == before  # not even tried
    anonymous = await call(github_settings(github.url, None), "github_search", query="x")
    assert json.loads(anonymous.display or "")[0]["full_name"] == "octo/x-1"
    assert "Authorization" not in github.seen[-1].headers


async def test_github_rate_limit_is_explained_with_its_reset(github: Any) -> None:
    github.then(rate_limited(3600))
    result = await call(github_settings(github.url), "github_search", query="x")
    error = error_of(result)
    assert error["code"] == "rate_limited"
    assert "resets at" in error["message"] and "UTC" in error["message"]
    assert "resets at" in result.output


async def test_github_rate_limit_about_to_reset_is_waited_out(github: Any) -> None:
    before = len(github.seen)
    github.then(rate_limited(0))
    result = await call(github_settings(github.url), "github_search", query="soon")
    assert json.loads(result.display or "")[0]["full_name"] == "octo/soon-1"
    assert len(github.seen) - before == 2


async def test_github_secondary_limit_and_bad_queries(github: Any) -> None:
    github.then(Answer(429, b'{"message":"You have exceeded a secondary rate limit."}',
                       {"Content-Type": "application/json", "Retry-After": "60"}))  # fmt: skip
    limited = await call(github_settings(github.url), "github_search", query="x")
    assert error_of(limited)["code"] == "rate_limited"
    bad = await call(github_settings(github.url), "github_search", query="is:nonsense")
    assert error_of(bad) == {
        "code": "invalid_query", "message": "GitHub could not run this query (The search "
        "contains an unknown qualifier.); fix the query",
    }  # fmt: skip
    wrong = await call(github_settings(github.url, "wrong-token"), "github_search", query="x")
    assert error_of(wrong)["code"] == "auth_failed"
    assert "wrong-token" not in wrong.output + (wrong.display or "")


async def test_github_type_outside_the_enum_is_sent_back(github: Any) -> None:
    result = await call(github_settings(github.url), "github_search", query="x", type="users")
    assert result.output.startswith("Invalid arguments at 'type'")
