"""Request bodies of the vector-store routes (OpenAI's OpenAPI document: the
`CreateVectorStoreRequest`, ... schemas). Types are checked here; limits in core."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from assistd.core.file_batches import BatchEntry, entries
from assistd.core.vector_stores import UNSET, StoreSpec, check_attributes, chunking
from assistd.errors import InvalidRequest
from assistd.retrieval.chunking import ChunkingStrategy

RANKERS = ("none", "auto", "default-2024-11-15", "default_2024_08_21")


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class VectorStoreBody(_Body):
    name: str | None = None
    description: str | None = None  # accepted; OpenAI's vector store object has no field for it
    file_ids: list[str] | None = None
    expires_after: dict[str, Any] | None = None
    chunking_strategy: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    def spec(self) -> StoreSpec:
        return StoreSpec(
            name=self.name, file_ids=self.file_ids or [],
            strategy=chunking(self.chunking_strategy), expires_after=self.expires_after,
            metadata=self.metadata,
        )  # fmt: skip


class VectorStoreModifyBody(_Body):
    name: str | None = None
    expires_after: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    def changes(self) -> dict[str, Any]:
        given = self.model_fields_set
        return {
            "name": self.name if "name" in given else UNSET,
            "expires_after": self.expires_after if "expires_after" in given else UNSET,
            "metadata": self.metadata,
        }


class VectorStoreFileBody(_Body):
    file_id: str | None = None
    chunking_strategy: dict[str, Any] | None = None
    attributes: dict[str, Any] | None = None

    def required_id(self, where: str = "file_id") -> str:
        if not self.file_id:
            raise InvalidRequest(f"'{where}' is required.", where)
        return self.file_id

    def strategy(self, where: str = "chunking_strategy") -> ChunkingStrategy | None:
        return chunking(self.chunking_strategy, where)


class AttributesBody(_Body):
    attributes: dict[str, Any] | None = None

    def required(self) -> dict[str, Any]:
        if "attributes" not in self.model_fields_set:
            raise InvalidRequest("'attributes' is required.", "attributes")
        return self.attributes or {}


class RankingOptions(_Body):
    ranker: str | None = None
    score_threshold: float | int | None = None


class SearchBody(_Body):
    query: str | list[str] | None = None
    max_num_results: int | None = None
    ranking_options: RankingOptions | None = None
    filters: dict[str, Any] | None = None
    rewrite_query: bool | None = None  # accepted: queries are searched as written

    def queries(self) -> list[str]:
        if self.query is None:
            raise InvalidRequest("'query' is required.", "query")
        return [self.query] if isinstance(self.query, str) else list(self.query)

    def threshold(self) -> float:
        ranking = self.ranking_options or RankingOptions()
        if ranking.ranker is not None and ranking.ranker not in RANKERS:
            raise InvalidRequest(
                f"'ranking_options.ranker' must be one of {', '.join(RANKERS)}.",
                "ranking_options.ranker",
            )
        return float(ranking.score_threshold or 0.0)


class BatchBody(_Body):
    file_ids: list[str] | None = None
    files: list[VectorStoreFileBody] | None = None
    chunking_strategy: dict[str, Any] | None = None
    attributes: dict[str, Any] | None = None

    def entries(self) -> list[BatchEntry]:
        files = None
        if self.files is not None:
            files = [
                BatchEntry(
                    f.required_id(f"files[{i}].file_id"),
                    f.strategy(f"files[{i}].chunking_strategy"),
                    check_attributes(f.attributes, f"files[{i}].attributes"),
                    f"files[{i}].file_id",
                )
                for i, f in enumerate(self.files)
            ]
        return entries(self.file_ids, files, chunking(self.chunking_strategy), self.attributes)
