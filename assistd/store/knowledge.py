"""The knowledge repository: vector stores, their files, and chunks with their indexes.

Every statement is scoped to the unit's workspace. A chunk's keyword entry and vector are
written and deleted with its row, in the same transaction, so deleting or re-ingesting a
file leaves nothing behind. SQLite: an FTS5 table and sqlite-vec tables (one per
dimension) keyed by the chunk's seq. PostgreSQL: an `embedding` column of the chunk's own
row (pgvector with an HNSW index when the server has it, else real[]) and the keyword
postings of store/pg_keywords.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from assistd.core.objects import (
    FileBatch,
    Page,
    PageRequest,
    VectorStore,
    VectorStoreFile,
)
from assistd.errors import Conflict
from assistd.store import audit, schema
from assistd.store.chunks import SqlChunkIndex
from assistd.store.paging import fetch_page


def _store(row: Row[Any]) -> VectorStore:
    m = row._mapping
    return VectorStore(
        id=m["id"], created_at=m["created_at"], name=m["name"], embedder=m["embedder"],
        dimension=m["dimension"], max_chunk_tokens=m["max_chunk_tokens"],
        chunk_overlap_tokens=m["chunk_overlap_tokens"], metadata=dict(m["metadata"]),
        expires_after=m["expires_after"], expires_at=m["expires_at"],
        last_active_at=m["last_active_at"],
    )  # fmt: skip


def _store_values(vs: VectorStore) -> dict[str, Any]:
    return {
        "name": vs.name, "embedder": vs.embedder, "dimension": vs.dimension,
        "max_chunk_tokens": vs.max_chunk_tokens, "chunk_overlap_tokens": vs.chunk_overlap_tokens,
        "metadata": vs.metadata, "expires_after": vs.expires_after, "expires_at": vs.expires_at,
        "last_active_at": vs.last_active_at,
    }  # fmt: skip


def _file(row: Row[Any]) -> VectorStoreFile:
    m = row._mapping
    return VectorStoreFile(
        id=m["id"], vector_store_id=m["vector_store_id"], created_at=m["created_at"],
        status=m["status"], last_error=m["last_error"], usage_bytes=m["usage_bytes"],
        chunk_count=m["chunk_count"], attributes=dict(m["attributes"]),
        max_chunk_tokens=m["max_chunk_tokens"], chunk_overlap_tokens=m["chunk_overlap_tokens"],
        batch_id=m["batch_id"],
    )  # fmt: skip


def _file_values(f: VectorStoreFile) -> dict[str, Any]:
    return {
        "status": f.status, "last_error": f.last_error, "usage_bytes": f.usage_bytes,
        "chunk_count": f.chunk_count, "attributes": f.attributes,
        "max_chunk_tokens": f.max_chunk_tokens, "chunk_overlap_tokens": f.chunk_overlap_tokens,
        "batch_id": f.batch_id,
    }  # fmt: skip


class SqlKnowledgeRepo(SqlChunkIndex):
    s = schema.vector_stores
    f = schema.vector_store_files
    c = schema.chunks

    # Vector stores.

    async def insert_store(self, vs: VectorStore) -> None:
        await self._insert(self.s, {"id": vs.id, "created_at": vs.created_at, **_store_values(vs)})
        audit.created(vs.id)
        await self._ensure_vector_index(vs.dimension)

    async def get_store(self, vector_store_id: str) -> VectorStore | None:
        row = await self._first(self.s, id=vector_store_id)
        return _store(row) if row is not None else None

    async def page_stores(self, page: PageRequest) -> Page[VectorStore]:
        return await fetch_page(self.conn, self.s, self.scope(self.s), page, _store)

    async def replace_store(self, vs: VectorStore) -> None:
        await self._update(self.s, _store_values(vs), id=vs.id)

    async def existing_stores(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        query = select(self.s.c.id).where(*self.scope(self.s), self.s.c.id.in_(list(ids)))
        return set((await self.conn.execute(query)).scalars())

    async def delete_store(self, vector_store_id: str) -> bool:
        vs = await self.get_store(vector_store_id)
        if vs is None:
            return False
        await self._drop_chunks(vs.id, None)
        await self.conn.execute(delete(self.f).where(*self.scope(self.f, vector_store_id=vs.id)))
        b = schema.vector_store_file_batches
        await self.conn.execute(delete(b).where(*self.scope(b, vector_store_id=vs.id)))
        await self.conn.execute(delete(self.s).where(*self.scope(self.s, id=vs.id)))
        return True

    # Files in a vector store.

    async def add_file(self, file: VectorStoreFile) -> None:
        values = {"id": file.id, "vector_store_id": file.vector_store_id,
                  "created_at": file.created_at, **_file_values(file)}  # fmt: skip
        try:
            async with self.conn.begin_nested():
                await self._insert(self.f, values)
        except IntegrityError as exc:
            raise Conflict(
                f"The file '{file.id}' is already in vector store '{file.vector_store_id}'."
            ) from exc
        audit.created(file.id)

    async def get_file(self, vector_store_id: str, file_id: str) -> VectorStoreFile | None:
        row = await self._first(self.f, vector_store_id=vector_store_id, id=file_id)
        return _file(row) if row is not None else None

    async def page_files(
        self, vector_store_id: str, page: PageRequest, status: str | None = None,
        batch_id: str | None = None,
    ) -> Page[VectorStoreFile]:  # fmt: skip
        scope = self.scope(self.f, vector_store_id=vector_store_id)
        if batch_id is not None:
            scope.append(self.f.c.batch_id == batch_id)
        if status is not None:
            scope.append(self.f.c.status == status)
        return await fetch_page(self.conn, self.f, scope, page, _file)

    async def all_files(self, vector_store_id: str) -> list[VectorStoreFile]:
        query = select(self.f).where(*self.scope(self.f, vector_store_id=vector_store_id))
        return [_file(r) for r in await self.conn.execute(query.order_by(self.f.c.seq))]

    async def replace_file(self, file: VectorStoreFile) -> None:
        await self._update(
            self.f, _file_values(file), vector_store_id=file.vector_store_id, id=file.id
        )

    async def file_counts(
        self, vector_store_id: str, batch_id: str | None = None
    ) -> tuple[dict[str, int], int]:
        """Files (of one batch, if given) by status, and the bytes the completed ones take."""
        scope = self.scope(self.f, vector_store_id=vector_store_id)
        if batch_id is not None:
            scope.append(self.f.c.batch_id == batch_id)
        query = (
            select(self.f.c.status, func.count(), func.coalesce(func.sum(self.f.c.usage_bytes), 0))
            .where(*scope)
            .group_by(self.f.c.status)
        )
        counts, usage = {}, 0
        for status, count, used in await self.conn.execute(query):
            counts[status] = int(count)
            usage += int(used)
        return counts, usage

    async def remove_file(self, vector_store_id: str, file_id: str) -> bool:
        """Takes the file out of the store, with every chunk and vector of it."""
        await self._drop_chunks(vector_store_id, file_id)
        scope = self.scope(self.f, vector_store_id=vector_store_id, id=file_id)
        return bool((await self.conn.execute(delete(self.f).where(*scope))).rowcount)

    async def forget_file(self, file_id: str) -> None:
        """The file was deleted: out of every vector store of the workspace."""
        query = select(self.f.c.vector_store_id).where(*self.scope(self.f, id=file_id))
        for vector_store_id in list((await self.conn.execute(query)).scalars()):
            await self.remove_file(vector_store_id, file_id)

    async def purge_workspace(self) -> None:
        """Index entries of the workspace's chunks (the generic delete takes the rows)."""
        for vs in list(
            (await self.conn.execute(select(self.s.c.id).where(*self.scope(self.s)))).scalars()
        ):
            await self._drop_chunks(vs, None)

    # File batches.

    async def insert_batch(self, batch: FileBatch) -> None:
        values = {"id": batch.id, "vector_store_id": batch.vector_store_id,
                  "created_at": batch.created_at, "cancelled": batch.cancelled}  # fmt: skip
        await self._insert(schema.vector_store_file_batches, values)
        audit.created(batch.id)

    async def get_batch(self, vector_store_id: str, batch_id: str) -> FileBatch | None:
        row = await self._first(
            schema.vector_store_file_batches, vector_store_id=vector_store_id, id=batch_id
        )
        if row is None:
            return None
        m = row._mapping
        counts, _ = await self.file_counts(vector_store_id, batch_id)
        cancelled = bool(m["cancelled"])
        return FileBatch(m["id"], m["vector_store_id"], m["created_at"], cancelled, counts)

    async def cancel_batch(self, vector_store_id: str, batch_id: str) -> None:
        """Marks the batch cancelled and its files still in progress `cancelled`."""
        await self._update(
            schema.vector_store_file_batches, {"cancelled": True},
            vector_store_id=vector_store_id, id=batch_id,
        )  # fmt: skip
        scope = self.scope(self.f, vector_store_id=vector_store_id, batch_id=batch_id)
        query = update(self.f).where(*scope, self.f.c.status == "in_progress")
        await self.conn.execute(query.values(status="cancelled"))
