"""Files become searchable: parse, chunk, embed (the real MiniLM), index; hybrid search
finds the right file; failures name their reason; nothing is left behind by a deletion or
a re-ingestion; another workspace sees nothing. On SQLite and PostgreSQL (with and
without pgvector)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from assistd.core.ids import new_id, now_ms
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import StoredFile
from assistd.errors import InvalidRequest, NotFound
from assistd.retrieval.chunking import ChunkingStrategy
from assistd.store.sql import SqlStore
from tests.retrieval import fixtures
from tests.support.store import new_workspace

GARDEN = [
    "Tomatoes need six hours of direct sunlight a day.",
    "Water tomato plants deeply twice a week; shallow watering weakens the roots.",
]
ENGINE = ["The diesel engine ignites fuel by compression, not by a spark plug.",
          "Turbochargers force extra air into the cylinders to raise power."]  # fmt: skip


async def upload(store: SqlStore, ws: str, filename: str, content: bytes) -> str:
    file = StoredFile(new_id("file"), now_ms() // 1000, filename, len(content), "assistants")
    async with store.workspace(ws, write=True) as unit:
        await unit.files.insert(file, content)
    return file.id


async def ingest_all(knowledge: KnowledgeService, ws: str, vs_id: str) -> dict[str, Any]:
    async with knowledge.store.workspace(ws) as unit:
        files = await unit.knowledge.all_files(vs_id)
    return {f.id: await knowledge.ingest(ws, vs_id, f.id) for f in files}


async def index_rows(store: SqlStore) -> dict[str, int]:
    """Rows in every structure that holds chunks: none may outlive its chunk."""
    async with store.engine.connect() as conn:
        counts = {"chunks": (await conn.execute(text("SELECT count(*) FROM chunks"))).scalar_one()}
        if conn.dialect.name == "sqlite":
            counts["fts"] = (
                await conn.execute(text("SELECT count(*) FROM chunks_fts"))
            ).scalar_one()
            tables = await conn.execute(text(
                "SELECT name FROM sqlite_master WHERE name LIKE 'vec_chunks_%' "
                "AND sql LIKE 'CREATE VIRTUAL TABLE%'"))  # fmt: skip
            for (name,) in list(tables):
                counts[name] = (
                    await conn.execute(text(f"SELECT count(*) FROM {name}"))
                ).scalar_one()
        else:  # the chunks with postings, and the chunks the files' totals count
            for name, query in (
                ("postings", "SELECT count(DISTINCT chunk) FROM keyword_postings"),
                ("keyword_files", "SELECT coalesce(sum(chunks), 0) FROM keyword_files"),
            ):
                counts[name] = int((await conn.execute(text(query))).scalar_one())
    return counts


async def two_file_store(knowledge: KnowledgeService, store: SqlStore) -> tuple[str, str, str, str]:
    ws = await new_workspace(store)
    pdf_id = await upload(store, ws, "garden.pdf", fixtures.pdf(GARDEN))
    docx_id = await upload(store, ws, "engines.docx", fixtures.docx(ENGINE))
    vs = await knowledge.create_store(ws, name="manuals", file_ids=[pdf_id, docx_id])
    done = await ingest_all(knowledge, ws, vs.id)
    assert {f.status for f in done.values()} == {"completed"}
    return ws, vs.id, pdf_id, docx_id


async def test_a_pdf_and_a_docx_answer_questions_from_the_right_file(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws, vs_id, pdf_id, docx_id = await two_file_store(knowledge, store)
    hits = await knowledge.search(ws, [vs_id], "how much sun do tomatoes need?")
    assert hits[0].file_id == pdf_id and hits[0].filename == "garden.pdf"
    assert hits[0].page == 1 and "sunlight" in hits[0].text
    hits = await knowledge.search(ws, [vs_id], "what makes a diesel engine ignite its fuel")
    assert hits[0].file_id == docx_id and "compression" in hits[0].text


async def test_scores_lie_in_0_1_follow_the_order_and_the_threshold_cuts(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws, vs_id, _, _ = await two_file_store(knowledge, store)
    hits = await knowledge.search(ws, [vs_id], "tomato watering")
    scores = [h.score for h in hits]
    assert scores and all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(1.0)  # first by both methods
    kept = await knowledge.search(ws, [vs_id], "tomato watering", score_threshold=0.99)
    assert [h.file_id for h in kept] == [hits[0].file_id]


async def test_dense_and_keyword_modes_each_find_the_file(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws, vs_id, pdf_id, docx_id = await two_file_store(knowledge, store)
    # No shared word with the text: only the dense side finds it.
    dense = await knowledge.search(ws, [vs_id], "vegetable gardening advice", mode="dense")
    assert dense[0].file_id == pdf_id
    keyword = await knowledge.search(ws, [vs_id], "turbochargers", mode="keyword")
    assert [h.file_id for h in keyword] == [docx_id]
    assert await knowledge.search(ws, [vs_id], "zeppelin", mode="keyword") == []


async def test_chinese_is_searchable_by_keywords(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws = await new_workspace(store)
    zh = await upload(
        store,
        ws,
        "zh.txt",
        "向量数据库用于存储嵌入向量。\n\n今天的天气很好\uff0c适合去公园散步。".encode(),
    )
    vs = await knowledge.create_store(ws, file_ids=[zh])
    await ingest_all(knowledge, ws, vs.id)
    hits = await knowledge.search(ws, [vs.id], "数据库", mode="keyword")
    assert hits and "向量数据库" in hits[0].text


async def test_failed_files_name_their_reason_and_fail_alone(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws = await new_workspace(store)
    ids = {
        "encrypted_pdf": await upload(store, ws, "locked.pdf", fixtures.encrypted_pdf("secret")),
        "unsupported_file": await upload(store, ws, "image.bin", b"\x89PNG\r\n\x1a\n\x00\x00"),
        "empty_file": await upload(store, ws, "empty.txt", b"  \n"),
        "ok": await upload(store, ws, "fine.md", b"# Fine\n\nThis file is fine."),
    }
    vs = await knowledge.create_store(ws, file_ids=list(ids.values()))
    done = await ingest_all(knowledge, ws, vs.id)
    for code, file_id in ids.items():
        file = done[file_id]
        if code == "ok":
            assert file.status == "completed" and file.chunk_count == 1 and file.last_error is None
        else:
            assert file.status == "failed" and file.last_error["code"] == code
            assert file.last_error["message"]
    async with store.workspace(ws) as unit:
        counts, usage = await unit.knowledge.file_counts(vs.id)
    assert counts == {"completed": 1, "failed": 3} and usage > 0


async def test_deleting_a_file_or_the_store_leaves_no_orphans(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    before = await index_rows(store)
    ws, vs_id, pdf_id, docx_id = await two_file_store(knowledge, store)
    during = await index_rows(store)
    assert during["chunks"] == before["chunks"] + 2
    assert len(set(during.values())) == 1  # every index holds exactly the chunks
    await knowledge.remove_file(ws, vs_id, pdf_id)
    assert set((await index_rows(store)).values()) == {before["chunks"] + 1}
    async with store.workspace(ws, write=True) as unit:  # the Files API's delete
        assert await unit.files.delete(docx_id)
    assert set((await index_rows(store)).values()) == {before["chunks"]}
    again = await upload(store, ws, "garden.pdf", fixtures.pdf(GARDEN))
    await knowledge.add_file(ws, vs_id, again)
    await knowledge.ingest(ws, vs_id, again)
    await knowledge.delete_store(ws, vs_id)
    assert set((await index_rows(store)).values()) == {before["chunks"]}
    with pytest.raises(NotFound):
        await knowledge.search(ws, [vs_id], "tomatoes")


async def test_reingesting_replaces_a_files_chunks_whole(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws = await new_workspace(store)
    long_text = "\n\n".join(f"Section {i}. " + "Plants grow toward light. " * 20 for i in range(6))
    file_id = await upload(store, ws, "long.txt", long_text.encode())
    vs = await knowledge.create_store(ws, file_ids=[file_id])
    first = (await ingest_all(knowledge, ws, vs.id))[file_id]
    before = await index_rows(store)
    await knowledge.reingest(ws, vs.id, file_id, ChunkingStrategy.static(100, 0))
    second = await knowledge.ingest(ws, vs.id, file_id)
    assert second is not None and second.status == "completed"
    assert second.chunk_count > first.chunk_count
    after = await index_rows(store)
    assert set(after.values()) == {before["chunks"] - first.chunk_count + second.chunk_count}
    async with store.workspace(ws) as unit:
        positions = [p for p, _, _ in await unit.knowledge.chunks_of(vs.id, file_id)]
    assert positions == list(range(second.chunk_count))


async def test_a_cancelled_file_keeps_nothing(knowledge: KnowledgeService, store: SqlStore) -> None:
    ws = await new_workspace(store)
    file_id = await upload(store, ws, "notes.txt", b"Some notes about cancelling.")
    vs = await knowledge.create_store(ws, file_ids=[file_id])
    before = await index_rows(store)
    cancelled = await knowledge.cancel_file(ws, vs.id, file_id)
    assert cancelled.status == "cancelled"
    ended = await knowledge.ingest(ws, vs.id, file_id)
    assert ended is not None and ended.status == "cancelled"
    assert await index_rows(store) == before


async def test_another_workspace_sees_nothing(knowledge: KnowledgeService, store: SqlStore) -> None:
    _, vs_id, pdf_id, _ = await two_file_store(knowledge, store)
    other = await new_workspace(store)
    with pytest.raises(NotFound):
        await knowledge.search(other, [vs_id], "tomatoes")
    with pytest.raises(NotFound):
        await knowledge.add_file(other, vs_id, pdf_id)
    async with store.workspace(other) as unit:
        assert await unit.knowledge.get_store(vs_id) is None
        assert await unit.knowledge.get_file(vs_id, pdf_id) is None
        assert await unit.knowledge.keyword_search([vs_id], "tomatoes", 10) == []
        assert await unit.knowledge.dense_search([vs_id], [0.05] * 384, 10) == []
    own = await knowledge.create_store(other, name="mine")
    assert await knowledge.search(other, [own.id], "tomatoes") == []
    with pytest.raises(InvalidRequest, match="No file found"):  # a file of the first workspace
        await knowledge.create_store(other, file_ids=[pdf_id])


async def test_a_store_searched_before_and_deleted_since_is_not_found(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    """On PostgreSQL a search embeds its query while the stores are checked, with the
    embedder an earlier search found: a store gone since is still a 404."""
    ws, vs_id, _, _ = await two_file_store(knowledge, store)
    second = await knowledge.create_store(ws, name="second")
    assert await knowledge.search(ws, [vs_id, second.id], "tomatoes")
    await knowledge.delete_store(ws, vs_id)
    for ids in ([vs_id], [second.id, vs_id], [vs_id, "vs_never_made"]):
        with pytest.raises(NotFound):
            await knowledge.search(ws, ids, "tomatoes")
    assert await knowledge.search(ws, [second.id], "tomatoes") == []


async def test_attribute_filters_narrow_the_search(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws = await new_workspace(store)
    vs = await knowledge.create_store(ws)
    for year, region in ((2023, "eu"), (2024, "us"), (2025, "eu")):
        file_id = await upload(
            store, ws, f"report-{year}.txt", f"Sales report {year}: revenue rose.".encode()
        )
        await knowledge.add_file(ws, vs.id, file_id, attributes={"year": year, "region": region})
        await knowledge.ingest(ws, vs.id, file_id)
    hits = await knowledge.search(ws, [vs.id], "sales revenue", filters={
        "type": "and", "filters": [{"type": "eq", "key": "region", "value": "eu"},
                                   {"type": "gte", "key": "year", "value": 2024}]})  # fmt: skip
    assert [h.filename for h in hits] == ["report-2025.txt"]
    assert hits[0].attributes == {"year": 2025, "region": "eu"}
    with pytest.raises(InvalidRequest) as bad:
        await knowledge.search(ws, [vs.id], "x", filters={"type": "like", "key": "a", "value": 1})
    assert bad.value.field == "filters.type"


async def test_bad_search_input_names_the_field(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws, vs_id, _, _ = await two_file_store(knowledge, store)
    cases = [({"query": ""}, "query"), ({"max_results": 0}, "max_num_results"),
             ({"score_threshold": 1.5}, "ranking_options.score_threshold")]  # fmt: skip
    for change, field in cases:
        args: dict[str, Any] = {"query": "tomatoes", **change}
        query = args.pop("query")
        with pytest.raises(InvalidRequest) as bad:
            await knowledge.search(ws, [vs_id], query, **args)
        assert bad.value.field == field


async def test_the_vector_index_each_backend_uses(
    knowledge: KnowledgeService, store: SqlStore, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["settings"]
    ws = await new_workspace(store)
    await knowledge.create_store(ws)
    async with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            found = await conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'vec_chunks_384'")
            )
            assert "vec0" in found.scalar_one()
            return
        column = text(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
        )
        kind = (await conn.execute(column)).scalar_one()
        index = text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_chunks_h%_384'")
        hnsw = list((await conn.execute(index)).scalars())
    if backend == "pgvector":  # over the vectors' half-precision form (pgvector 0.7 on)
        assert (kind, hnsw) == ("vector", ["ix_chunks_half_384"])
    else:  # the machine's server: pgvector if it has it (before 0.7 without halfvec), else
        # exact search over real[]
        assert (kind, hnsw) in (
            ("vector", ["ix_chunks_half_384"]),
            ("vector", ["ix_chunks_hnsw_384"]),
            ("real[]", []),
        )
