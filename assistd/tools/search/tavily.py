"""Tavily: POST {base}/search with `Authorization: Bearer <key>` (raw HTTP: the
tavily-python client pulls in tiktoken, which downloads its encodings at run time)."""

from __future__ import annotations

from typing import Any

from assistd.settings import SearchSettings
from assistd.tools.http import OutboundClient
from assistd.tools.search.base import (
    ProviderError,
    SearchHit,
    call_provider,
    error_body,
    json_body,
    status_error,
)

DEFAULT_BASE = "https://api.tavily.com"
MAX_RESULTS = 20
# Tavily's own statuses for a plan's or a pay-as-you-go key's limit.
_USAGE_LIMITS = (432, 433)


class Tavily:
    name = "Tavily"

    def __init__(self, settings: SearchSettings) -> None:
        self.url = (settings.base_url or DEFAULT_BASE).rstrip("/") + "/search"
        self.settings = settings

    async def search(
        self, http: OutboundClient, query: str, max_results: int, timeout_s: float
    ) -> list[SearchHit]:
        key = self.settings.key()
        if not key:
            raise ProviderError("not_configured", "Tavily needs an API key, and none is set")
        request: dict[str, Any] = {
            "query": query,
            "max_results": min(MAX_RESULTS, max_results * 2),
            "search_depth": "basic",
            "include_answer": False,
        }
        response = await call_provider(
            http, self.name, "POST", self.url, timeout_s=timeout_s,
            headers={"Authorization": f"Bearer {key}"}, json=request,
        )  # fmt: skip
        if response.status in _USAGE_LIMITS:
            detail = _detail(error_body(response))
            raise ProviderError(
                "rate_limited", f"Tavily's usage limit for this key is reached{detail}"
            )
        if response.status != 200:
            detail = _detail(error_body(response)).removeprefix(": ")
            raise status_error(response, self.name, detail)
        body = json_body(response, self.name)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise ProviderError("bad_response", "Tavily's answer has no `results` list")
        return [
            SearchHit(str(r.get("title") or ""), str(r["url"]), str(r.get("content") or ""))
            for r in results
            if isinstance(r, dict) and r.get("url")
        ]


def _detail(body: Any) -> str:
    """Tavily explains errors as {"detail": {"error": "..."}}."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        detail = detail.get("error")
    return f": {detail}" if detail else ""
