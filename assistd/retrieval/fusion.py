"""Fusion of ranked lists by a convex combination of their normalised scores, with fused
scores in [0, 1] that follow the order.

Each list's scores (cosine similarity, BM25) are min-max normalised over the list, so its
best hit has 1 and its weakest 0; a chunk's fused score is the weighted sum over the lists
it appears in, the weights summing to 1. So 1.0 means "first by every method", and a
`score_threshold` cuts the same way whatever the raw scales were.

Why not reciprocal rank fusion (which this replaced): RRF keeps only ranks, so a keyword
list's noise ranks as high as a dense list's clear winner. On the evaluation set
(bench/knowledge_eval.py) RRF ranked below dense search alone on two of three slices
(nDCG@10: Python 0.781 vs 0.809, Chinese 0.822 vs 0.839), while the score combination
with the dense side weighted 0.75 ranked above both methods on every slice; that the
normalised-score combination beats RRF is also the finding of Bruch et al., "An Analysis
of Fusion Functions for Hybrid Retrieval" (2022). 0.75 is Weaviate's default for the same
fusion (its `alpha`), not a value fitted to these questions: 0.6 to 0.8 measure alike.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

DENSE_WEIGHT = 0.75  # the keyword side gets the rest
# Scores are normalised over each list's first WINDOW entries (later ones clip to 0), so a
# chunk's fused score, and the order of the top hits, do not depend on how deep the search
# went, i.e. on the max_num_results asked for.
WINDOW = 40
Key = TypeVar("Key", bound=Hashable)
Scored = Sequence[tuple[Key, float]]


def normalised(ranking: Scored[Key], window: int = WINDOW) -> dict[Key, float]:
    """Min-max normalised scores over the first `window` entries, clipped to [0, 1] (all
    1.0 when they are equal); a key's first entry counts."""
    first: dict[Key, float] = {}
    for key, score in ranking:
        first.setdefault(key, score)
    if not first:
        return {}
    top = sorted(first.values(), reverse=True)[:window]
    hi, lo = top[0], top[-1]
    return {k: max(0.0, (s - lo) / (hi - lo)) if hi > lo else 1.0 for k, s in first.items()}


def fuse(weighted: Sequence[tuple[float, Scored[Key]]]) -> list[tuple[Key, float]]:
    """(key, score) best first from (weight, [(key, raw score) best first]) lists; ties
    keep the order of first appearance. An empty list still takes its weight's share."""
    total = sum(weight for weight, _ in weighted)
    if total <= 0:
        return []
    scores: dict[Key, float] = {}
    for weight, ranking in weighted:
        for key, value in normalised(ranking).items():
            scores[key] = scores.get(key, 0.0) + weight / total * value
    ordered = sorted(scores.items(), key=lambda item: -item[1])
    return [(key, min(1.0, max(0.0, score))) for key, score in ordered]
