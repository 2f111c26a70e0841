"""Query processing for keyword search and the fusion of the two searches' lists."""

from __future__ import annotations

import pytest

from assistd.retrieval.fusion import fuse, normalised
from assistd.store.keywords import query_terms, selective


def test_a_question_loses_its_function_words_before_keyword_search() -> None:
    assert query_terms("How do I get a file's size in bytes?") == [
        "get",
        "file",
        "s",
        "size",
        "bytes",
    ]
    # Chinese question words go, and no bigram spans where they were.
    terms = query_terms("怎样查看磁盘空间")
    assert terms == ["查看", "看磁", "磁盘", "盘空", "空间"]
    assert "怎样" not in query_terms("如何怎样压缩文件") and "压缩" in query_terms(
        "如何怎样压缩文件"
    )
    # Characters that are parts of words stay: 可用 is "available", not the particle 用.
    assert "可用" in query_terms("还剩多少可用空间")


def test_a_query_of_nothing_but_function_words_keeps_them() -> None:
    assert query_terms("how do I") == ["how", "do", "i"]
    assert query_terms("什么") == ["什么"]


def test_fused_scores_lie_in_0_1_follow_the_order_and_weigh_the_lists() -> None:
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    keyword = [("c", 12.0), ("a", 3.0)]
    fused = fuse([(0.75, dense), (0.25, keyword)])
    assert [k for k, _ in fused] == ["a", "b", "c"]  # 0.75, 0.375, 0.25
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert dict(fused)["a"] == pytest.approx(0.75)  # first by dense, last by keyword
    assert fuse([(1.0, dense), (1.0, [("a", 2.0)])])[0] == ("a", 1.0)  # first by both
    # A clear dense winner is not dragged down by keyword noise ranked above it.
    assert fuse([(0.75, [("x", 0.9), ("y", 0.2)]), (0.25, [("y", 5.0), ("x", 4.9)])])[0][0] == "x"


def test_normalisation_takes_each_keys_first_score_and_handles_equal_scores() -> None:
    assert normalised([("a", 2.0), ("b", 1.0), ("a", 0.5)]) == {"a": 1.0, "b": 0.0}
    assert normalised([("a", 0.3), ("b", 0.3)]) == {"a": 1.0, "b": 1.0}
    assert normalised([]) == {} and fuse([]) == []


def test_the_order_of_the_top_hits_does_not_depend_on_how_deep_the_search_went() -> None:
    dense = [(f"d{i}", 1.0 - i / 100) for i in range(200)]
    keyword = [("d5", 9.0), ("d0", 1.0)] + [(f"k{i}", 0.9 - i / 1000) for i in range(198)]
    shallow = fuse([(0.75, dense[:40]), (0.25, keyword[:40])])[:10]
    deep = fuse([(0.75, dense), (0.25, keyword)])[:10]
    assert shallow == deep


def test_a_query_is_ranked_by_its_rarest_words_within_the_budget() -> None:
    terms = ["python", "asyncio", "gather", "function"]
    # asyncio and gather are rare; python and function each match most of the index.
    assert selective(terms, [1990, 30, 12, 2001], budget=2000) == ["asyncio", "gather"]
    assert selective(terms, [900, 30, 12, 2001], budget=2000) == ["python", "asyncio", "gather"]
    # Every word common: the rarest alone is ranked, never none.
    assert selective(terms, [2001, 2001, 1999, 2001], budget=2000) == ["gather"]
    assert selective(["one"], [5000], budget=2000) == ["one"]
