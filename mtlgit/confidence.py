"""How sure recall is that a memory applies to a task: a calibrated probability from the raw scores.

The fused ranking score cannot say "nothing applies": z-scores are relative to the other candidates, so the
best of a pool of mismatches looks as good as the best of a pool of matches. The raw scores can: the dense
cosine, and the share of the query's BM25 weight (the sum of its terms' idf) that a memory matches. A logistic
model over those two maps them to the probability that a memory is labelled relevant; it was fitted on the
dev split of the agent-task benchmark (``benchmarks/fit_confidence.py`` prints the fit and the figures), and
recall leaves out what falls below ``recall.min_confidence``.
"""

from __future__ import annotations

import numpy as np

# Fitted by benchmarks/fit_confidence.py on benchmarks/agent_tasks (dev split); see the README.
_COEFFICIENTS = {
    # mode: (intercept, cosine, BM25 share)
    "hybrid": (-4.0, 8.0, 8.0),
    "bm25": (-3.0, 0.0, 12.0),
    "dense": (-5.0, 11.0, 0.0),
}
DEFAULT_MIN_CONFIDENCE = {"hybrid": 0.3, "bm25": 0.3, "dense": 0.3}


def confidence(bm25: np.ndarray, cosine: np.ndarray, ceiling: float, mode: str) -> np.ndarray:
    """The probability that each memory applies, from its raw BM25 score (over the query's ``ceiling``) and its
    cosine with the query."""
    intercept, w_cosine, w_share = _COEFFICIENTS[mode]
    share = np.asarray(bm25, dtype=np.float64) / ceiling if ceiling > 0 else np.zeros(len(bm25))
    logit = intercept + w_cosine * np.asarray(cosine, dtype=np.float64) + w_share * share
    result: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
    return result
