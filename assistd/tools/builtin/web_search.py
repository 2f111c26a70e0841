"""`quark_search` (alias `search`): a web search through the configured provider.

The step's output (what DashScope clients read, `json.loads(output)[0]["mainbody"]`) is a
JSON array of `{index, title, url, mainbody, hostname, site_name}`; the model reads the
same results as numbered lines `[n] title (url): snippet`, so it can cite them. A failed
search becomes `{"error": {"code", "message"}}` in the step and a sentence for the model.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from assistd.settings import SearchSettings, Settings
from assistd.tools.base import JsonDict, ToolContext, ToolResult
from assistd.tools.search.base import (
    ProviderError,
    SearchHit,
    SearchProvider,
    dumps,
    failure,
    redact,
)
from assistd.tools.search.brave import Brave
from assistd.tools.search.searxng import SearXNG
from assistd.tools.search.tavily import Tavily

MAX_QUERY_CHARS = 400
MAINBODY_CHARS = 2000  # of each result's text in the step
SNIPPET_CHARS = 300  # of each result's text the model reads
WHAT = "the search"

PROVIDERS: dict[str, type[SearXNG] | type[Brave] | type[Tavily]] = {
    "searxng": SearXNG,
    "brave": Brave,
    "tavily": Tavily,
}


class WebSearch:
    name = "quark_search"
    description = "Searches the web. Returns numbered results with their URLs; cite them as [n]."
    parameters: ClassVar[JsonDict] = {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to search for."}},
        "required": ["query"],
    }

    def __init__(self, settings: SearchSettings, provider: SearchProvider) -> None:
        self.settings = settings
        self.provider = provider

    async def run(self, args: JsonDict, context: ToolContext) -> ToolResult:
        query = " ".join(str(args.get("query", "")).split())
        if not query:
            return failure(WHAT, "invalid_query", "the query is empty; call again with one")
        if len(query) > MAX_QUERY_CHARS:
            return failure(
                WHAT, "invalid_query", f"the query is longer than {MAX_QUERY_CHARS} characters; "
                "call again with a shorter one"
            )  # fmt: skip
        try:
            hits = await self.provider.search(
                context.require_http(), query, self.settings.max_results, self.settings.timeout_s
            )
        except ProviderError as exc:
            return failure(WHAT, exc.code, redact(exc.message, self.settings.key()))
        results = normalise(hits, self.settings.max_results)
        return ToolResult(output=for_model(query, results), display=dumps(results))

    async def close(self) -> None:
        return None


def normalise(hits: list[SearchHit], limit: int) -> list[JsonDict]:
    """The first `limit` hits with distinct URLs, numbered from 1, as clients read them."""
    seen: set[str] = set()
    results: list[JsonDict] = []
    for hit in hits:
        key = _url_key(hit.url)
        if key in seen:
            continue
        seen.add(key)
        hostname = urlsplit(hit.url).hostname or ""
        results.append(
            {
                "index": len(results) + 1,
                "title": hit.title.strip() or hostname,
                "url": hit.url,
                "mainbody": _cut(hit.snippet, MAINBODY_CHARS),
                "hostname": hostname,
                "site_name": hit.site_name or hostname,
            }
        )
        if len(results) == limit:
            break
    return results


def for_model(query: str, results: list[JsonDict]) -> str:
    if not results:
        return f"No web results for '{query}'."
    lines = [
        f"[{r['index']}] {r['title']} ({r['url']}): {_cut(r['mainbody'], SNIPPET_CHARS)}"
        for r in results
    ]
    return "\n".join(lines)


def _url_key(url: str) -> str:
    """URLs that differ only by fragment, a trailing slash or the host's case are one."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}?{parts.query}"


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def factory(settings: Settings) -> WebSearch | None:
    """The search tool of the configured provider; None (not configured) without one."""
    if settings.search is None:
        return None
    provider = PROVIDERS[settings.search.provider](settings.search)
    return WebSearch(settings.search, provider)
