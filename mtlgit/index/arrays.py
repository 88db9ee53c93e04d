"""Array builders: term counts as CSR rows, postings by term, and the BM25 weight of a posting.

Numpy only: :func:`bm25_weights` is on the recall path.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

from mtlgit.index.common import K1, B


def count_terms(term_lists: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The vocabulary (sorted UTF-8 bytes) and each document's distinct terms with their counts, as CSR rows:
    (vocab, tf_ptr, tf_term, tf_count)."""
    n = len(term_lists)
    lengths = [len(terms) for terms in term_lists]
    total = sum(lengths)
    if not total:
        return np.array([], dtype="S1"), np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.uint32)
    # Numbered in order of first use, then ranked by their bytes: sorting the distinct terms, not every
    # occurrence as strings, is ~5x faster and gives np.unique's vocabulary and numbers.
    number = {term: n for n, term in enumerate(dict.fromkeys(chain.from_iterable(term_lists)))}
    first_use = np.fromiter(map(number.__getitem__, chain.from_iterable(term_lists)), dtype=np.int64, count=total)
    names = np.array([t.encode("utf-8") for t in number], dtype=bytes)
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    vocab, term_of = names[order], rank[first_use]
    doc_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
    keys, counts = np.unique(doc_of * len(vocab) + term_of, return_counts=True)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // len(vocab), minlength=n), out=ptr[1:])
    return vocab, ptr, (keys % len(vocab)).astype(np.int32), counts.astype(np.uint32)


def postings(
    tf_ptr: np.ndarray, tf_term: np.ndarray, tf_count: np.ndarray, n_terms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same counts term by term: (post_ptr, post_doc, post_tf), documents ascending within a term."""
    doc_of = np.repeat(np.arange(len(tf_ptr) - 1, dtype=np.int32), np.diff(tf_ptr))
    order = np.argsort(tf_term, kind="stable")
    ptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.bincount(tf_term, minlength=n_terms), out=ptr[1:])
    return ptr, doc_of[order], np.asarray(tf_count)[order]


def doc_lengths(tf_ptr: np.ndarray, tf_count: np.ndarray) -> np.ndarray:
    """Each document's number of terms."""
    lengths = np.zeros(len(tf_ptr) - 1, dtype=np.int64)
    doc_of = np.repeat(np.arange(len(lengths)), np.diff(tf_ptr))
    np.add.at(lengths, doc_of, np.asarray(tf_count, dtype=np.int64))
    return lengths


def idf(df: int, n_docs: int) -> float:
    """Lucene's BM25 idf (as bm25s computes it), from the document frequency over every live document."""
    return float(np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)))


def bm25_weights(tf: np.ndarray, doc_len: np.ndarray, term_idf: float | np.ndarray, avgdl: float) -> np.ndarray:
    """BM25 of one term in documents with these counts and lengths (float32, as the scores are summed).

    Lucene 8+ drops the constant (k1 + 1) factor.
    """
    tf64 = np.asarray(tf, dtype=np.float64)
    norm = K1 * (1.0 - B + B * np.asarray(doc_len, dtype=np.float64) / max(avgdl, 1e-9))
    return (term_idf * tf64 / (tf64 + norm)).astype(np.float32)


def gather_rows(ptr: np.ndarray, rows: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The given rows of a CSR structure: their new row pointer and each values array's entries, row after row."""
    ptr = np.asarray(ptr)
    rows = np.asarray(rows, dtype=np.int64)
    starts = ptr[rows]
    lengths = ptr[rows + 1] - starts
    new_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_ptr[1:])
    index = np.repeat(starts - new_ptr[:-1], lengths) + np.arange(int(new_ptr[-1]))
    return new_ptr, [np.asarray(v)[index] for v in values]


def concat_ptrs(ptrs: Sequence[np.ndarray]) -> np.ndarray:
    """One CSR row pointer for row blocks laid end to end."""
    out = [np.zeros(1, dtype=np.int64)]
    total = 0
    for ptr in ptrs:
        out.append(np.asarray(ptr[1:], dtype=np.int64) + total)
        total += int(ptr[-1])
    return np.concatenate(out)
