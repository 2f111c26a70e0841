"""Chunks are cut at paragraph and sentence boundaries, sized in the bundled tokenizer's
word pieces, overlap by whole sentences, and keep their page and position."""

from __future__ import annotations

import itertools

import pytest

from assistd.errors import InvalidRequest
from assistd.retrieval.chunking import ChunkingStrategy, chunk_pages
from assistd.retrieval.minilm import tokenizer
from assistd.retrieval.parsers import Page


def count(text: str) -> int:
    return len(tokenizer().encode(text, add_special_tokens=False).ids)


def paragraphs(n: int, sentences: int = 6) -> str:
    return "\n\n".join(
        " ".join(f"Topic {p} detail {s} is described here." for s in range(sentences))
        for p in range(n)
    )


def test_defaults_are_openais_auto_strategy() -> None:
    assert ChunkingStrategy() == ChunkingStrategy(800, 400)


@pytest.mark.parametrize(
    ("size", "overlap", "field"),
    [
        (99, 0, "max_chunk_size_tokens"),
        (4097, 0, "max_chunk_size_tokens"),
        (200, 101, "chunk_overlap_tokens"),
        (200, -1, "chunk_overlap_tokens"),
    ],
)
def test_static_strategy_bounds_name_the_field(size: int, overlap: int, field: str) -> None:
    with pytest.raises(InvalidRequest) as bad:
        ChunkingStrategy.static(size, overlap)
    assert bad.value.field == f"chunking_strategy.static.{field}"


def test_static_strategy_extremes_are_accepted() -> None:
    assert ChunkingStrategy.static(100, 50) == ChunkingStrategy(100, 50)
    assert ChunkingStrategy.static(4096, 2048) == ChunkingStrategy(4096, 2048)


def test_chunks_fit_the_budget_and_end_on_sentences() -> None:
    chunks = chunk_pages([Page(None, paragraphs(20))], ChunkingStrategy.static(100, 40))
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.tokens <= 100
        assert count(chunk.text) == chunk.tokens
        assert chunk.text.startswith("Topic") and chunk.text.endswith("described here.")
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_consecutive_chunks_overlap_by_whole_sentences_within_the_limit() -> None:
    chunks = chunk_pages([Page(None, paragraphs(20))], ChunkingStrategy.static(100, 40))
    for first, second in itertools.pairwise(chunks):
        head = second.text.split(". ")[0] + "."
        if head in first.text:  # overlapped: the shared part is a tail of the first
            shared = first.text[first.text.index(head) :]
            assert second.text.startswith(shared.replace("\n\n", " ")[:20])
            assert count(shared) <= 40
    assert any(c.text.split(". ")[0] in p.text for p, c in itertools.pairwise(chunks))


def test_zero_overlap_shares_nothing_and_covers_everything() -> None:
    text = paragraphs(10)
    chunks = chunk_pages([Page(None, text)], ChunkingStrategy.static(100, 0))
    sentences = [s for c in chunks for s in c.text.replace("\n\n", " ").split(". ")]
    assert len(sentences) == len(set(sentences)) == 60


def test_a_paragraph_that_fits_is_not_split_when_a_break_is_near() -> None:
    text = "\n\n".join(["Short opening paragraph here.", paragraphs(1, 5), paragraphs(1, 5)])
    chunks = chunk_pages([Page(None, text)], ChunkingStrategy.static(100, 0))
    assert chunks[0].text.endswith("described here.")
    assert all(not c.text.startswith("Topic 0 detail 1") for c in chunks)


def test_a_sentence_longer_than_the_budget_is_windowed_not_dropped() -> None:
    long_sentence = " ".join(f"word{i}" for i in range(400))
    chunks = chunk_pages([Page(None, long_sentence)], ChunkingStrategy.static(100, 0))
    assert all(c.tokens <= 100 for c in chunks)
    assert "word0" in chunks[0].text and "word399" in chunks[-1].text


def test_chunks_remember_the_page_they_start_on() -> None:
    # Paragraphs of ~80 tokens: each chunk of 100 holds one.
    pages = [Page(n, paragraphs(2, 9).replace("Topic", f"Page{n}")) for n in (1, 2, 3)]
    chunks = chunk_pages(pages, ChunkingStrategy.static(100, 0))
    assert len(chunks) == 6
    for chunk in chunks:
        assert chunk.text.startswith(f"Page{chunk.page} ")


def test_chinese_sentences_split_at_chinese_punctuation() -> None:
    text = "".join(f"第{i}句话讲的是向量检索的原理。" for i in range(60))
    chunks = chunk_pages([Page(None, text)], ChunkingStrategy.static(100, 0))
    assert len(chunks) > 1
    assert all(c.text.endswith("。") and c.tokens <= 100 for c in chunks)
