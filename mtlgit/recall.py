"""Recall: score every memory of a snapshot against a query, fuse the two halves, filter, take the top k.

Both halves are whole-pool numpy operations over memory-mapped arrays: BM25 sums the stored score columns
of the query's terms; the dense half is one matrix-vector product with the query's vector. Hybrid scores
are min-max normalised per half, then weighted (the weight was chosen on SciFact's train split; see
README, "Design notes").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtlgit.analysis import analyze
from mtlgit.index import ATTRS, Snapshot, WorktreeIndex
from mtlgit.repo import find_repo
from mtlgit.schema import FORMATS, SCOPES, STATUSES

MODES = ("hybrid", "bm25", "dense")
DENSE_WEIGHT = 0.3
MAX_QUERY_CHARS = 100_000
_BLOCK = 32768


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

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "scores": {"bm25": round(self.bm25, 6), "dense": round(self.dense, 6)},
            **self.memory,
            "path": self.path,
            "pool": self.pool,
            "notes": self.notes,
        }


def bm25_scores(snapshot: Snapshot, terms: Sequence[str]) -> np.ndarray:
    """BM25 of every memory for the query terms (a repeated term counts again, as in bm25s)."""
    scores = np.zeros(snapshot.n_docs, dtype=np.float32)
    vocab = snapshot.array("vocab")
    if not terms or not len(vocab):
        return scores
    wanted, weights = np.unique(np.array([t.encode("utf-8") for t in terms], dtype=bytes), return_counts=True)
    where = np.searchsorted(vocab, wanted)
    data, docs, ptr = snapshot.array("bm25.data"), snapshot.array("bm25.doc"), snapshot.array("bm25.ptr")
    for term, position, weight in zip(wanted, where, weights, strict=True):
        if position < len(vocab) and vocab[position] == term:
            start, end = int(ptr[position]), int(ptr[position + 1])
            scores[docs[start:end]] += data[start:end] * weight
    return scores


def dense_scores(snapshot: Snapshot, vector: np.ndarray) -> np.ndarray:
    """Cosine of every memory with the query vector (float16 on disk, float32 arithmetic, in blocks)."""
    vectors = snapshot.array("vectors")
    out = np.empty(snapshot.n_docs, dtype=np.float32)
    for start in range(0, snapshot.n_docs, _BLOCK):
        out[start : start + _BLOCK] = vectors[start : start + _BLOCK].astype(np.float32) @ vector
    return out


def candidate_mask(snapshot: Snapshot, filters: Filters) -> np.ndarray:
    attrs = snapshot.array("attrs")
    columns = {name: i for i, (name, _values) in enumerate(ATTRS)}
    mask = np.ones(snapshot.n_docs, dtype=bool)
    if not filters.include_retired:
        mask &= attrs[:, columns["status"]] == STATUSES.index("active")
    if filters.formats:
        mask &= np.isin(attrs[:, columns["format"]], [FORMATS.index(f) for f in filters.formats])
    elif not filters.include_trajectories:
        mask &= attrs[:, columns["format"]] != FORMATS.index("trajectory")
    if filters.scopes:
        mask &= np.isin(attrs[:, columns["scope"]], [SCOPES.index(s) for s in filters.scopes])
    for prefix, values, keep in (
        ("d:", filters.domains, True),
        ("t:", filters.tags, True),
        ("d:", filters.exclude_domains, False),
    ):
        if values:
            has = _has_label(snapshot, [prefix + v.strip().lower() for v in values])
            mask &= has if keep else ~has
    return mask


def _has_label(snapshot: Snapshot, names: list[str]) -> np.ndarray:
    labels: list[str] = snapshot.manifest["labels"]
    wanted = [i for i, name in enumerate(labels) if name in set(names)]
    has = np.zeros(snapshot.n_docs, dtype=bool)
    if wanted:
        ptr, ids = snapshot.array("labels.ptr"), snapshot.array("labels.ids")
        doc_of = np.repeat(np.arange(snapshot.n_docs), np.diff(ptr))
        has[doc_of[np.isin(ids, wanted)]] = True
    return has


def _minmax(values: np.ndarray) -> np.ndarray:
    if not len(values):
        return values
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def fuse(bm25: np.ndarray, dense: np.ndarray, mode: str, dense_weight: float = DENSE_WEIGHT) -> np.ndarray:
    """The ranking score of each candidate for ``mode``."""
    if mode == "bm25":
        return bm25
    if mode == "dense":
        return dense
    return dense_weight * _minmax(dense) + (1.0 - dense_weight) * _minmax(bm25)


def search(
    snapshot: Snapshot,
    query: str,
    query_vector: Any,
    k: int = 3,
    mode: str = "hybrid",
    filters: Filters | None = None,
    dense_weight: float = DENSE_WEIGHT,
    allowed: np.ndarray | None = None,
) -> list[Hit]:
    """The top ``k`` memories of ``snapshot`` for ``query``.

    :param query_vector: the query's embedding, or a callable returning it (called only when needed).
    :param allowed: a boolean mask over the snapshot's memories; only those may be returned.
    """
    if snapshot.n_docs == 0 or k <= 0:
        return []
    mask = candidate_mask(snapshot, filters or Filters())
    if allowed is not None:
        mask &= allowed
    rows = np.flatnonzero(mask)
    if not len(rows):
        return []
    text = query[:MAX_QUERY_CHARS]
    bm25 = bm25_scores(snapshot, analyze(text))[rows] if mode != "dense" else np.zeros(len(rows), np.float32)
    if mode != "bm25":
        vector = query_vector() if callable(query_vector) else query_vector
        dense = dense_scores(snapshot, vector)[rows]
    else:
        dense = np.zeros(len(rows), dtype=np.float32)
    score = fuse(bm25, dense, mode, dense_weight)
    if mode == "bm25" and not bm25.any():
        return []
    top = min(k, len(rows))
    best = np.argpartition(-score, top - 1)[:top] if top < len(rows) else np.arange(len(rows))
    best = best[np.lexsort((rows[best], -score[best]))]
    chosen = [int(rows[i]) for i in best]
    records = snapshot.records(chosen)
    paths = snapshot.doc_paths(chosen)
    return [
        Hit(rank + 1, float(score[i]), float(bm25[i]), float(dense[i]), path, record)
        for rank, (i, record, path) in enumerate(zip(best, records, paths, strict=True))
    ]


@dataclass
class RecallResult:
    query: str
    mode: str
    k: int
    hits: list[Hit]
    snapshot: Snapshot
    problem_files: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "mode": self.mode,
            "k": self.k,
            "results": [hit.to_json() for hit in self.hits],
            "pool_size": self.snapshot.n_docs,
            "unreadable_files": self.problem_files,
        }


def recall(
    query: str,
    k: int | None = None,
    mode: str | None = None,
    filters: Filters | None = None,
    start: Any = None,
    rev: str | None = None,
    reviewed: bool = False,
) -> RecallResult:
    """Recall from the working tree of the repository containing ``start`` (default: the current directory).

    The index is checked against the files first and refreshed if anything changed, so the answer is never
    stale. ``k`` and ``mode`` default to the repository's configuration (3, hybrid).

    :param rev: recall from the pool exactly as it was at this commit instead (read from git objects).
    :param reviewed: keep only memories whose content is on the reviewed ref (``reviewed_ref``).
    """
    from mtlgit.embed import load_model

    repo = find_repo(start)
    index = WorktreeIndex(repo)
    if rev is not None:
        from mtlgit.index import rev_snapshot

        snapshot = rev_snapshot(repo, rev)
    else:
        snapshot = index.fresh()
    manifest = snapshot.manifest
    allowed = _reviewed_mask(repo, snapshot) if reviewed else None
    k = int(manifest["k"]) if k is None else k
    mode = str(manifest["mode"]) if mode is None else mode
    model = None
    if mode != "bm25" and snapshot.n_docs:
        model = load_model(manifest["model"], repo.root, repo.state_dir)
        if model.key != manifest["model_key"] and rev is None:
            snapshot = index.refresh()
    hits = search(
        snapshot,
        query,
        (lambda: model.encode_query(query[:MAX_QUERY_CHARS])) if model is not None else None,
        k=k,
        mode=mode,
        filters=filters,
        allowed=allowed,
    )
    if any((hit.memory.get("source") or {}).get("commit") for hit in hits):
        from mtlgit.staleness import stale_notes

        head = str(manifest.get("commit", "HEAD")) if rev is not None else "HEAD"
        for position, note in stale_notes(repo.root, [hit.memory for hit in hits], head).items():
            hits[position].notes.append(note)
    return RecallResult(query, mode, k, hits, snapshot, int(snapshot.manifest.get("problem_files", 0)))


def _reviewed_mask(repo: Any, snapshot: Snapshot) -> np.ndarray:
    """Memories whose exact content (blob) is in the reviewed ref's pool: what passed review."""
    from mtlgit.errors import MtlgitError
    from mtlgit.gitobjects import blobs_at

    ref = str(snapshot.manifest.get("reviewed_ref") or "origin/main")
    try:
        blobs = blobs_at(repo, ref, str(snapshot.manifest["memories"]))
    except MtlgitError:
        raise MtlgitError(
            f"the reviewed ref '{ref}' does not exist here: fetch it (`git fetch`), or set reviewed_ref in "
            ".mtlgit.yaml to the branch that holds reviewed memories"
        ) from None
    doc_blobs = snapshot.array("files.blob")[snapshot.array("docs.file")]
    wanted = np.array([bytes.fromhex(b) for b in blobs], dtype="S20")
    return np.isin(doc_blobs, wanted)
