"""Vector stores as the OpenAI API shows them, over the knowledge core (knowledge.py).

Adds what the API needs beyond ingestion and search: checked inputs, file counts and
usage, modification, expiry (`expires_after` anchored on `last_active_at`), attribute
updates, a file's parsed content. Every call is scoped to one workspace: another
workspace's store or file is the same 404 as one that never existed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistd.core import validation as v
from assistd.core.ids import now_ms
from assistd.core.knowledge import KnowledgeService, expiry_of, is_expired
from assistd.core.objects import Page, PageRequest, SearchHit, VectorStore, VectorStoreFile
from assistd.errors import InvalidRequest, NotFound, echo
from assistd.retrieval.chunking import ChunkingStrategy
from assistd.retrieval.parsers import ParseFailed, parse
from assistd.store.base import KnowledgeRepo, Store

STORE_FILES_MAX = 500  # file_ids on creating a store (OpenAI's limit)
EXPIRY_DAYS_MAX = 365
FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")
UNSET: Any = object()


@dataclass(slots=True)
class StoreView:
    """A store with what its files add up to."""

    store: VectorStore
    counts: dict[str, int] = field(default_factory=dict)
    usage_bytes: int = 0

    @property
    def status(self) -> str:
        if is_expired(self.store):
            return "expired"
        return "in_progress" if self.counts.get("in_progress") else "completed"


@dataclass(slots=True)
class StoreSpec:
    name: str | None = None
    file_ids: Sequence[str] = ()
    strategy: ChunkingStrategy | None = None
    expires_after: Any = None
    metadata: Any = None


def chunking(value: Any, where: str = "chunking_strategy") -> ChunkingStrategy | None:
    """OpenAI's `{"type": "auto"}` (None: the store's or the default) or
    `{"type": "static", "static": {max_chunk_size_tokens, chunk_overlap_tokens}}`."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{where}' must be an object.", where)
    kind = value.get("type")
    if kind == "auto":
        return None
    if kind != "static":
        raise InvalidRequest(f"'{where}.type' must be 'auto' or 'static'.", f"{where}.type")
    static = value.get("static")
    if not isinstance(static, dict):
        raise InvalidRequest(f"'{where}.static' is required with type 'static'.", f"{where}.static")
    sizes = []
    for key in ("max_chunk_size_tokens", "chunk_overlap_tokens"):
        number = static.get(key)
        if type(number) is not int:
            name = f"{where}.static.{key}"
            raise InvalidRequest(f"'{name}' must be an integer.", name)
        sizes.append(number)
    return ChunkingStrategy.static(sizes[0], sizes[1])


def check_expires_after(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("'expires_after' must be an object.", "expires_after")
    if value.get("anchor") != "last_active_at":
        raise InvalidRequest(
            "'expires_after.anchor' must be 'last_active_at'.", "expires_after.anchor"
        )
    days = value.get("days")
    if type(days) is not int or not 1 <= days <= EXPIRY_DAYS_MAX:
        raise InvalidRequest(
            f"'expires_after.days' must be an integer from 1 to {EXPIRY_DAYS_MAX}.",
            "expires_after.days",
        )
    return {"anchor": "last_active_at", "days": days}


def check_attributes(value: Any, where: str = "attributes") -> dict[str, Any]:
    """OpenAI's file attributes: up to 16 keys of at most 64 characters; values are
    strings of at most 512 characters, numbers or booleans."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{where}' must be an object.", where)
    if len(value) > v.METADATA_MAX_KEYS:
        raise InvalidRequest(
            f"'{where}' has {len(value)} keys; at most {v.METADATA_MAX_KEYS} are allowed.", where
        )
    for key, item in value.items():
        if len(key) > v.METADATA_KEY_MAX or "\x00" in key:
            raise InvalidRequest(
                f"'{where}' key '{echo(key)}' must be at most {v.METADATA_KEY_MAX} characters.",
                where,
            )
        if isinstance(item, str):
            v.check_length(item, f"{where}.{echo(key)}", v.METADATA_VALUE_MAX)
        elif not isinstance(item, (int, float, bool)) or item != item:  # NaN: not JSON
            raise InvalidRequest(
                f"'{where}.{echo(key)}' must be a string, number or boolean.", where
            )
    return dict(value)


def _check_file_ids(file_ids: Any, where: str, maximum: int) -> list[str]:
    ids = list(file_ids or [])
    if len(ids) > maximum:
        raise InvalidRequest(
            f"'{where}' has {len(ids)} files; at most {maximum} are allowed.", where
        )
    for i, file_id in enumerate(ids):
        v.check_length(file_id, f"{where}[{i}]", 64)
    return ids


class VectorStores:
    def __init__(self, store: Store, knowledge: KnowledgeService) -> None:
        self.store = store
        self.knowledge = knowledge

    # Stores.

    async def create(self, ws: str, spec: StoreSpec) -> StoreView:
        file_ids = _check_file_ids(spec.file_ids, "file_ids", STORE_FILES_MAX)
        vs = await self.knowledge.create_store(
            ws, name=v.check_length(spec.name, "name", v.NAME_MAX), file_ids=file_ids,
            strategy=spec.strategy, metadata=v.check_metadata(spec.metadata),
            expires_after=check_expires_after(spec.expires_after),
        )  # fmt: skip
        await self.knowledge.start(ws, vs.id, *file_ids)
        return await self.get(ws, vs.id)

    async def list_stores(self, ws: str, page: PageRequest) -> Page[StoreView]:
        async with self.store.workspace(ws) as unit:
            found = await unit.knowledge.page_stores(page)
            views = [await _view(unit.knowledge, vs) for vs in found.items]
        return Page(items=views, has_more=found.has_more)

    async def get(self, ws: str, vector_store_id: str) -> StoreView:
        async with self.store.workspace(ws) as unit:
            return await _view(unit.knowledge, await require_store(unit.knowledge, vector_store_id))

    async def update(
        self, ws: str, vector_store_id: str, *, name: Any = UNSET, expires_after: Any = UNSET,
        metadata: Any = None,
    ) -> StoreView:  # fmt: skip
        """Fields left UNSET stay; `expires_after: null` removes the expiry."""
        async with self.store.workspace(ws, write=True) as unit:
            vs = await require_store(unit.knowledge, vector_store_id)
            if name is not UNSET:
                vs.name = v.check_length(name, "name", v.NAME_MAX)
            if expires_after is not UNSET and not is_expired(vs):
                vs.expires_after = check_expires_after(expires_after)
                vs.expires_at = expiry_of(vs.expires_after, vs.last_active_at)
            if metadata is not None:
                vs.metadata = v.check_metadata(metadata)
            await unit.knowledge.replace_store(vs)
            return await _view(unit.knowledge, vs)

    async def delete(self, ws: str, vector_store_id: str) -> None:
        await self.knowledge.delete_store(ws, vector_store_id)

    # Files of a store.

    async def add_file(
        self, ws: str, vector_store_id: str, file_id: str, *,
        strategy: ChunkingStrategy | None = None, attributes: Any = None,
    ) -> VectorStoreFile:  # fmt: skip
        v.check_length(file_id, "file_id", 64)
        file = await self.knowledge.add_file(
            ws, vector_store_id, file_id, strategy=strategy, attributes=check_attributes(attributes)
        )
        await self.knowledge.start(ws, vector_store_id, file_id)
        return file

    async def list_files(
        self, ws: str, vector_store_id: str, page: PageRequest, status: str | None
    ) -> Page[VectorStoreFile]:
        check_status_filter(status)
        async with self.store.workspace(ws) as unit:
            await require_store(unit.knowledge, vector_store_id)
            return await unit.knowledge.page_files(vector_store_id, page, status)

    async def get_file(self, ws: str, vector_store_id: str, file_id: str) -> VectorStoreFile:
        async with self.store.workspace(ws) as unit:
            return await _require_file(unit.knowledge, vector_store_id, file_id)

    async def update_file(
        self, ws: str, vector_store_id: str, file_id: str, attributes: Any
    ) -> VectorStoreFile:
        checked = check_attributes(attributes)
        async with self.store.workspace(ws, write=True) as unit:
            file = await _require_file(unit.knowledge, vector_store_id, file_id)
            file.attributes = checked
            await unit.knowledge.replace_file(file)
            return file

    async def remove_file(self, ws: str, vector_store_id: str, file_id: str) -> None:
        await self.knowledge.remove_file(ws, vector_store_id, file_id)

    async def file_content(self, ws: str, vector_store_id: str, file_id: str) -> list[str]:
        """The file's parsed text, a part per page (slide, sheet); none until it is
        `completed`."""
        async with self.store.workspace(ws) as unit:
            file = await _require_file(unit.knowledge, vector_store_id, file_id)
            meta = await unit.files.get(file_id)
            content = await unit.files.content(file_id)
        if file.status != "completed" or meta is None or content is None:
            return []
        try:
            pages = await asyncio.to_thread(parse, meta.filename, content)
        except ParseFailed:  # parsed when it was ingested: only a changed parser fails here
            return []
        return [page.text for page in pages]

    # Search.

    async def search(
        self, ws: str, vector_store_id: str, query: Any, *, max_results: int = 10,
        score_threshold: float = 0.0, filters: Any = None,
    ) -> list[SearchHit]:  # fmt: skip
        return await self.knowledge.search(
            ws, [vector_store_id], query, max_results=max_results,
            score_threshold=score_threshold, filters=filters,
        )  # fmt: skip


def check_status_filter(status: str | None) -> None:
    if status is not None and status not in FILE_STATUSES:
        raise InvalidRequest(
            f"'filter' must be one of {', '.join(FILE_STATUSES)}, not '{echo(status)}'.",
            "filter",
        )


async def require_store(repo: KnowledgeRepo, vector_store_id: str) -> VectorStore:
    vs = await repo.get_store(vector_store_id)
    if vs is None:
        raise NotFound.of("vector store", vector_store_id)
    return vs


async def _require_file(repo: KnowledgeRepo, vector_store_id: str, file_id: str) -> VectorStoreFile:
    await require_store(repo, vector_store_id)
    file = await repo.get_file(vector_store_id, file_id)
    if file is None:
        raise NotFound(
            f"No file found with id '{echo(file_id)}' in vector store '{echo(vector_store_id)}'."
        )
    return file


async def _view(repo: KnowledgeRepo, vs: VectorStore) -> StoreView:
    counts, usage = await repo.file_counts(vs.id)
    return StoreView(vs, counts, usage)


def now_s() -> int:
    return now_ms() // 1000
