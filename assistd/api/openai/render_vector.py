"""Vector stores, their files and search results as OpenAI's objects (the
`VectorStoreObject`, `VectorStoreFileObject`, ... schemas of its OpenAPI document)."""

from __future__ import annotations

from collections.abc import Sequence

from assistd.api.openai.render import Wire
from assistd.core.objects import FileBatch, SearchHit, VectorStoreFile
from assistd.core.vector_stores import FILE_STATUSES, StoreView


def file_counts(counts: dict[str, int]) -> Wire:
    shown = {status: counts.get(status, 0) for status in FILE_STATUSES}
    return {**shown, "total": sum(shown.values())}


def vector_store(view: StoreView) -> Wire:
    vs = view.store
    return {
        "id": vs.id,
        "object": "vector_store",
        "created_at": vs.created_at,
        "name": vs.name or "",
        "usage_bytes": view.usage_bytes,
        "file_counts": file_counts(view.counts),
        "status": view.status,
        # OpenAI's schema has no null for `expires_after`: left out when there is none.
        **({"expires_after": vs.expires_after} if vs.expires_after else {}),
        "expires_at": vs.expires_at,
        "last_active_at": vs.last_active_at,
        "metadata": vs.metadata,
    }


def vector_store_file(f: VectorStoreFile) -> Wire:
    return {
        "id": f.id,
        "object": "vector_store.file",
        "usage_bytes": f.usage_bytes,
        "created_at": f.created_at,
        "vector_store_id": f.vector_store_id,
        "status": f.status,
        "last_error": _error(f.last_error),
        "chunking_strategy": {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": f.max_chunk_tokens,
                "chunk_overlap_tokens": f.chunk_overlap_tokens,
            },
        },
        "attributes": f.attributes,
    }


# OpenAI's schema knows three codes; assistd's finer ones stay in the message.
_CODES = {
    "unsupported_file": "unsupported_file",
    "server_error": "server_error",
    "embedding_failed": "server_error",
}


def _error(error: Wire | None) -> Wire | None:
    if error is None:
        return None
    code = str(error.get("code", "server_error"))
    message = str(error.get("message", ""))
    wire_code = _CODES.get(code, "invalid_file")
    if wire_code != code:
        message = f"{code}: {message}"
    return {"code": wire_code, "message": message}


def search_page(queries: Sequence[str], hits: Sequence[SearchHit]) -> Wire:
    return {
        "object": "vector_store.search_results.page",
        "search_query": list(queries),
        "data": [
            {
                "file_id": hit.file_id,
                "filename": hit.filename,
                "score": hit.score,
                "attributes": hit.attributes,
                "content": [{"type": "text", "text": hit.text}],
            }
            for hit in hits
        ],
        "has_more": False,
        "next_page": None,
    }


def content_page(texts: Sequence[str]) -> Wire:
    return {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": text} for text in texts],
        "has_more": False,
        "next_page": None,
    }


def file_batch(batch: FileBatch) -> Wire:
    return {
        "id": batch.id,
        "object": "vector_store.files_batch",
        "created_at": batch.created_at,
        "vector_store_id": batch.vector_store_id,
        "status": batch.status,
        "file_counts": file_counts(batch.counts),
    }
