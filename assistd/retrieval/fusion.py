"""Reciprocal rank fusion of ranked lists, with scores in [0, 1] that follow the order.

A chunk's fused score is the sum over lists of 1 / (K + rank), divided by the most any
chunk could get (first in every list). So 1.0 means "first by every method", 0.5 "first by
one of two, absent from the other", and a `score_threshold` cuts the same way whatever the
raw scales of BM25 and cosine similarity were.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = 60  # the usual constant: damps the weight of the very top ranks
Key = TypeVar("Key", bound=Hashable)


def fuse(rankings: Sequence[Sequence[Key]], k: int = K) -> list[tuple[Key, float]]:
    """(key, score) best first; ties keep the order of first appearance."""
    lists = [r for r in rankings if r]
    if not lists:
        return []
    scores: dict[Key, float] = {}
    for ranking in lists:
        for rank, key in enumerate(ranking, 1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    best = len(rankings) / (k + 1)
    ordered = sorted(scores.items(), key=lambda item: -item[1])
    return [(key, min(1.0, score / best)) for key, score in ordered]
