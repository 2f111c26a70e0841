"""`github_search`: GitHub's REST search (repositories, issues, code), on github.com or a
GitHub Enterprise server (`base_url` = https://HOST/api/v3).

The step's output is a JSON array (per kind: repositories `{full_name, url, description,
stars, language, updated_at}`, issues `{title, url, state, repo, updated_at}`, code
`{repo, path, url}`); the model reads numbered lines. GitHub's rate limits arrive as 403
or 429 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds), or with
`retry-after`: a short wait is waited out, a longer one is told to the model.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from assistd.settings import GitHubSettings, Settings
from assistd.tools.base import JsonDict, ToolContext, ToolResult
from assistd.tools.http import OutboundResponse
from assistd.tools.search.base import (
    ProviderError,
    call_provider,
    dumps,
    error_body,
    failure,
    json_body,
    redact,
    retry_after_s,
    standard_delay,
    status_error,
)

KINDS = ("repositories", "issues", "code")
MAX_QUERY_CHARS = 256  # GitHub's own limit, qualifiers aside
DESCRIPTION_CHARS = 200


class GitHubSearch:
    name = "github_search"
    description = (
        "Searches GitHub for repositories, issues and pull requests, or code. The query "
        "takes GitHub's qualifiers (language:python, repo:owner/name, is:issue, stars:>100)."
    )
    parameters: ClassVar[JsonDict] = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "GitHub search query."},
            "type": {
                "type": "string",
                "enum": list(KINDS),
                "description": "What to search (default: repositories).",
            },
        },
        "required": ["query"],
    }

    def __init__(self, settings: GitHubSettings) -> None:
        self.settings = settings
        self.base = (settings.base_url or "https://api.github.com").rstrip("/")

    async def run(self, args: JsonDict, context: ToolContext) -> ToolResult:
        query, kind = str(args.get("query", "")).strip(), str(args.get("type") or KINDS[0])
        token = self.settings.key()
        if not query:
            return _failure("invalid_query", "the query is empty; call again with one")
        if kind == "code" and not token:
            return _failure(
                "auth_required", "GitHub's code search needs a token, and this server has none "
                "(the operator sets github.api_key); search repositories or issues instead"
            )  # fmt: skip
        try:
            body = await self._search(context, kind, query, token)
        except ProviderError as exc:
            return _failure(exc.code, redact(exc.message, token))
        items = [i for i in body.get("items") or [] if isinstance(i, dict)]
        results = [ROWS[kind](item) for item in items[: self.settings.max_results]]
        note = _note(body, len(results))
        return ToolResult(output=for_model(kind, query, results, note), display=dumps(results))

    async def _search(
        self, context: ToolContext, kind: str, query: str, token: str | None
    ) -> dict[str, Any]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "assistd",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = await call_provider(
            context.require_http(), "GitHub", "GET", f"{self.base}/search/{kind}",
            timeout_s=self.settings.timeout_s, headers=headers,
            params={"q": query, "per_page": self.settings.max_results}, delay=_delay,
        )  # fmt: skip
        if response.status != 200:
            raise _error(response, error_body(response))
        body = json_body(response, "GitHub")
        if not isinstance(body, dict):
            raise ProviderError("bad_response", "GitHub's answer is not a JSON object")
        return body

    async def close(self) -> None:
        return None


def _rate_limit_reset(response: OutboundResponse) -> float | None:
    """When a rate limit that GitHub says is used up resets (epoch seconds), or None."""
    headers = response.headers
    if response.status not in (403, 429) or headers.get("x-ratelimit-remaining") != "0":
        return None
    reset = headers.get("x-ratelimit-reset", "")
    return float(reset) if reset.isdigit() else time.time() + 60


def _delay(response: OutboundResponse, attempt: int) -> float | None:
    reset = _rate_limit_reset(response)
    if reset is not None:
        return max(0.0, reset - time.time()) + 0.5  # GitHub's clock may lag ours
    if response.status in (403, 429):
        return retry_after_s(response.headers)  # a secondary limit; a plain 403 has none
    return standard_delay(response, attempt)


def _error(response: OutboundResponse, body: Any) -> ProviderError:
    message = str(body.get("message") or "") if isinstance(body, dict) else ""
    reset = _rate_limit_reset(response)
    wait = retry_after_s(response.headers) if response.status in (403, 429) else None
    if reset is None and wait is not None:
        reset = time.time() + wait
    if reset is not None:
        when = datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        seconds = max(0, round(reset - time.time()))
        return ProviderError(
            "rate_limited", f"GitHub rate limited this server's searches; the limit resets at "
            f"{when} (in {seconds} seconds)"
        )  # fmt: skip
    if response.status == 422:
        errors = body.get("errors") if isinstance(body, dict) else None
        details = [str(e.get("message")) for e in errors or [] if isinstance(e, dict)]
        detail = "; ".join(d for d in details if d and d != "None") or message
        return ProviderError(
            "invalid_query", f"GitHub could not run this query ({detail}); fix the query"
        )
    if response.status == 401:
        return ProviderError("auth_failed", "GitHub refused this server's token (401)")
    return status_error(response, "GitHub", message)


def _failure(code: str, message: str) -> ToolResult:
    return failure("the GitHub search", code, message)


def _note(body: dict[str, Any], shown: int) -> str:
    total = body.get("total_count")
    note = f"{total} results in all; the first {shown} shown." if isinstance(total, int) else ""
    if body.get("incomplete_results"):
        note += " GitHub timed out, so the results may be incomplete."
    return note.strip()


def _cut(value: Any) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1] + "…"


def _repository(item: JsonDict) -> JsonDict:
    return {
        "full_name": item.get("full_name"),
        "url": item.get("html_url"),
        "description": _cut(item.get("description")),
        "stars": item.get("stargazers_count"),
        "language": item.get("language"),
        "updated_at": item.get("updated_at"),
    }


def _issue(item: JsonDict) -> JsonDict:
    repo = str(item.get("repository_url") or "").split("/repos/", 1)[-1]
    return {
        "title": item.get("title"),
        "url": item.get("html_url"),
        "state": item.get("state"),
        "repo": repo or None,
        "updated_at": item.get("updated_at"),
    }


def _code(item: JsonDict) -> JsonDict:
    repository = item.get("repository") if isinstance(item.get("repository"), dict) else {}
    return {
        "repo": (repository or {}).get("full_name"),
        "path": item.get("path"),
        "url": item.get("html_url"),
    }


ROWS = {"repositories": _repository, "issues": _issue, "code": _code}


def _line(kind: str, n: int, r: JsonDict) -> str:
    if kind == "repositories":
        stars = f"{r['stars']} stars" if r["stars"] is not None else None
        extra = ", ".join(str(x) for x in (r["language"], stars) if x)
        return f"[{n}] {r['full_name']} ({r['url']}) [{extra}]: {r['description']}"
    if kind == "issues":
        return f"[{n}] {r['title']} ({r['url']}) [{r['state']}, {r['repo']}]"
    return f"[{n}] {r['repo']}: {r['path']} ({r['url']})"


def for_model(kind: str, query: str, results: list[JsonDict], note: str) -> str:
    if not results:
        return f"No GitHub {kind} found for '{query}'."
    lines = [_line(kind, n, r) for n, r in enumerate(results, 1)]
    return "\n".join([*lines, note] if note else lines)


def factory(settings: Settings) -> GitHubSearch | None:
    """GitHub search when the `[github]` table is set; None (not configured) without it."""
    return None if settings.github is None else GitHubSearch(settings.github)
