"""The vector stores an assistant or a thread gives `file_search`.

`tool_resources.file_search` names them (`vector_store_ids`, which must be stores of the
caller's workspace) or asks for them to be made (`vector_stores: [{file_ids,
chunking_strategy, metadata}]`); a message's `attachments` with a `file_search` tool add
their files to the thread's store, made for the purpose when the thread has none (as
OpenAI's threads did). New files are ingested in the background; a search waits for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistd.core import validation as v
from assistd.core.knowledge import KnowledgeService
from assistd.core.vector_stores import chunking
from assistd.errors import Conflict, InvalidRequest, echo
from assistd.retrieval.chunking import ChunkingStrategy
from assistd.store.base import Store

# OpenAI's limit: one vector store per assistant and per thread.
MAX_STORES = 1
INLINE_FILES_MAX = 10000
# A store made for a thread's attachments expires after 7 days unused, as OpenAI's did.
THREAD_STORE_EXPIRY = {"anchor": "last_active_at", "days": 7}


@dataclass(slots=True)
class StoresSpec:
    """`tool_resources.file_search` as given, unchecked; None: not given."""

    ids: Any = None
    inline: Any = None  # the `vector_stores` helper
    attached: list[str] = field(default_factory=list)  # files of file_search attachments


class SearchStores:
    def __init__(self, store: Store, knowledge: KnowledgeService) -> None:
        self.store = store
        self.knowledge = knowledge

    async def resolve(
        self, ws: str, spec: StoresSpec, where: str = "", for_thread: bool = False
    ) -> list[str] | None:
        """The store ids the object is to have: those named (checked to exist in `ws`),
        those made from the helper, and the attachments' files added to the first (or to
        a store made for them). None when nothing was given (unchanged on update)."""
        ids_at = f"{where}tool_resources.file_search.vector_store_ids"
        inline_at = f"{where}tool_resources.file_search.vector_stores"
        ids = _ids(spec.ids, ids_at)
        inline = _inline(spec.inline, inline_at)
        if ids is None and inline is None and not spec.attached:
            return None
        ids = ids or []
        if len(ids) + len(inline or []) > MAX_STORES:
            raise InvalidRequest(
                f"'{where}tool_resources.file_search' names {len(ids) + len(inline or [])} "
                f"vector stores; at most {MAX_STORES}.",
                ids_at if not inline else inline_at,
            )
        await self._require(ws, ids, ids_at)
        for i, (file_ids, strategy, metadata) in enumerate(inline or []):
            await self._require_files(ws, file_ids, f"{inline_at}[{i}].file_ids")
            vs = await self.knowledge.create_store(
                ws, file_ids=file_ids, strategy=strategy, metadata=metadata
            )
            await self.knowledge.start(ws, vs.id, *file_ids)
            ids.append(vs.id)
        if spec.attached:
            ids = await self._attach(ws, ids, spec.attached, for_thread)
        return ids

    async def attach(self, ws: str, current: list[str], file_ids: list[str]) -> list[str]:
        """A thread's stores once a new message's file_search attachments are added."""
        return await self._attach(ws, list(current), file_ids, True)

    async def _attach(
        self, ws: str, ids: list[str], file_ids: list[str], for_thread: bool
    ) -> list[str]:
        file_ids = list(dict.fromkeys(file_ids))
        if not file_ids:
            return ids
        if not ids:
            expiry = THREAD_STORE_EXPIRY if for_thread else None
            vs = await self.knowledge.create_store(
                ws, file_ids=file_ids, expires_after=expiry, name="thread files"
            )
            await self.knowledge.start(ws, vs.id, *file_ids)
            return [vs.id]
        for file_id in file_ids:
            try:
                await self.knowledge.add_file(ws, ids[0], file_id)
            except Conflict:
                continue  # already in the store
            await self.knowledge.start(ws, ids[0], file_id)
        return ids

    async def _require(self, ws: str, ids: list[str], field_name: str) -> None:
        if not ids:
            return
        async with self.store.workspace(ws) as unit:
            existing = await unit.knowledge.existing_stores(ids)
        missing = [i for i in ids if i not in existing]
        if missing:
            shown = ", ".join(echo(i) for i in missing)
            raise InvalidRequest(
                f"'{field_name}' names vector stores that do not exist: {shown}.", field_name
            )

    async def _require_files(self, ws: str, file_ids: list[str], field_name: str) -> None:
        if not file_ids:
            return
        async with self.store.workspace(ws) as unit:
            existing = await unit.files.existing_ids(file_ids)
        missing = [f for f in file_ids if f not in existing]
        if missing:
            shown = ", ".join(echo(f) for f in missing)
            raise InvalidRequest(
                f"'{field_name}' names files that do not exist: {shown}.", field_name
            )


def attached_for_search(attachments: Sequence[Any] | None) -> list[str]:
    """The files of attachments given for the `file_search` tool."""
    return [a.file_id for a in attachments or [] if "file_search" in a.tools]


def _ids(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise InvalidRequest(f"'{where}' must be an array of vector store ids.", where)
    for index, vs_id in enumerate(value):
        v.check_id(vs_id, f"{where}[{index}]")
    return list(dict.fromkeys(value))


Inline = tuple[list[str], ChunkingStrategy | None, dict[str, Any]]


def _inline(value: Any, where: str) -> list[Inline] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidRequest(f"'{where}' must be an array of vector stores to create.", where)
    return [_one_inline(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _one_inline(item: Any, where: str) -> Inline:
    if not isinstance(item, dict):
        raise InvalidRequest(f"'{where}' must be an object.", where)
    file_ids = v.check_file_ids(item.get("file_ids"), f"{where}.file_ids", INLINE_FILES_MAX)
    metadata = v.check_metadata(item.get("metadata"), f"{where}.metadata")
    return file_ids, _chunking(item.get("chunking_strategy"), where), metadata


def _chunking(value: Any, where: str) -> ChunkingStrategy | None:
    """The vector-store API's `chunking_strategy`, its errors named from `where`."""
    try:
        return chunking(value, f"{where}.chunking_strategy")
    except InvalidRequest as exc:  # the static bounds' checks name the bare field
        if exc.field and exc.field.startswith("chunking_strategy."):
            raise InvalidRequest(str(exc), f"{where}.{exc.field}") from None
        raise
