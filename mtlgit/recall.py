"""Recall: score every memory of a snapshot against a query, fuse the two halves, filter, take the top k.

Both halves are whole-pool numpy operations over memory-mapped arrays, segment by segment: BM25 reads only the
postings of the query's terms, with document frequencies and the average length taken over the live memories
of all segments (so scores equal those of one rebuilt index); the dense half is one matrix-vector product with
the query's vector per segment. Hybrid scores
standardise each half over the candidates (z-scores) and average them: chosen by measurement on SciFact's
train split and on agent-memory cases (README, "Retrieval quality").

From :data:`TWO_STAGE_MIN` candidates a hybrid recall scores the dense half in two stages (README, "Recall in
two stages"): every candidate is scored on the stored head of the vectors only, its dense z-score estimated from
that, and the :data:`RESCORE` best by the fused estimate (plus k) are scored in full. The mean and spread that the full
z-scores need are exact, from the segments' stored moments (Snapshot.dense_stage), so a memory rescored gets
the score the exhaustive path gives it (to float rounding). The :data:`BAR_RESCORE` best by estimated
confidence are scored in full too, so that the memories which clear the confidence bar are among those scored
when few or none do; no candidate set is scored in full on this path.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtlgit.analysis import analyze, words
from mtlgit.confidence import COEFFICIENTS, DEFAULT_MIN_CONFIDENCE, confidence
from mtlgit.embed import load_model
from mtlgit.errors import MtlgitError
from mtlgit.index import Manifest, Snapshot, WorktreeIndex, rev_snapshot
from mtlgit.index.arrays import bm25_weights, idf
from mtlgit.index.common import path_key
from mtlgit.query import prepare
from mtlgit.repo import find_repo

DENSE_WEIGHT = 0.5
# Fused scores closer than this are ties (ordered by path): the float32 cosine of one memory differs in its last
# digits with the number of rows BLAS is handed and the path that scores it (~1e-6 of a fused score).
TIE = 1e-5
_BLOCK = 32768
# From this many candidates the dense half is scored in two stages; below it every candidate in full (exact).
TWO_STAGE_MIN = 20_000
# How many candidates of the first stage are scored in full, besides k: the top 3 agree with the exhaustive
# ranking for >= 99.5% of the task-worded queries of benchmarks/bench_two_stage.py at 100k.
RESCORE = 300
# How many candidates with the best estimated confidence are scored in full as well, so that the memories which
# clear the confidence bar are among those scored when few do (README, "Recall in two stages").
BAR_RESCORE = 100
# When fewer than k of those clear the bar, this many by estimated confidence are scored in full before the
# answer is taken (the estimate from the head is rough: a memory that clears the bar ranked past the first 100).
BAR_RESCORE_WIDE = 2000
# Two stages need this many candidates holding a word of the query: with fewer, the fused ranking of the rest is
# their head's alone, which can place a true top hit in the thousands (as in dense mode).
MIN_MATCHED = RESCORE


@dataclass
class Filters:
    formats: Sequence[str] = ()
    domains: Sequence[str] = ()
    exclude_domains: Sequence[str] = ()
    tags: Sequence[str] = ()
    scopes: Sequence[str] = ()
    include_retired: bool = False
    include_trajectories: bool = False


@dataclass
class Hit:
    rank: int
    score: float
    bm25: float
    dense: float
    path: str
    memory: dict[str, Any]
    pool: str = "local"
    notes: list[str] = field(default_factory=list)
    confidence: float = 1.0
    matched: dict[str, float] = field(default_factory=dict)  # query term -> its part of the BM25 score
    citations: dict[str, Any] | None = None  # the checked code citations (mtlgit/citations.py)
    prior: float = 0.0  # the outcome ledger's part of ``score`` (mtlgit.ledger.prior)
    blob: str | None = None  # the git blob id of the file the memory was indexed from (a receipt names it)

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "confidence": round(self.confidence, 4),
            "scores": {"bm25": round(self.bm25, 6), "dense": round(self.dense, 6), "prior": round(self.prior, 6)},
            **self.memory,
            "path": self.path,
            "pool": self.pool,
            "notes": self.notes,
            **({"citations": self.citations} if self.citations else {}),
        }

    def explain(self) -> dict[str, Any]:
        """Why this memory came up: its matched terms with their share of the BM25 score, the dense cosine,
        the fused score, the outcome ledger's part of it (the prior) and the confidence."""
        total = sum(self.matched.values()) or 1.0
        return {
            "terms": {term: round(value / total, 4) for term, value in self.matched.items()},
            "bm25": round(self.bm25, 6),
            "cosine": round(self.dense, 6),
            "fused": round(self.score, 6),
            "prior": round(self.prior, 6),
            "confidence": round(self.confidence, 4),
            **({"cites": self.citations["state"]} if self.citations else {}),
        }


def bm25_scores(snapshot: Snapshot, terms: Sequence[str]) -> np.ndarray:
    """BM25 of every memory for the query terms, each distinct term counted once.

    Counting a repeated query term again (as bm25s does) lets a long task text that repeats one incidental
    word -- a module name in every line of a log -- outweigh the words that name its situation; counted once,
    the agent-task dev split gained 0.03 nDCG@10 (README, "Retrieval quality").

    Each term's weights are computed once per snapshot and kept (up to :data:`TERM_CACHE` postings, the least
    recently used dropped first): in a long-lived process (the MCP server) the common words of task texts recur,
    and their postings are most of the work. The weights are summed per memory in float64, so the sum does not
    depend on the order of terms or segments.
    """
    n_docs = snapshot.n_docs
    found = [part for part in _weighted(snapshot, _distinct(terms)) if len(part[0])] if terms and n_docs else []
    if not found:
        return np.zeros(n_docs, dtype=np.float32)
    rows = found[0][0] if len(found) == 1 else np.concatenate([at for at, _w in found])
    weights = found[0][1] if len(found) == 1 else np.concatenate([w for _at, w in found])
    return np.bincount(rows, weights, minlength=n_docs).astype(np.float32)


# The most postings whose weights a snapshot keeps (int64 row and float32 weight each: 12 MB).
TERM_CACHE = 1_000_000


class _Kept(dict[bytes, tuple[np.ndarray, np.ndarray]]):
    """A snapshot's kept term weights, least recently used first, and how many postings they hold."""

    postings = 0


def _weighted(snapshot: Snapshot, wanted: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(snapshot rows, BM25 weights) of the live memories holding each of the sorted terms ``wanted``, with idf
    and the average length taken over every live memory of the snapshot (empty for a term no memory holds)."""
    kept: _Kept = snapshot.memo("term weights", _Kept)
    terms = wanted.tolist()
    missing = [term for term in terms if term not in kept]
    if missing:
        found = {term: (at, tf) for term, at, tf in _postings(snapshot, np.array(missing, dtype=bytes))}
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        held = [term for term in missing if term in found]
        if held:
            sizes = [len(found[term][0]) for term in held]
            tf = np.concatenate([found[term][1] for term in held])
            rows = np.concatenate([found[term][0] for term in held])
            weight = np.repeat([idf(size, snapshot.n_docs) for size in sizes], sizes)
            weights = bm25_weights(tf, snapshot.doc_lengths()[rows], weight, _avgdl(snapshot))
            bounds = np.cumsum(sizes)[:-1].tolist()
            for term, at, w in zip(held, np.split(rows, bounds), np.split(weights, bounds), strict=True):
                kept[term] = (at, w)
            kept.postings += len(rows)
        for term in missing:
            kept.setdefault(term, empty)
    answer = []
    for term in terms:
        answer.append(kept.pop(term))
        kept[term] = answer[-1]  # the most recently used last
    while kept.postings > TERM_CACHE and len(kept) > len(terms):
        kept.postings -= len(kept.pop(next(iter(kept)))[0])
    return answer


def _avgdl(snapshot: Snapshot) -> float:
    return snapshot.manifest.total_len / snapshot.n_docs if snapshot.n_docs else 1.0


def _postings(snapshot: Snapshot, wanted: np.ndarray) -> list[tuple[bytes, np.ndarray, np.ndarray]]:
    """For each query term that a live memory holds: the snapshot rows holding it (a memory appears once in a
    term's postings) and its count in each."""
    places = snapshot.row_places()
    offsets = snapshot.segment_offsets()
    rows: list[list[np.ndarray]] = [[] for _ in range(len(wanted))]
    counts: list[list[np.ndarray]] = [[] for _ in range(len(wanted))]
    for number, segment in enumerate(snapshot.segments):
        place = places[number]
        for i, docs, tf in segment.postings_of(wanted):
            if place is None:
                rows[i].append(docs.astype(np.int64) + offsets[number])
                counts[i].append(tf)
                continue
            at = place[docs]
            live = at >= 0
            rows[i].append(at[live])
            counts[i].append(tf[live])
    out = []
    for term, found, held in zip(wanted.tolist(), rows, counts, strict=True):
        if len(found) == 1 and len(found[0]):
            out.append((term, found[0], held[0]))
        elif sum(len(r) for r in found):
            out.append((term, np.concatenate(found), np.concatenate(held)))
    return out


def _distinct(terms: Sequence[str]) -> np.ndarray:
    """The distinct terms, sorted as bytes like the vocabulary (np.unique would import numpy.ma: ~35 ms)."""
    return np.array(sorted({t.encode("utf-8") for t in terms}), dtype=bytes)


def dense_scores(snapshot: Snapshot, vector: np.ndarray) -> np.ndarray:
    """Cosine of every memory with the query vector (one matrix-vector product per segment block)."""
    return snapshot.dense_scores(vector)


# The candidates of this many sets of filters are kept on a snapshot, the least recently used dropped first: a
# long-lived server asked with ever new filters would otherwise keep a mask and a row list for each (~1 MB at
# 100k memories).
FILTER_SETS_KEPT = 8


def _kept_candidates(snapshot: Snapshot, filters: Filters) -> dict[str, np.ndarray]:
    """The kept entry of ``filters`` (its "mask", and its "rows" once asked), made or moved to the newest."""
    kept: OrderedDict[tuple[Any, ...], dict[str, np.ndarray]] = snapshot.memo("filter sets", OrderedDict)
    key = _filters_key(filters)
    entry = kept.get(key)
    if entry is None:
        entry = kept[key] = {"mask": _candidate_mask(snapshot, filters)}
        while len(kept) > FILTER_SETS_KEPT:
            kept.popitem(last=False)
    else:
        kept.move_to_end(key)
    return entry


def candidate_mask(snapshot: Snapshot, filters: Filters) -> np.ndarray:
    """Whether each memory passes ``filters`` (read-only: kept on the snapshot for the next recall)."""
    return _kept_candidates(snapshot, filters)["mask"]


def _filters_key(filters: Filters) -> tuple[Any, ...]:
    return (
        tuple(filters.formats),
        tuple(filters.domains),
        tuple(filters.exclude_domains),
        tuple(filters.tags),
        tuple(filters.scopes),
        filters.include_retired,
        filters.include_trajectories,
    )


def _candidate_rows(snapshot: Snapshot, filters: Filters, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(mask, rows) of the memories that pass ``filters`` and ``allowed``."""
    entry = _kept_candidates(snapshot, filters)
    mask = entry["mask"]
    if allowed is not None:
        mask = mask & allowed
        return mask, np.flatnonzero(mask)
    if "rows" not in entry:
        rows = np.flatnonzero(mask)
        rows.flags.writeable = False  # kept for later recalls, and handed out without a copy
        entry["rows"] = rows
    return mask, entry["rows"]


def _candidate_mask(snapshot: Snapshot, filters: Filters) -> np.ndarray:
    mask = np.ones(snapshot.n_docs, dtype=bool)
    if not filters.include_retired:
        mask &= snapshot.attr_in("status", ["active"])
    if filters.formats:
        mask &= snapshot.attr_in("format", filters.formats)
    elif not filters.include_trajectories:
        mask &= ~snapshot.attr_in("format", ["trajectory"])
    if filters.scopes:
        mask &= snapshot.attr_in("scope", filters.scopes)
    for prefix, values, keep in (
        ("d:", filters.domains, True),
        ("t:", filters.tags, True),
        ("d:", filters.exclude_domains, False),
    ):
        if values:
            has = snapshot.label_mask([prefix + v.strip().lower() for v in values])
            mask &= has if keep else ~has
    mask.flags.writeable = False
    return mask


def _standardise(values: np.ndarray) -> np.ndarray:
    """z-scores over the candidates (all zeros when every candidate scores the same)."""
    if not len(values):
        return values
    spread = float(values.std())
    if spread < 1e-12:
        return np.zeros_like(values)
    return (values - float(values.mean())) / spread


def _mean_sd(values: np.ndarray) -> tuple[float, float]:
    """The mean and standard deviation of ``values`` as :func:`_standardise` takes them, from their sum and one
    dot product where that is as exact (0.04 ms against 0.25 ms over 100k BM25 scores: ``std()`` makes two
    passes and a temporary). A spread below the mean would lose digits to cancellation there: ``std()`` then."""
    n = len(values)
    mean = float(values.sum()) / n
    variance = float(np.dot(values, values)) / n - mean * mean
    if variance < mean * mean:
        return mean, float(values.std())
    return mean, variance**0.5


def fuse(bm25: np.ndarray, dense: np.ndarray, mode: str, dense_weight: float = DENSE_WEIGHT) -> np.ndarray:
    """The ranking score of each candidate for ``mode``."""
    if mode == "bm25":
        return bm25
    if mode == "dense":
        return dense
    return dense_weight * _standardise(dense) + (1.0 - dense_weight) * _standardise(bm25)


@dataclass
class Source:
    """One snapshot to search: the working tree (or a revision) of this repository, or a synced pool."""

    snapshot: Snapshot
    pool: str = "local"
    trust: str = "local"
    allowed: np.ndarray | None = None


def search(
    snapshot: Snapshot,
    query: str,
    query_vector: Any,
    k: int = 3,
    mode: str = "hybrid",
    filters: Filters | None = None,
    dense_weight: float = DENSE_WEIGHT,
    allowed: np.ndarray | None = None,
    min_confidence: float = 0.0,
) -> list[Hit]:
    """The top ``k`` memories of ``snapshot`` for ``query``.

    :param query_vector: the query's embedding, or a callable taking the text to embed (called only when needed).
    :param allowed: a boolean mask over the snapshot's memories; only those may be returned.
    """
    return search_sources(
        [Source(snapshot, allowed=allowed)], query, query_vector, k, mode, filters, dense_weight, min_confidence
    )


def search_sources(
    sources: Sequence[Source],
    query: str,
    query_vector: Any,
    k: int = 3,
    mode: str = "hybrid",
    filters: Filters | None = None,
    dense_weight: float = DENSE_WEIGHT,
    min_confidence: float = 0.0,
    explain: bool = False,
    why: list[str] | None = None,
    prior: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[Hit]:
    """The top ``k`` memories over several snapshots, scored and fused together (one normalisation for all),
    among those whose confidence is at least ``min_confidence``.

    A query with no content word (only stop words or punctuation) matches nothing.

    :param explain: also give each hit its matched terms (:meth:`Hit.explain`).
    :param why: when nothing is returned, the reason is appended to this list.
    :param prior: the outcome ledger's prior of memories by id (:class:`mtlgit.receipts.RecallPrior`).
    """

    def nothing(reason: str) -> list[Hit]:
        if why is not None:
            why.append(reason)
        return []

    if k <= 0:
        return nothing("k is 0")
    filters = filters or Filters()
    prepared = prepare(query)
    terms = analyze(prepared.lexical)
    if not terms:
        return nothing("the query has no content words to match")
    vector: Any = None
    owners, rows_all, bm25_all, masks = [], [], [], []
    for number, source in enumerate(sources):
        snapshot = source.snapshot
        if snapshot.n_docs == 0:
            continue
        mask, rows = _candidate_rows(snapshot, filters, source.allowed)
        if not len(rows):
            continue
        if mode == "dense":
            bm25 = np.zeros(len(rows), np.float32)
        else:
            bm25 = bm25_scores(snapshot, terms)
            if len(rows) < len(bm25):  # rows are distinct and sorted: as many as memories means every one
                bm25 = bm25[rows]
        owners.append(np.full(len(rows), number, dtype=np.int32))
        rows_all.append(rows)
        bm25_all.append(bm25)
        masks.append(mask)
    if not rows_all:
        return nothing("no memory to search: the pool is empty, or the filters leave none")
    if len(rows_all) == 1:  # one source (most recalls): no copies
        owner, rows, bm25 = owners[0], rows_all[0], bm25_all[0]
    else:
        owner, rows, bm25 = np.concatenate(owners), np.concatenate(rows_all), np.concatenate(bm25_all)
    if mode == "bm25" and not bm25.any():
        return nothing("no memory has a word of the query")
    if mode != "bm25":
        vector = query_vector(prepared.dense) if callable(query_vector) else query_vector
    shift = None
    sizes = np.array([source.snapshot.n_docs for source in sources])
    staged = None
    # Two stages in hybrid mode only, where the exact BM25 half carries a memory the head underrates into the
    # rescored set (in dense mode nothing does: a true top 1 can rank in the thousands by its head; nor does it
    # when fewer than MIN_MATCHED candidates hold a word of the query, a misspelt one say). The prior
    # needs the spread of the fused scores over every candidate: it keeps the exhaustive path too.
    if (
        mode == "hybrid"
        and prior is None
        and len(rows) >= max(TWO_STAGE_MIN, RESCORE + k + 1)
        and np.count_nonzero(bm25) >= MIN_MATCHED
    ):
        staged, staged_sure = _two_stage(
            sources,
            [int(o[0]) for o in owners],
            masks,
            owner,
            rows,
            bm25,
            vector,
            k,
            dense_weight,
            sizes,
            min_confidence,
        )
    if staged is not None:
        owner, rows, bm25, dense, score = staged
        sure = staged_sure
    else:
        if mode != "bm25":
            dense = np.concatenate(
                [sources[int(o[0])].snapshot.dense_scores(vector)[r] for o, r in zip(owners, rows_all, strict=True)]
            )
        else:
            dense = np.zeros(len(rows), dtype=np.float32)
        score = fuse(bm25, dense, mode, dense_weight)
        shift = _prior_shift(prior, sources, owner, rows, score)
        if shift is not None:
            score = score + shift
        # The bar applies before the top k is taken, so a memory that clears it is never pushed out by ones that
        # do not, and the answer for k=1 is the first answer for k=2.
        sure = confidence(bm25, dense, sizes[owner], mode)
    eligible = np.flatnonzero(sure >= min_confidence)
    if not len(eligible):
        return nothing(
            f"no memory cleared the confidence bar {min_confidence:g}: nothing in the pool seems to apply to this "
            "task (--min-confidence 0 shows the closest anyway)"
        )
    top = min(k, len(eligible))
    if top < len(eligible):  # every candidate tied with the k-th is ordered too, so the top k never depends on k
        cut = np.partition(-score[eligible], top - 1)[top - 1]
        best = eligible[-score[eligible] <= cut + TIE]
    else:
        best = eligible
    paths = dict(zip(best.tolist(), _per_source(sources, owner, rows, best, Snapshot.doc_paths), strict=True))
    best = np.array(_ranked(paths, score, [sources[int(owner[i])].pool for i in paths])[:top], dtype=np.int64)
    shown = shown_words(prepared.lexical) if explain and mode != "dense" else {}
    hits: list[Hit] = []
    records = _per_source(sources, owner, rows, best, Snapshot.records)
    blobs = _per_source(sources, owner, rows, best, Snapshot.doc_blob_ids)
    for i, record, blob in zip(best.tolist(), records, blobs, strict=True):
        source = sources[int(owner[i])]
        row = int(rows[i])
        path = paths[i]
        hit = Hit(len(hits) + 1, float(score[i]), float(bm25[i]), float(dense[i]), path, record, pool=source.pool)
        hit.confidence = float(sure[i])
        hit.prior = float(shift[i]) if shift is not None else 0.0
        hit.blob = blob
        if explain and mode != "dense":
            hit.matched = {shown.get(t, t): v for t, v in matched_terms(source.snapshot, terms, row).items()}
        if source.trust == "untrusted":
            hit.notes.append(f"from the untrusted pool '{source.pool}': treat it as a suggestion and verify it")
        hits.append(hit)
    return hits


def _two_stage(
    sources: Sequence[Source],
    numbers: list[int],
    masks: list[np.ndarray],
    owner: np.ndarray,
    rows: np.ndarray,
    bm25: np.ndarray,
    vector: np.ndarray,
    k: int,
    dense_weight: float,
    sizes: np.ndarray,
    min_confidence: float,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """((owner, row, BM25, cosine, fused score), confidence) of the candidates worth scoring in full, fused
    with the exact mean and spread of the cosine over all candidates.

    Those are the union of two sets, each from the head cosine h alone and the exact BM25 score: the best
    RESCORE + k by the fused estimate (the BM25 z-score and the best estimate of the dense z-score from h: the
    regression of the full z-score on h, corr(h, d) times h's z-score), which holds the top k; and the best
    BAR_RESCORE by the estimated confidence (the same regression's estimate of the cosine itself, and the raw
    BM25 score the bar weighs), which holds the memories that clear the bar when few do. When fewer than k of
    them clear ``min_confidence``, the best BAR_RESCORE_WIDE by estimated confidence are scored in full too.
    """
    heads, sums = [], np.zeros(6, dtype=np.float64)
    for number, mask in zip(numbers, masks, strict=True):
        head, part = sources[number].snapshot.dense_stage(vector, mask)
        heads.append(head)
        sums += part
    n = sums[0]
    mean_h, mean_d = sums[1] / n, sums[3] / n
    var_h = max(sums[2] / n - mean_h * mean_h, 0.0)
    sd_d = max(sums[4] / n - mean_d * mean_d, 0.0) ** 0.5
    cov = sums[5] / n - mean_h * mean_d
    head = heads[0] if len(heads) == 1 else np.concatenate(heads)
    mean_b, sd_b = _mean_sd(bm25)  # as _standardise takes them
    # Both rankings are of a*h + b*BM25 (constants dropped): the slope of d on h is cov / var_h.
    slope = cov / var_h if var_h > 1e-24 else 0.0
    w_cosine, w_bm25 = COEFFICIENTS["hybrid"][1:]
    scale = np.log1p(np.maximum(sizes, 1)).astype(np.float64)
    per_bm25 = 1.0 / scale[owner] if len(set(scale.tolist())) > 1 else 1.0 / float(scale[0])

    def scored(
        keep: np.ndarray,
    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        kept_owner, kept_rows, kept_bm25 = owner[keep], rows[keep], bm25[keep]
        kept_head = head[keep]  # the first stage's head products: only the tails are read
        if len(numbers) == 1:
            dense = sources[numbers[0]].snapshot.dense_scores(vector, kept_rows, kept_head)
        else:
            dense = np.empty(len(keep), dtype=np.float32)
            for number in numbers:
                mine = kept_owner == number
                dense[mine] = sources[number].snapshot.dense_scores(vector, kept_rows[mine], kept_head[mine])
        z_dense = (dense - mean_d) / sd_d if sd_d > 1e-12 else np.zeros(len(dense))
        z_bm25 = (kept_bm25 - mean_b) / sd_b if sd_b > 1e-12 else np.zeros_like(kept_bm25)
        score = dense_weight * z_dense + (1.0 - dense_weight) * z_bm25
        sure = confidence(kept_bm25, dense, sizes[kept_owner], "hybrid")
        return (kept_owner, kept_rows, kept_bm25, dense, score), sure

    fused = _best(
        head,
        dense_weight * slope / sd_d if sd_d > 1e-12 else 0.0,
        bm25,
        (1.0 - dense_weight) / sd_b if sd_b > 1e-12 else 0.0,
        RESCORE + k,
    )
    # The sets are joined through a mask over the candidates: np.union1d sorts them (~0.3 ms for 2,000).
    chosen = np.zeros(len(head), dtype=bool)
    chosen[fused] = True
    estimate = _blend(head, w_cosine * slope, bm25, w_bm25 * per_bm25)  # of the confidence's logit
    chosen[_top(estimate, BAR_RESCORE)] = True
    found, sure = scored(np.flatnonzero(chosen))
    if np.count_nonzero(sure >= min_confidence) < k and BAR_RESCORE_WIDE > BAR_RESCORE:
        wide = _top(estimate, BAR_RESCORE_WIDE)
        more = np.sort(wide[~chosen[wide]])  # only those not scored yet
        if len(more):
            extra, extra_sure = scored(more)
            kept_owner, kept_rows, kept_bm25, dense, score = (np.concatenate(p) for p in zip(found, extra, strict=True))
            found, sure = (kept_owner, kept_rows, kept_bm25, dense, score), np.concatenate([sure, extra_sure])
    return found, sure


def _ranked(paths: dict[int, str], score: np.ndarray, pools: list[str]) -> list[int]:
    """The candidates ``paths`` (position: path) best first; scores within :data:`TIE` of the best of their run
    are ties, ordered by path, then pool: not by row, which a refresh changes (a memory moves to a new segment),
    nor by the last digits of a float. A run is measured from its best, not from the score before: a chain of
    small steps would span more than TIE, and the answer for k=2 would not start with the answer for k=1."""
    pool_of = dict(zip(paths, pools, strict=True))
    by_score = sorted(paths, key=lambda i: -float(score[i]))
    ranked: list[int] = []
    run: list[int] = []
    for i in by_score:
        if run and float(score[run[0]]) - float(score[i]) > TIE:
            ranked += sorted(run, key=lambda j: (path_key(paths[j]), pool_of[j]))
            run = []
        run.append(i)
    return ranked + sorted(run, key=lambda j: (path_key(paths[j]), pool_of[j]))


def _per_source(
    sources: Sequence[Source],
    owner: np.ndarray,
    rows: np.ndarray,
    positions: np.ndarray,
    read: Callable[[Snapshot, list[int]], list[Any]],
) -> list[Any]:
    """``read(snapshot, rows)`` for the candidates at ``positions``, in their order: one call a source (a call
    a row opened the records file once for each hit)."""
    if len(sources) == 1:
        return read(sources[0].snapshot, rows[positions].tolist())
    out: list[Any] = [None] * len(positions)
    for number in np.unique(owner[positions]).tolist():
        mine = np.flatnonzero(owner[positions] == number)
        answers = read(sources[number].snapshot, rows[positions[mine]].tolist())
        for at, value in zip(mine.tolist(), answers, strict=True):
            out[at] = value
    return out


def _best(head: np.ndarray, a: float, bm25: np.ndarray, b: float | np.ndarray, count: int) -> np.ndarray:
    """The positions of the ``count`` largest a * head + b * bm25."""
    return _top(_blend(head, a, bm25, b), count)


def _blend(head: np.ndarray, a: float, bm25: np.ndarray, b: float | np.ndarray) -> np.ndarray:
    value = head * np.float32(a)
    value += bm25 * (np.float32(b) if isinstance(b, float) else b)
    return value


def _top(value: np.ndarray, count: int) -> np.ndarray:
    """The positions of the ``count`` largest of ``value``."""
    if count >= len(value):
        return np.arange(len(value))
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    # A threshold from a sample that about three times ``count`` clear, so the partition runs on those only
    # (a partition of 100k values cost ~0.6 ms); when fewer than ``count`` clear it, on every value.
    sample = value[:: max(1, len(value) // 4096)]
    above = min(len(sample) - 1, 3 * count * len(sample) // len(value) + 1)
    threshold = np.partition(sample, len(sample) - 1 - above)[len(sample) - 1 - above]
    clear = np.flatnonzero(value >= threshold)
    if len(clear) < count:
        return np.argpartition(value, len(value) - count)[len(value) - count :]
    return clear[np.argpartition(value[clear], len(clear) - count)[len(clear) - count :]]


def _prior_shift(
    prior: Callable[[np.ndarray], np.ndarray] | None,
    sources: Sequence[Source],
    owner: np.ndarray,
    rows: np.ndarray,
    score: np.ndarray,
) -> np.ndarray | None:
    """The prior of each candidate times the spread of the fused scores, so that its bound means the same in
    every mode; None when there is no prior. Applied before the confidence bar and the top k: it reorders
    the memories that clear the bar, never which ones do."""
    if prior is None or len(score) < 2:
        return None
    ids = np.empty(len(rows), dtype="S64")
    for number, source in enumerate(sources):
        mine = owner == number
        ids[mine] = source.snapshot.id_bytes()[rows[mine]]
    return prior(ids) * np.float32(score.std())


def shown_words(text: str) -> dict[str, str]:
    """Each term of ``text`` mapped to the first word of ``text`` it was stemmed from ("separ" -> "separator"),
    so --explain speaks the user's words."""
    shown: dict[str, str] = {}
    for word, term in zip(words(text), analyze(text), strict=True):
        shown.setdefault(term, word)
    return shown


def matched_terms(snapshot: Snapshot, terms: Sequence[str], row: int) -> dict[str, float]:
    """Each query term found in memory ``row``, with its part of the memory's BM25 score (largest first)."""
    wanted = _distinct(terms)
    out: dict[str, float] = {}
    for term, (rows, weights) in zip(wanted.tolist(), _weighted(snapshot, wanted), strict=True):
        found = np.flatnonzero(rows == row)
        if len(found):
            out[term.decode("utf-8")] = float(weights[int(found[0])])
    return dict(sorted(out.items(), key=lambda item: -item[1]))


@dataclass
class RecallResult:
    query: str
    mode: str
    k: int
    hits: list[Hit]
    snapshot: Snapshot
    problem_files: int = 0
    notes: list[str] = field(default_factory=list)
    searched: int = 0
    min_confidence: float = 0.0
    reason: str | None = None  # why nothing was returned

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "mode": self.mode,
            "k": self.k,
            "min_confidence": self.min_confidence,
            "results": [hit.to_json() for hit in self.hits],
            "reason": self.reason,
            "pool_size": self.searched or self.snapshot.n_docs,
            "unreadable_files": self.problem_files,
            "notes": self.notes,
        }


class Recaller:
    """Recall for one repository, keeping what it loaded (snapshot, model) between calls.

    The command line makes one per process; the MCP server keeps one alive, so a recall there costs only the
    scoring. ``quick`` freshness looks only at the configuration, the folders and recently written files
    (new, deleted and renamed files are seen at once); the server re-checks every file's stat in the background.
    """

    def __init__(self, start: Any = None) -> None:
        self.repo = find_repo(start)
        self.index = WorktreeIndex(self.repo)
        self._snapshot: Snapshot | None = None
        self._model: Any = None

    def snapshot(self, quick: bool = False) -> Snapshot:
        """The live snapshot, refreshed if files changed (see WorktreeIndex.fresh; ``quick``: the folders and
        recent files only, unless the watcher is used)."""
        current = self._snapshot
        if current is not None and not current.folder.is_dir():  # replaced by a rebuild in another process
            current = None
        self._snapshot = self.index.fresh(current, quick=quick)
        return self._snapshot

    def model(self, spec: str) -> Any:
        if self._model is None or self._model.name != spec:
            self._model = load_model(spec, self.repo.root, self.repo.state_dir)
        return self._model

    def recall(
        self,
        query: str,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | None = None,
        rev: str | None = None,
        reviewed: bool = False,
        pools: Sequence[str] | None = None,
        quick: bool = False,
        min_confidence: float | None = None,
        explain: bool = False,
    ) -> RecallResult:
        """See :func:`recall`. ``explain`` also gives each hit its matched terms."""
        args = (query, k, mode, filters, rev, reviewed, pools, quick, min_confidence, explain)
        try:
            return self._recall(*args)
        except FileNotFoundError:
            # A long-lived recaller's snapshot was replaced (`mtlgit index --rebuild` in another process):
            # open the current one and answer from it.
            self._snapshot = None
            return self._recall(*args)

    def _recall(
        self,
        query: str,
        k: int | None,
        mode: str | None,
        filters: Filters | None,
        rev: str | None,
        reviewed: bool,
        pools: Sequence[str] | None,
        quick: bool,
        min_confidence: float | None,
        explain: bool,
    ) -> RecallResult:
        repo = self.repo
        if rev is not None:
            snapshot = rev_snapshot(repo, rev)
        else:
            snapshot = self.snapshot(quick)
        manifest = snapshot.manifest
        k = int(manifest["k"]) if k is None else k
        mode = str(manifest["mode"]) if mode is None else mode
        bar = min_confidence_for(manifest) if min_confidence is None else min_confidence
        # The snapshot is fresh, so its model is the configured one, unchanged (see index.model_unchanged).
        model = self.model(str(manifest["model"])) if mode != "bm25" else None
        notes: list[str] = []
        sources: list[Source] = []
        wanted = set(pools) if pools else None
        if wanted is None or "local" in wanted:
            sources.append(Source(snapshot, allowed=_reviewed_mask(repo, snapshot) if reviewed else None))
        configured = manifest.get("pools") or []
        if wanted:
            unknown = wanted - {"local"} - {p["name"] for p in configured}
            if unknown:
                raise MtlgitError(f"no pool named {', '.join(sorted(unknown))}: `mtlgit pool list` shows them")
        if rev is None:
            sources += _pool_sources(repo, configured, wanted, manifest.get("model_files"), notes, reviewed)
        why: list[str] = []
        hits = search_sources(
            sources,
            query,
            model.encode_query if model is not None else None,
            k=k,
            mode=mode,
            filters=filters,
            min_confidence=bar,
            explain=explain,
            why=why,
            prior=_ledger_prior(repo),
        )
        reason = why[0] if why else None
        if reason is not None and rev is None and (wanted is None or "local" in wanted):
            from mtlgit.config import missing_memories_folder

            reason = missing_memories_folder(repo.root, str(manifest.get("memories", "memories"))) or reason
        local = [hit for hit in hits if hit.pool == "local"]
        if any((hit.memory.get("source") or {}).get("commit") for hit in local):
            from mtlgit.staleness import code_notes

            head = str(manifest.get("commit", "HEAD")) if rev is not None else "HEAD"
            found, cited = code_notes(repo.root, repo.worktree_state_dir, [hit.memory for hit in local], head)
            for position, note in found.items():
                local[position].notes.append(note)
            for position, report in cited.items():
                local[position].citations = report.to_json()
        searched = sum(source.snapshot.n_docs for source in sources)
        return RecallResult(
            query, mode, k, hits, snapshot, int(manifest.get("problem_files", 0)), notes, searched, bar, reason
        )


def _ledger_prior(repo: Any) -> Any:
    """The outcome ledger's prior, or None. A repository with no outcome recorded costs one ``stat``: the
    ledger's modules are not imported."""
    if not (repo.state_dir / "ledger" / "outcomes").is_dir():
        return None
    from mtlgit.receipts import recall_prior

    return recall_prior(repo)


def min_confidence_for(manifest: Manifest) -> float:
    """The configured bar (``recall.min_confidence``), else the measured default."""
    configured = manifest.get("min_confidence")
    return float(configured) if configured is not None else DEFAULT_MIN_CONFIDENCE


def recall(
    query: str,
    k: int | None = None,
    mode: str | None = None,
    filters: Filters | None = None,
    start: Any = None,
    rev: str | None = None,
    reviewed: bool = False,
    pools: Sequence[str] | None = None,
    min_confidence: float | None = None,
    explain: bool = False,
) -> RecallResult:
    """Recall from the working tree of the repository containing ``start`` (default: the current directory)
    and every synced pool.

    The index is checked against the files first and refreshed if anything changed, so the answer is never
    stale. ``k`` and ``mode`` default to the repository's configuration (3, hybrid).

    :param rev: recall from the pool exactly as it was at this commit instead (read from git objects).
    :param reviewed: keep only memories that passed review: local ones whose content is on the reviewed ref
        (``reviewed_ref``), and those of pools marked ``trust: reviewed`` (never of an untrusted pool).
    :param pools: search only these pools ("local" is this repository's own memories); default: all.
    :param min_confidence: leave out memories below this confidence (0-1); default: ``recall.min_confidence``
        from the configuration, else the measured default for the mode. 0 keeps all ``k``.
    """
    return Recaller(start).recall(
        query, k, mode, filters, rev, reviewed, pools, min_confidence=min_confidence, explain=explain
    )


def _pool_sources(
    repo: Any,
    configured: list[dict[str, Any]],
    wanted: set[str] | None,
    model_files: Any,
    notes: list[str],
    reviewed: bool = False,
) -> list[Source]:
    """The synced pools to search; one note for each that cannot be searched, and why.

    :param reviewed: only pools marked ``trust: reviewed``: such a pool's ref is its team's reviewed branch,
        so every memory synced from it passed review there; an untrusted pool's memories never did.
    """
    if not configured:
        return []
    from mtlgit.pools import PoolSpec, pool_snapshot, read_status

    sources = []
    for entry in configured:
        spec = PoolSpec(**entry)
        if wanted is not None and spec.name not in wanted:
            continue
        if reviewed and spec.trust != "reviewed":
            notes.append(f"pool '{spec.name}' skipped: it is untrusted, and --reviewed keeps reviewed memories only")
            continue
        snapshot = pool_snapshot(repo, spec)
        status = read_status(repo, spec.name)
        if snapshot is None:
            why = f"its last sync failed: {status['error']}" if status.get("error") else "it has not been synced"
            notes.append(f"pool '{spec.name}' skipped, {why} (`mtlgit pool sync {spec.name}`)")
            continue
        if status.get("error"):
            notes.append(f"pool '{spec.name}': the last sync failed ({status['error']}); using the previous one")
        if snapshot.manifest.get("model_files") != model_files:
            notes.append(f"pool '{spec.name}' skipped: indexed with another model (`mtlgit pool sync {spec.name}`)")
            continue
        sources.append(Source(snapshot, spec.name, spec.trust))
    return sources


def _reviewed_mask(repo: Any, snapshot: Snapshot) -> np.ndarray:
    """Memories whose exact content (blob) is in the reviewed ref's pool: what passed review."""
    from mtlgit.gitobjects import blobs_at

    ref = str(snapshot.manifest.get("reviewed_ref") or "origin/main")
    try:
        blobs = blobs_at(repo, ref, str(snapshot.manifest["memories"]))
    except MtlgitError:
        raise MtlgitError(
            f"the reviewed ref '{ref}' does not exist here: fetch it (`git fetch`), or set reviewed_ref in "
            ".mtlgit.yaml to the branch that holds reviewed memories"
        ) from None
    doc_blobs = snapshot.doc_blobs()
    wanted = np.array([b.encode() for b in blobs], dtype="S40")
    return np.isin(doc_blobs, wanted)
