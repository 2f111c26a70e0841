"""An optional reranker behind the common HTTP shape (Cohere, Jina, TEI, vLLM):

    POST {base_url}/rerank {"model", "query", "documents": [text...], "top_n"}
    -> {"results": [{"index": i, "relevance_score": s}, ...]}

It reorders a search's fused hits. Scores stay in [0, 1] and follow the final order: a
reranker's own scores are used as they are when they already lie in [0, 1] (Cohere, Jina,
TEI's default), else squashed by the logistic function (raw logits). A hit the reranker did
not return keeps its fused place after the reranked ones, its score capped by theirs.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from assistd.retrieval.json_http import JsonPoster, Unreachable

if TYPE_CHECKING:
    from assistd.settings import RerankerSettings

Key = TypeVar("Key", bound=Hashable)


class RerankFailed(Exception):
    """The reranker could not rank (the reason says why); the caller keeps its own order."""


class HttpReranker:
    def __init__(
        self, base_url: str, *, model: str | None = None, api_key: str | None = None,
        candidates: int = 40, timeout_s: float = 10.0,
    ) -> None:  # fmt: skip
        self.url = base_url.rstrip("/") + "/rerank"
        self.model = model
        self.candidates = candidates
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = JsonPoster(timeout_s)

    @classmethod
    def from_settings(cls, spec: RerankerSettings | None) -> HttpReranker | None:
        if spec is None or not spec.base_url:
            return None
        return cls(
            spec.base_url, model=spec.model, api_key=spec.key(), candidates=spec.candidates,
            timeout_s=spec.timeout_s,
        )  # fmt: skip

    async def scores(self, query: str, documents: Sequence[str]) -> list[tuple[int, float]]:
        """(index into documents, relevance score) best first."""
        body: dict[str, Any] = {"query": query, "documents": list(documents)}
        body["top_n"] = len(documents)
        if self.model:
            body["model"] = self.model
        try:
            response = await self._http.post(self.url, body, self._headers)
        except Unreachable as exc:
            raise RerankFailed(f"the reranker could not be reached: {exc}") from exc
        if response.status != 200:
            raise RerankFailed(f"the reranker answered {response.status}: {response.text[:200]}")
        try:
            payload = response.json()
        except ValueError:
            raise RerankFailed("the reranker's answer is not JSON") from None
        return _parse(payload, len(documents))

    async def rerank(
        self, query: str, fused: Sequence[tuple[Key, float]], texts: dict[Key, str]
    ) -> list[tuple[Key, float]]:
        """The fused (key, score) list reordered by the reranker, scores in [0, 1]."""
        keys = [key for key, _ in fused if key in texts]
        ranked = await self.scores(query, [texts[key] for key in keys])
        squash = any(not 0.0 <= score <= 1.0 for _, score in ranked)
        out = [(keys[i], _logistic(s) if squash else s) for i, s in ranked]
        seen = {key for key, _ in out}
        floor = out[-1][1] if out else 1.0
        out += [(key, min(score, floor)) for key, score in fused if key not in seen]
        return out

    async def close(self) -> None:
        await self._http.close()


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def _parse(payload: Any, count: int) -> list[tuple[int, float]]:
    try:
        rows = payload["results"]
        pairs = [(int(r["index"]), float(r["relevance_score"])) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise RerankFailed("the reranker's answer has no results[].index/relevance_score") from exc
    if any(not 0 <= i < count for i, _ in pairs) or len({i for i, _ in pairs}) != len(pairs):
        raise RerankFailed("the reranker's answer names documents it was not sent")
    if any(math.isnan(score) for _, score in pairs):
        raise RerankFailed("the reranker's answer has a score that is not a number")
    return sorted(pairs, key=lambda pair: -pair[1])
