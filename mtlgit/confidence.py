"""How sure recall is that a memory applies to a task: a calibrated probability from the raw scores.

The fused ranking score cannot say "nothing applies": z-scores are relative to the other candidates, so the
best of a pool of mismatches looks as good as the best of a pool of matches. The raw scores can: the dense
cosine, and the raw BM25 score (over log(1 + pool size), the scale of its idf, so that pools of other sizes
read alike). A logistic model over the two, fitted on the dev split of the agent-task benchmark
(``benchmarks/fit_confidence.py``), maps them to the probability that a task whose best memory scores so has a
memory that applies; recall leaves out each memory whose own scores fall below ``recall.min_confidence``, and
so returns fewer than k, or nothing.
"""

from __future__ import annotations

import numpy as np

# (intercept, cosine, BM25 / log(1 + pool size)) per mode, from benchmarks/fit_confidence.py on the dev split.
COEFFICIENTS = {
    "hybrid": (-7.464, 10.651, 2.689),
    "bm25": (-4.282, 0.0, 3.826),
    "dense": (-6.979, 16.432, 0.0),
}
# The default bar, chosen on the dev split: the lowest that keeps a hit for >= 95% of labelled tasks (README).
DEFAULT_MIN_CONFIDENCE = 0.55


def confidence(bm25: np.ndarray, cosine: np.ndarray, pool_size: np.ndarray | int, mode: str) -> np.ndarray:
    """The probability that each memory applies, from its raw BM25 score and its cosine with the query."""
    intercept, w_cosine, w_bm25 = COEFFICIENTS[mode]
    scale = np.log1p(np.maximum(np.asarray(pool_size, dtype=np.float64), 1.0))
    logit = intercept + w_cosine * np.asarray(cosine, dtype=np.float64) + w_bm25 * np.asarray(bm25) / scale
    result: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
    return result
