"""The evaluation harness (bench.knowledge_eval) on a small fixed slice of the committed
set, with the bundled MiniLM through the real KnowledgeService on SQLite: hybrid search
must rank at least as well as the better single method, and the figures must be the ones
recorded here (they are deterministic: same documents, same model, same index), so a change
that degrades retrieval or breaks the harness fails this test."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistd.retrieval.embedder import MiniLMEmbedder
from bench.knowledge_eval import evaluate, load_slice, ndcg, recall, subset

pytestmark = pytest.mark.slow  # about a minute of MiniLM on a busy 2-core machine

# Measured with this slice when the test was written (python, 20 questions, 60 documents).
EXPECTED = {
    "keyword": {"ndcg@10": 0.7678, "recall@20": 0.925},
    "dense": {"ndcg@10": 0.7927, "recall@20": 1.0},
    "hybrid": {"ndcg@10": 0.8181, "recall@20": 1.0},
}


def test_the_metrics_score_a_ranking_as_the_textbook_does() -> None:
    assert ndcg(["a", "b"], {"a"}) == 1.0
    assert ndcg(["x", "a"], {"a"}) == pytest.approx(1 / 1.5849625)  # 1 / log2(3)
    assert ndcg(["x", "y"], {"a"}) == 0.0
    assert recall(["a", "x", "b"], {"a", "b", "c", "d"}) == 0.5
    assert recall(["x"] * 20 + ["a"], {"a"}) == 0.0  # past the cut-off


async def test_hybrid_beats_either_method_alone_on_a_fixed_slice(tmp_path: Path) -> None:
    fixed = subset(load_slice("python"), questions=20, docs=60)
    assert (len(fixed.questions), len(fixed.docs)) == (20, 60)
    figures = (await evaluate(fixed, MiniLMEmbedder(), tmp_path))["modes"]
    for metric in ("ndcg@10", "recall@20"):
        best_single = max(figures["keyword"][metric], figures["dense"][metric])
        assert figures["hybrid"][metric] >= best_single, (metric, figures)
    for mode, expected in EXPECTED.items():
        for metric, value in expected.items():
            assert figures[mode][metric] == pytest.approx(value, abs=0.03), (mode, metric, figures)
