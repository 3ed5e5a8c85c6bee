"""Hybrid ranking: the vector leg and the keyword leg fused by Reciprocal Rank Fusion.

RRF gives each result ``sum(1 / (k + rank))`` over the legs that found it (k = 60, ranks from 1):
it needs no calibration between bm25 and cosine, which live on different scales.  The fused score
orders results; each result also keeps its cosine similarity to the query, which is what the
enricher compares with ``min_score`` (a fused score is at most 2/61 and means nothing absolute).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RRF_K = 60


def rrf(legs: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """``(id, fused score)`` best first, from legs of ids each ordered best first.  Ties keep the
    order in which the ids were first seen (vector leg first)."""
    scores: dict[str, float] = {}
    for leg in legs:
        for rank, item in enumerate(leg, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))


def cosines(query: np.ndarray, vectors: dict[str, object]) -> dict[str, float]:
    """Cosine similarity of the (unit) query vector with each stored (unit) vector."""
    out = {}
    for item, vector in vectors.items():
        if vector is None:
            continue
        v = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(v)) or 1.0
        out[item] = float(np.dot(query, v) / norm)
    return out
