"""Local stand-ins for the search providers, each a real HTTP server (tests.support.listener)
speaking its provider's protocol: SearXNG's JSON API, Brave's web search, Tavily's search
and GitHub's REST search. Each checks the credentials it gets the way its provider does,
and records every request. Results are made from the query, so a test knows what to expect:
result i of query q is titled "q result i", at https://example.org/<q-slug>/<i>.

`then(Answer(...))` queues answers given before the normal ones (a 503, a 429 with
Retry-After), to script failures and retries.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from tests.support.listener import Answer, Listener, Seen, listener

JSON = {"Content-Type": "application/json; charset=utf-8"}


def result_url(query: str, i: int) -> str:
    return f"https://example.org/{re.sub(r'[^a-z0-9]+', '-', query.lower()).strip('-')}/{i}"


def snippet(query: str, i: int) -> str:
    return f"All about {query}, part {i}."


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(body).encode(), {**JSON, **(headers or {})})


class FakeProvider:
    """A provider's behaviour as a function of the request; queued answers come first."""

    results = 8  # hits per answer, one of them a duplicate URL

    def __init__(self) -> None:
        self.queued: deque[Answer] = deque()
        self.lock = threading.Lock()
        self.listening: Listener | None = None

    def then(self, *answers: Answer) -> None:
        with self.lock:
            self.queued.extend(answers)

    def __call__(self, seen: Seen) -> Answer:
        with self.lock:
            if self.queued:
                return self.queued.popleft()
        return self.answer(seen, parse_qs(urlsplit(seen.path).query))

    def answer(self, seen: Seen, query: dict[str, list[str]]) -> Answer:
        raise NotImplementedError

    @property
    def url(self) -> str:
        assert self.listening is not None
        return self.listening.url

    @property
    def seen(self) -> list[Seen]:
        assert self.listening is not None
        return self.listening.seen

    def hits(self, query: str) -> list[tuple[str, str, str]]:
        """(title, url, text) of each hit; the third repeats the first's URL (with a
        fragment and a trailing slash), which the tool must drop."""
        made = [(f"{query} result {i}", result_url(query, i), snippet(query, i))
                for i in range(1, self.results)]  # fmt: skip
        made.insert(2, (f"{query} again", result_url(query, 1) + "/#top", "A duplicate."))
        return made


class FakeSearXNG(FakeProvider):
    """GET /search?q=...&format=json; 403 (an HTML page) while `json_enabled` is False, as
    a stock SearXNG whose settings.yml lists only the html format."""

    json_enabled = True

    def answer(self, seen: Seen, query: dict[str, list[str]]) -> Answer:
        path = urlsplit(seen.path).path
        if seen.method != "GET" or path != "/search" or "q" not in query:
            return Answer(404, b"Not Found", {"Content-Type": "text/html"})
        if query.get("format") != ["json"] or not self.json_enabled:
            return Answer(403, b"<html><title>403 Forbidden</title></html>",
                          {"Content-Type": "text/html"})  # fmt: skip
        q = query["q"][0]
        results = [
            {"url": url, "title": title, "content": text, "engine": "duckduckgo",
             "parsed_url": list(urlsplit(url)) , "template": "default.html",
             "engines": ["duckduckgo"], "positions": [n], "score": 1.0 / n,
             "category": "general", "publishedDate": None}
            for n, (title, url, text) in enumerate(self.hits(q), 1)
        ]  # fmt: skip
        return _json(200, {
            "query": q, "number_of_results": 0, "results": results, "answers": [],
            "corrections": [], "infoboxes": [], "suggestions": [], "unresponsive_engines": [],
        })  # fmt: skip


class FakeBrave(FakeProvider):
    """GET /res/v1/web/search with X-Subscription-Token; titles and descriptions mark
    the query's words with <strong>, as Brave does."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def answer(self, seen: Seen, query: dict[str, list[str]]) -> Answer:
        if urlsplit(seen.path).path != "/res/v1/web/search" or seen.method != "GET":
            return _json(404, {"type": "ErrorResponse", "error": {"status": 404}})
        if seen.headers.get("X-Subscription-Token") != self.key:
            return _json(401, {"type": "ErrorResponse", "error": {
                "id": "0", "status": 401, "code": "SUBSCRIPTION_TOKEN_INVALID",
                "detail": "The provided subscription token is invalid."}})  # fmt: skip
        q = query["q"][0]
        count = int(query.get("count", ["20"])[0])
        results = [
            {"title": title.replace(q, f"<strong>{q}</strong>") + " &amp; more", "url": url,
             "is_source_local": False, "description": f"<strong>{q}</strong>: {text}",
             "profile": {"name": "Example Org", "url": url, "long_name": "example.org"},
             "language": "en", "family_friendly": True, "type": "search_result",
             "subtype": "generic",
             "meta_url": {"scheme": "https", "netloc": "example.org",
                          "hostname": "example.org", "path": urlsplit(url).path}}
            for title, url, text in self.hits(q)[:count]
        ]  # fmt: skip
        limits = {"X-RateLimit-Limit": "1, 2000", "X-RateLimit-Remaining": "0, 1500",
                  "X-RateLimit-Reset": "1, 1419704"}  # fmt: skip
        return _json(200, {
            "query": {"original": q}, "type": "search",
            "web": {"type": "search", "results": results, "family_friendly": True},
        }, limits)  # fmt: skip


class FakeTavily(FakeProvider):
    """POST /search {query, max_results, ...} with Authorization: Bearer <key>."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def answer(self, seen: Seen, query: dict[str, list[str]]) -> Answer:
        if seen.path != "/search" or seen.method != "POST":
            return _json(404, {"detail": "Not Found"})
        if seen.headers.get("Authorization") != f"Bearer {self.key}":
            return _json(401, {"detail": {"error": "Unauthorized: missing or invalid API key."}})
        body = json.loads(seen.body)
        q, limit = body["query"], int(body.get("max_results", 5))
        results = [{"title": title, "url": url, "content": text, "score": 0.9, "raw_content": None}
                   for title, url, text in self.hits(q)[:limit]]  # fmt: skip
        return _json(200, {"query": q, "follow_up_questions": None, "answer": None,
                           "images": [], "results": results, "response_time": 0.01})  # fmt: skip


class FakeGitHub(FakeProvider):
    """GET {/api/v3}/search/repositories|issues|code, as GitHub Enterprise serves it. Checks
    the headers GitHub documents; a wrong token gets 401, code search without one 401."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def answer(self, seen: Seen, query: dict[str, list[str]]) -> Answer:
        match = re.fullmatch(r"/api/v3/search/(repositories|issues|code)", urlsplit(seen.path).path)
        if match is None or seen.method != "GET":
            return _json(404, {"message": "Not Found"})
        if seen.headers.get("Accept") != "application/vnd.github+json" or not seen.headers.get(
            "User-Agent"
        ):
            return _json(400, {"message": "missing Accept or User-Agent header"})
        auth = seen.headers.get("Authorization")
        if auth is not None and auth != f"Bearer {self.token}":
            return _json(401, {"message": "Bad credentials"})
        kind, q = match.group(1), query["q"][0]
        if kind == "code" and auth is None:
            return _json(401, {"message": "Requires authentication"})
        if "is:nonsense" in q:
            return _json(422, {"message": "Validation Failed", "errors": [{
                "message": "The search contains an unknown qualifier.", "resource": "Search",
                "field": "q", "code": "invalid"}]})  # fmt: skip
        per_page = int(query.get("per_page", ["30"])[0])
        items = [ITEMS[kind](q, n) for n in range(1, 4)][:per_page]
        return _json(
            200,
            {"total_count": 42, "incomplete_results": False, "items": items},
            {"x-ratelimit-remaining": "29", "x-ratelimit-resource": "search"},
        )


def rate_limited(seconds: int = 3600) -> Answer:
    """GitHub's primary rate limit answer: 403, remaining 0, the reset in epoch seconds."""
    reset = str(int(time.time()) + seconds)
    return _json(403, {
        "message": "API rate limit exceeded for 127.0.0.1.",
        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
    }, {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0", "x-ratelimit-used": "10",
        "x-ratelimit-reset": reset, "x-ratelimit-resource": "search"})  # fmt: skip


def _repository(q: str, n: int) -> dict[str, Any]:
    name = f"octo/{re.sub(r'[^a-z0-9]+', '-', q.lower()).strip('-')}-{n}"
    return {"id": n, "name": name.split("/")[1], "full_name": name, "private": False,
            "owner": {"login": "octo"}, "html_url": f"https://github.com/{name}",
            "description": f"Repository {n} about {q}", "fork": False,
            "url": f"https://api.github.com/repos/{name}", "stargazers_count": 100 * n,
            "watchers_count": 1, "language": "Python", "forks_count": 0,
            "updated_at": f"2025-01-0{n}T00:00:00Z", "score": 1.0}  # fmt: skip


def _issue(q: str, n: int) -> dict[str, Any]:
    return {"id": n, "number": n, "title": f"Issue {n}: {q}", "state": "open",
            "url": f"https://api.github.com/repos/octo/app/issues/{n}",
            "repository_url": "https://api.github.com/repos/octo/app",
            "html_url": f"https://github.com/octo/app/issues/{n}", "user": {"login": "u"},
            "labels": [], "comments": 0, "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-02-01T00:00:00Z", "body": "...", "score": 1.0}  # fmt: skip


def _code(q: str, n: int) -> dict[str, Any]:
    return {"name": f"f{n}.py", "path": f"src/f{n}.py", "sha": "0" * 40,
            "url": f"https://api.github.com/repositories/1/contents/src/f{n}.py",
            "html_url": f"https://github.com/octo/app/blob/main/src/f{n}.py",
            "repository": {"id": 1, "full_name": "octo/app"}, "score": 1.0}  # fmt: skip


ITEMS = {"repositories": _repository, "issues": _issue, "code": _code}


F = TypeVar("F", bound=FakeProvider)


@contextmanager
def serve(fake: F) -> Iterator[F]:
    with listener(fake) as running:
        fake.listening = running
        yield fake
