"""Near-duplicate memories: the same lesson written twice.

Two memories are near-duplicates when their static-model vectors have a cosine of at least
``NEAR_DUPLICATE`` (0.9), or when they share most of their stemmed terms (Jaccard of term sets at least
``SAME_TERMS``, 0.7). Both thresholds were set by looking at the pairs they flag in a pool of real agent
rules (many files there are copies with small edits) and in the starter pool (where no pair should be
flagged); see tests/test_transfer.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mtlgit.index import Snapshot

NEAR_DUPLICATE = 0.9
SAME_TERMS = 0.7
_BLOCK = 2048


@dataclass
class Similar:
    cosine: float
    jaccard: float
    memory: dict[str, Any]
    path: str

    @property
    def duplicate(self) -> bool:
        return self.cosine >= NEAR_DUPLICATE or self.jaccard >= SAME_TERMS


def _jaccard(a: set[Any], b: set[Any]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def closest(
    snapshot: Snapshot, vector: np.ndarray, terms: list[str], k: int = 3, exclude_ids: set[str] | None = None
) -> list[Similar]:
    """The ``k`` memories of ``snapshot`` most similar to a memory with this vector and these terms."""
    if snapshot.n_docs == 0:
        return []
    cosine = snapshot.dense_scores(vector)
    order = np.argsort(-cosine)[: k + len(exclude_ids or ())]
    records = snapshot.records(order.tolist())
    paths = snapshot.doc_paths(order.tolist())
    mine = {t.encode("utf-8") for t in terms}
    out = []
    for row, record, path in zip(order.tolist(), records, paths, strict=True):
        if exclude_ids and record["id"] in exclude_ids:
            continue
        theirs = snapshot.terms_of(row)
        union = len(mine | theirs)
        out.append(Similar(float(cosine[row]), len(mine & theirs) / union if union else 0.0, record, path))
    return out[:k]


def duplicate_pairs(snapshot: Snapshot, limit: int = 1000) -> list[tuple[Similar, Similar]]:
    """Every pair of active memories that are near-duplicates, most similar first (blockwise, O(n^2))."""
    n = snapshot.n_docs
    if n < 2:
        return []
    blocks = list(snapshot.vector_blocks(_BLOCK))
    found: list[tuple[float, int, int]] = []
    for number, (start, block) in enumerate(blocks):
        for other, theirs in blocks[number:]:
            sims = block @ theirs.T
            hit_rows, hit_cols = np.nonzero(sims >= min(NEAR_DUPLICATE, 0.8))
            for r, c in zip(hit_rows.tolist(), hit_cols.tolist(), strict=True):
                i, j = start + r, other + c
                if i < j:
                    found.append((float(sims[r, c]), i, j))
    active = snapshot.attr_in("status", ["active"])
    terms: dict[int, set[bytes]] = {}
    pairs: list[tuple[float, float, int, int]] = []
    for cos, i, j in found:
        if not (active[i] and active[j]):
            continue
        a = terms.setdefault(i, snapshot.terms_of(i))
        b = terms.setdefault(j, snapshot.terms_of(j))
        jac = _jaccard(a, b)
        if cos >= NEAR_DUPLICATE or jac >= SAME_TERMS:
            pairs.append((cos, jac, i, j))
    pairs.sort(key=lambda p: (-max(p[0], p[1]), p[2], p[3]))
    pairs = pairs[:limit]
    wanted = sorted({r for _c, _j, i, j in pairs for r in (i, j)})
    records = dict(zip(wanted, snapshot.records(wanted), strict=True))
    paths = dict(zip(wanted, snapshot.doc_paths(wanted), strict=True))
    return [
        (Similar(cos, jac, records[i], paths[i]), Similar(cos, jac, records[j], paths[j])) for cos, jac, i, j in pairs
    ]
