"""SearXNG's JSON API: GET {base}/search?q=...&format=json (the self-hosted default).

A stock SearXNG serves only HTML: `json` must be listed in `search.formats` of its
settings.yml, or every JSON request gets 403.
"""

from __future__ import annotations

from typing import Any

from assistd.settings import SearchSettings
from assistd.tools.http import OutboundClient
from assistd.tools.search.base import (
    ProviderError,
    SearchHit,
    call_provider,
    json_body,
    status_error,
)

SAFESEARCH = {"off": 0, "moderate": 1, "strict": 2}


class SearXNG:
    name = "SearXNG"

    def __init__(self, settings: SearchSettings) -> None:
        assert settings.base_url, "SearchSettings requires base_url for SearXNG"
        self.url = settings.base_url.rstrip("/") + "/search"
        self.settings = settings

    async def search(
        self, http: OutboundClient, query: str, max_results: int, timeout_s: float
    ) -> list[SearchHit]:
        params: dict[str, Any] = {"q": query, "format": "json"}
        if self.settings.language:
            params["language"] = self.settings.language
        if self.settings.safesearch:
            params["safesearch"] = SAFESEARCH[self.settings.safesearch]
        key = self.settings.key()  # SearXNG has no keys; a proxy in front of it may
        headers = {"Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        response = await call_provider(
            http, self.name, "GET", self.url, timeout_s=timeout_s, headers=headers, params=params
        )
        if response.status == 403:
            raise ProviderError(
                "json_disabled", "SearXNG refused the JSON format (HTTP 403): its operator must "
                "add `json` to `search.formats` in SearXNG's settings.yml"
            )  # fmt: skip
        if response.status != 200:
            raise status_error(response, self.name)
        body = json_body(response, self.name)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise ProviderError("bad_response", "SearXNG's answer has no `results` list")
        hits = [_hit(r) for r in results if isinstance(r, dict) and r.get("url")]
        if not hits and body.get("unresponsive_engines"):
            engines = ", ".join(_engine(e) for e in body["unresponsive_engines"][:5])
            raise ProviderError(
                "unavailable", f"SearXNG found nothing: its engines did not answer ({engines})"
            )
        return hits[: max_results * 2]  # spare hits for those the caller drops as duplicates


def _hit(result: dict[str, Any]) -> SearchHit:
    return SearchHit(
        title=str(result.get("title") or ""),
        url=str(result["url"]),
        snippet=str(result.get("content") or ""),
    )


def _engine(entry: Any) -> str:
    """An unresponsive engine, given as [name, reason]."""
    if isinstance(entry, list | tuple) and entry:
        return " ".join(str(part) for part in entry[:2])
    return str(entry)
