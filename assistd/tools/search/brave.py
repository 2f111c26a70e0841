"""Brave Search API: GET {base}/res/v1/web/search with the X-Subscription-Token header.

Brave marks the query's words in titles and descriptions with <strong>; those tags (and
the HTML entities around them) are taken out.
"""

from __future__ import annotations

import html
import re
from typing import Any

from assistd.settings import SearchSettings
from assistd.tools.http import OutboundClient, OutboundResponse
from assistd.tools.search.base import (
    ProviderError,
    SearchHit,
    call_provider,
    error_body,
    json_body,
    standard_delay,
    status_error,
)

DEFAULT_BASE = "https://api.search.brave.com"
MAX_COUNT = 20  # Brave's own cap per request
_TAGS = re.compile(r"</?[a-zA-Z][^>]*>")


class Brave:
    name = "Brave"

    def __init__(self, settings: SearchSettings) -> None:
        self.url = (settings.base_url or DEFAULT_BASE).rstrip("/") + "/res/v1/web/search"
        self.settings = settings

    async def search(
        self, http: OutboundClient, query: str, max_results: int, timeout_s: float
    ) -> list[SearchHit]:
        key = self.settings.key()
        if not key:
            raise ProviderError("not_configured", "Brave needs an API key, and none is set")
        params: dict[str, Any] = {"q": query, "count": min(MAX_COUNT, max_results * 2)}
        if self.settings.language:
            params["search_lang"] = self.settings.language
        if self.settings.safesearch:
            params["safesearch"] = self.settings.safesearch
        headers = {"Accept": "application/json", "X-Subscription-Token": key}
        response = await call_provider(
            http, self.name, "GET", self.url, timeout_s=timeout_s, headers=headers,
            params=params, delay=_delay,
        )  # fmt: skip
        if response.status != 200:
            raise status_error(response, self.name, _detail(error_body(response)))
        body = json_body(response, self.name)
        web = body.get("web") if isinstance(body, dict) else None
        results = web.get("results") if isinstance(web, dict) else []
        if not isinstance(results, list):
            raise ProviderError("bad_response", "Brave's answer has no `web.results` list")
        return [_hit(r) for r in results if isinstance(r, dict) and r.get("url")]


def _delay(response: OutboundResponse, attempt: int) -> float | None:
    """Brave gives each limit (per second, per month) its own entry in X-RateLimit-Reset
    ("1, 1419704") and X-RateLimit-Remaining: wait for the ones used up."""
    wait = standard_delay(response, attempt)
    if response.status != 429:
        return wait
    resets = _numbers(response.headers.get("x-ratelimit-reset", ""))
    remaining = _numbers(response.headers.get("x-ratelimit-remaining", ""))
    spent = [reset for reset, left in zip(resets, remaining, strict=False) if left == 0]
    return max(spent) if spent else wait


def _numbers(header: str) -> list[float]:
    try:
        return [float(part) for part in header.split(",") if part.strip()]
    except ValueError:
        return []


def _detail(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("detail") or error.get("code") or "")
    return ""


def plain(text: str) -> str:
    return html.unescape(_TAGS.sub("", text))


def _hit(result: dict[str, Any]) -> SearchHit:
    profile = result.get("profile")
    site = profile.get("name") if isinstance(profile, dict) else None
    return SearchHit(
        title=plain(str(result.get("title") or "")),
        url=str(result["url"]),
        snippet=plain(str(result.get("description") or "")),
        site_name=str(site) if site else None,
    )
