"""The optional reranker (the common POST /rerank shape), here a real local HTTP server:
it reorders the fused hits, its scores stay in [0, 1] and follow the final order, and any
failure of it leaves the fused order, logged. SQLite only: the reranker sits after the
stores' searches, which test_ingest_and_search.py covers per backend."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pydantic import ValidationError

from assistd.core.knowledge import KnowledgeService
from assistd.retrieval.registry import EmbedderRegistry
from assistd.retrieval.rerank import HttpReranker
from assistd.settings import Settings
from assistd.store.factory import open_store
from assistd.store.sql import SqlStore
from tests.knowledge.test_ingest_and_search import upload
from tests.support.fake_embeddings import FakeEmbeddings
from tests.support.fake_rerank import FakeRerank
from tests.support.store import new_workspace

DOCS = {
    "kettle.txt": b"kettles boil water quickly on the stove",
    "tea.txt": b"tea needs hot water",
    "bike.txt": b"bicycles have two wheels",
}


@pytest.fixture
def endpoints() -> Iterator[tuple[FakeEmbeddings, FakeRerank]]:
    embeddings, rerank = FakeEmbeddings(dimension=32).start(), FakeRerank().start()
    yield embeddings, rerank
    embeddings.stop()
    rerank.stop()


@pytest.fixture
def settings(tmp_path: Path, endpoints: tuple[FakeEmbeddings, FakeRerank]) -> Settings:
    embeddings, rerank = endpoints
    return Settings(
        data_dir=tmp_path,
        embedders={"bag": {"base_url": embeddings.base_url, "dimension": 32}},
        reranker={"base_url": rerank.base_url, "model": "bge-reranker", "api_key": "rk"},
    )


@pytest_asyncio.fixture
async def corpus(settings: Settings) -> AsyncIterator[tuple[SqlStore, str, str, dict[str, str]]]:
    """A store holding DOCS: (store, workspace, vector store id, file id -> name)."""
    store = open_store(settings)
    await store.migrate()
    knowledge = KnowledgeService(store, EmbedderRegistry.from_settings(settings))
    ws = await new_workspace(store)
    names = {await upload(store, ws, name, body): name for name, body in DOCS.items()}
    vs = await knowledge.create_store(ws, file_ids=list(names), embedder="bag")
    for file_id in names:
        await knowledge.ingest(ws, vs.id, file_id)
    yield store, ws, vs.id, names
    await knowledge.close()
    await store.close()


def reranking(store: SqlStore, settings: Settings) -> KnowledgeService:
    return KnowledgeService(
        store, EmbedderRegistry.from_settings(settings),
        reranker=HttpReranker.from_settings(settings.reranker),
    )  # fmt: skip


async def order(knowledge: KnowledgeService, ws: str, vs_id: str, **kw: Any) -> list[Any]:
    return await knowledge.search(ws, [vs_id], "boil water", **kw)


async def fused_order(store: SqlStore, settings: Settings, ws: str, vs_id: str) -> list[Any]:
    """The hits without a reranker (the service's embedder closed after)."""
    plain = KnowledgeService(store, EmbedderRegistry.from_settings(settings))
    try:
        return await order(plain, ws, vs_id)
    finally:
        await plain.close()


async def test_the_reranker_reorders_the_fused_hits_with_scores_that_follow_the_order(
    settings: Settings, corpus: Any, endpoints: tuple[FakeEmbeddings, FakeRerank]
) -> None:
    store, ws, vs_id, names = corpus
    rerank = endpoints[1]
    fused = await fused_order(store, settings, ws, vs_id)
    assert names[fused[0].file_id] == "kettle.txt"  # both query words: first when fused
    rerank.prefer = "tea"
    knowledge = reranking(store, settings)
    hits = await order(knowledge, ws, vs_id)
    assert [names[h.file_id] for h in hits][:2] == ["tea.txt", "kettle.txt"]
    scores = [h.score for h in hits]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(0.75)  # the reranker's own score, already in [0, 1]
    sent = rerank.requests[-1]
    assert sent["path"] == "/v1/rerank" and sent["auth"] == "Bearer rk"
    assert (sent["model"], sent["query"]) == ("bge-reranker", "boil water")
    assert sorted(sent["documents"]) == sorted(d.decode() for d in DOCS.values())
    assert sent["top_n"] == len(sent["documents"])
    # score_threshold cuts on the reranked scores; max_num_results after reranking.
    kept = await order(knowledge, ws, vs_id, score_threshold=0.6)
    assert [names[h.file_id] for h in kept] == ["tea.txt"]
    one = await order(knowledge, ws, vs_id, max_results=1)
    assert [names[h.file_id] for h in one] == ["tea.txt"]
    await knowledge.close()


async def test_raw_logits_are_squashed_into_0_1_keeping_the_reranker_order(
    settings: Settings, corpus: Any, endpoints: tuple[FakeEmbeddings, FakeRerank]
) -> None:
    store, ws, vs_id, names = corpus
    endpoints[1].prefer, endpoints[1].logits = "tea", True
    knowledge = reranking(store, settings)
    hits = await order(knowledge, ws, vs_id)
    assert names[hits[0].file_id] == "tea.txt"
    scores = [h.score for h in hits]
    assert all(0.0 < s < 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    await knowledge.close()


@pytest.mark.parametrize(
    "failure",
    [
        {"fail_with": 503},
        {"answer": {"results": [{"index": 7, "relevance_score": 0.9}]}},  # a document not sent
        {"answer": {"data": []}},  # not the /rerank shape
    ],
)
async def test_a_failing_reranker_leaves_the_fused_order_and_is_logged(
    settings: Settings, corpus: Any, endpoints: tuple[FakeEmbeddings, FakeRerank],
    failure: dict[str, Any], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    store, ws, vs_id, _ = corpus
    for attribute, value in failure.items():
        setattr(endpoints[1], attribute, value)
    plain = await fused_order(store, settings, ws, vs_id)
    knowledge = reranking(store, settings)
    with caplog.at_level(logging.WARNING, logger="assistd.knowledge"):
        hits = await order(knowledge, ws, vs_id)
    assert [(h.file_id, h.score) for h in hits] == [(h.file_id, h.score) for h in plain]
    assert any("reranking failed" in r.getMessage() for r in caplog.records)
    assert endpoints[1].requests  # it was asked
    await knowledge.close()


async def test_an_unreachable_reranker_leaves_the_fused_order(
    settings: Settings, corpus: Any, endpoints: tuple[FakeEmbeddings, FakeRerank]
) -> None:
    store, ws, vs_id, _ = corpus
    gone = settings.model_copy(
        update={"reranker": settings.reranker.model_copy(update={"base_url": "http://127.0.0.1:9/v1"})}
    ) if settings.reranker else settings  # fmt: skip
    plain = await fused_order(store, settings, ws, vs_id)
    knowledge = reranking(store, gone)
    hits = await order(knowledge, ws, vs_id)
    assert [h.file_id for h in hits] == [h.file_id for h in plain]
    await knowledge.close()


def test_a_reranker_without_base_url_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="a reranker needs base_url"):
        Settings(data_dir=tmp_path, reranker={"model": "bge-reranker"})
    assert HttpReranker.from_settings(Settings(data_dir=tmp_path).reranker) is None
