#!/usr/bin/env python3
"""Evaluate a static (model2vec-format) embedding model on a BEIR-layout retrieval dataset.

Reports nDCG@10 (and Recall@100) for:

* the static model alone (mean-pooled token vectors, cosine similarity),
* BM25 alone (bm25s, Snowball English stemmer, English stop words),
* a hybrid: per query, both score vectors are min-max normalised over the whole corpus and combined as
  ``dense_weight * dense + (1 - dense_weight) * bm25``, for several dense weights.

The model is loaded the way mtlgit loads it at query time (numpy + safetensors + tokenizers, no model2vec):
``embeddings`` tensor (float32/float16, or int8 times ``config["embedding_scale"]``), tokens from ``tokenizer.json``
without special tokens, ``[UNK]`` dropped, at most ``max_length`` tokens, mean pooling, L2 normalisation.

Dataset layout (``--data``): ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries-<split>.jsonl`` (or
``queries.jsonl``) and ``qrels-<split>.tsv`` (or ``qrels/<split>.tsv``) with a header line
``query-id corpus-id score``.

This is an evaluation script, not a test. Example::

    python scripts/eval_model.py --model mtlgit/model --data ../shared/data/scifact --split train
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file
from tokenizers import Tokenizer

DEFAULT_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass
class StaticModel:
    """A static embedding model loaded with numpy + tokenizers only."""

    embeddings: np.ndarray  # (vocab, dim) float32
    tokenizer: Tokenizer
    unk_id: int | None
    max_length: int
    normalize: bool = True
    config: dict[str, object] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> StaticModel:
        """Load a model2vec-format folder (model.safetensors, tokenizer.json, config.json)."""
        config = json.loads((folder / "config.json").read_text())
        tensors = load_file(str(folder / "model.safetensors"))
        emb = tensors["embeddings"]
        if emb.dtype == np.int8:
            emb = emb.astype(np.float32) * float(config.get("embedding_scale", 1.0))
        emb = emb.astype(np.float32)
        if "weights" in tensors:  # model2vec per-token weights (not used by mtlgit's shipped model)
            emb = emb * tensors["weights"].astype(np.float32)[:, None]
        if "mapping" in tensors:
            raise SystemExit("vocabulary-quantised models (a 'mapping' tensor) are not supported")
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tok.no_padding()
        tok.no_truncation()
        return cls(
            embeddings=emb,
            tokenizer=tok,
            unk_id=tok.token_to_id("[UNK]"),
            max_length=int(config.get("max_length") or 512),
            normalize=bool(config.get("normalize", True)),
            config=config,
        )

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenise without special tokens, drop [UNK], truncate to max_length."""
        out = []
        for enc in self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False):
            ids = [i for i in enc.ids if i != self.unk_id] if self.unk_id is not None else list(enc.ids)
            out.append(ids[: self.max_length])
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pool token vectors; L2-normalise when the config asks for it."""
        return pool(bag_of_tokens(self.token_ids(texts), self.embeddings.shape[0]), self.embeddings, self.normalize)


def bag_of_tokens(ids: list[list[int]], vocab_size: int) -> sp.csr_matrix:
    """Row-normalised token-count matrix: row i averages the tokens of text i."""
    indptr = np.zeros(len(ids) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(x) for x in ids])
    indices = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(indptr[-1]))
    data = np.concatenate([np.full(len(x), 1.0 / len(x), dtype=np.float32) for x in ids if x] or [np.zeros(0)])
    mat = sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(len(ids), vocab_size))
    mat.sum_duplicates()
    return mat


def pool(bag: sp.csr_matrix, emb: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Mean pooling via a sparse product; optional L2 normalisation."""
    vec = np.asarray(bag @ emb, dtype=np.float32)
    if normalize:
        vec /= np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
    return vec


@dataclass
class Dataset:
    """A BEIR-layout retrieval dataset."""

    doc_ids: list[str]
    docs: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, int]]

    @classmethod
    def load(cls, root: Path, split: str) -> Dataset:
        """Read corpus, queries and qrels of one split; keep only judged queries."""
        doc_ids, docs = [], []
        with (root / "corpus.jsonl").open() as fh:
            for line in fh:
                row = json.loads(line)
                doc_ids.append(str(row["_id"]))
                docs.append(f"{row.get('title', '')} {row.get('text', '')}".strip())
        qrels_path = next(p for p in (root / f"qrels-{split}.tsv", root / "qrels" / f"{split}.tsv") if p.exists())
        qrels: dict[str, dict[str, int]] = {}
        with qrels_path.open() as fh:
            next(fh)
            for line in fh:
                qid, did, score = line.rstrip("\n").split("\t")
                if int(score) > 0:
                    qrels.setdefault(qid, {})[did] = int(score)
        queries_path = next(p for p in (root / f"queries-{split}.jsonl", root / "queries.jsonl") if p.exists())
        query_ids, queries = [], []
        with queries_path.open() as fh:
            for line in fh:
                row = json.loads(line)
                if str(row["_id"]) in qrels:
                    query_ids.append(str(row["_id"]))
                    queries.append(row["text"])
        return cls(doc_ids, docs, query_ids, queries, qrels)


def ndcg_at_k(scores: np.ndarray, data: Dataset, k: int = 10) -> tuple[float, float]:
    """Mean nDCG@k and Recall@100 of a (queries x docs) score matrix."""
    doc_index = {d: i for i, d in enumerate(data.doc_ids)}
    ndcgs, recalls = [], []
    top = np.argpartition(-scores, 100, axis=1)[:, :100]
    for qi, qid in enumerate(data.query_ids):
        rel = {doc_index[d]: g for d, g in data.qrels[qid].items() if d in doc_index}
        cand = top[qi][np.argsort(-scores[qi, top[qi]], kind="stable")]
        dcg = sum((2 ** rel.get(int(d), 0) - 1) / math.log2(r + 2) for r, d in enumerate(cand[:k]))
        ideal = sorted(rel.values(), reverse=True)[:k]
        idcg = sum((2**g - 1) / math.log2(r + 2) for r, g in enumerate(ideal))
        ndcgs.append(dcg / idcg if idcg else 0.0)
        recalls.append(len(set(cand.tolist()) & set(rel)) / len(rel) if rel else 0.0)
    return float(np.mean(ndcgs)), float(np.mean(recalls))


def bm25_scores(data: Dataset) -> np.ndarray:
    """Dense (queries x docs) BM25 scores: bm25s defaults, Snowball English stemmer, English stop words."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(data.docs, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False
    )
    qtok = bm25s.tokenize(data.queries, stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)
    return np.stack([retriever.get_scores(q) for q in qtok]).astype(np.float32)


def minmax(scores: np.ndarray) -> np.ndarray:
    """Per-row min-max normalisation to [0, 1]."""
    lo = scores.min(axis=1, keepdims=True)
    hi = scores.max(axis=1, keepdims=True)
    return (scores - lo) / np.maximum(hi - lo, 1e-12)


@dataclass
class Evaluator:
    """Caches tokenisation and BM25 so many embedding matrices can be scored quickly."""

    data: Dataset
    doc_bag: sp.csr_matrix
    query_bag: sp.csr_matrix
    bm25_norm: np.ndarray
    bm25_result: tuple[float, float]

    @classmethod
    def build(cls, data: Dataset, model: StaticModel) -> Evaluator:
        """Tokenise corpus and queries with the model's tokenizer, and run BM25 once."""
        vocab = model.embeddings.shape[0]
        bm25 = bm25_scores(data)
        return cls(
            data=data,
            doc_bag=bag_of_tokens(model.token_ids(data.docs), vocab),
            query_bag=bag_of_tokens(model.token_ids(data.queries), vocab),
            bm25_norm=minmax(bm25),
            bm25_result=ndcg_at_k(bm25, data),
        )

    def run(self, emb: np.ndarray, weights: Sequence[float] = DEFAULT_WEIGHTS) -> dict[str, tuple[float, float]]:
        """Score one embedding matrix: static alone and hybrid at each dense weight."""
        dense = pool(self.query_bag, emb) @ pool(self.doc_bag, emb).T
        out = {"static": ndcg_at_k(dense, self.data), "bm25": self.bm25_result}
        dense_norm = minmax(dense)
        for w in weights:
            out[f"hybrid@{w:g}"] = ndcg_at_k(w * dense_norm + (1 - w) * self.bm25_norm, self.data)
        return out


def format_results(name: str, res: dict[str, tuple[float, float]]) -> str:
    """One line per model: nDCG@10 of each method (Recall@100 of static and BM25 in brackets)."""
    parts = [f"{k}={v[0]:.4f}" for k, v in res.items()]
    return f"{name}: " + " ".join(parts) + f" (R@100 static={res['static'][1]:.3f} bm25={res['bm25'][1]:.3f})"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, nargs="+", required=True, help="model2vec-format model folder(s)")
    parser.add_argument("--data", type=Path, required=True, help="BEIR-layout dataset folder (e.g. scifact)")
    parser.add_argument("--split", default="train", help="qrels/queries split to use (default: train)")
    parser.add_argument(
        "--weights", type=float, nargs="+", default=list(DEFAULT_WEIGHTS), help="dense weights of the hybrid"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)

    data = Dataset.load(args.data, args.split)
    print(f"{len(data.docs)} documents, {len(data.queries)} judged queries", file=sys.stderr)
    evaluator: Evaluator | None = None
    all_results = {}
    for folder in args.model:
        t0 = time.perf_counter()
        model = StaticModel.load(folder)
        if evaluator is None or evaluator.doc_bag.shape[1] != model.embeddings.shape[0]:
            evaluator = Evaluator.build(data, model)
        res = evaluator.run(model.embeddings, args.weights)
        all_results[str(folder)] = {k: {"ndcg@10": v[0], "recall@100": v[1]} for k, v in res.items()}
        if not args.json:
            print(format_results(str(folder), res) + f" [{time.perf_counter() - t0:.1f}s]")
    if args.json:
        print(json.dumps(all_results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
