"""Retrieval evaluation on a labelled set in BEIR layout: nDCG@10, Recall@10, Recall@100 and MRR@10.

The corpus is written as memory files into a temporary git repository and indexed by the same code that
serves ``mtlgit recall``, so the figures measure the product, not a copy of it.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtlgit.errors import MtlgitError

MODES = ("bm25", "dense", "hybrid")


@dataclass
class Dataset:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise MtlgitError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
    except OSError as exc:
        raise MtlgitError(f"cannot read {path}: {exc.strerror}") from None


def load_dataset(corpus: Path, queries: Path, qrels: Path, limit: int | None = None) -> Dataset:
    """Read a BEIR corpus, queries and qrels; ``limit`` keeps that many judged queries and their corpus
    documents plus distractors up to ten times as many."""
    docs: dict[str, tuple[str, str]] = {}
    for number, row in _read_jsonl(corpus):
        if "_id" not in row:
            raise MtlgitError(f"{corpus}:{number}: a corpus line needs '_id' (and 'title', 'text')")
        docs[str(row["_id"])] = (str(row.get("title") or ""), str(row.get("text") or ""))
    texts = {str(row["_id"]): str(row.get("text", "")) for _n, row in _read_jsonl(queries) if "_id" in row}
    judged: dict[str, dict[str, int]] = {}
    try:
        lines = qrels.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise MtlgitError(f"cannot read {qrels}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        parts = line.split("\t") if "\t" in line else line.split()
        if number == 1 and parts and parts[0] == "query-id":
            continue
        if len(parts) < 3:
            if line.strip():
                raise MtlgitError(f"{qrels}:{number}: expected 'query-id corpus-id score'")
            continue
        try:
            score = int(float(parts[2]))
        except ValueError:
            raise MtlgitError(f"{qrels}:{number}: the score {parts[2]!r} is not a number") from None
        if score > 0 and parts[0] in texts and parts[1] in docs:
            judged.setdefault(parts[0], {})[parts[1]] = score
    if limit is not None:
        keep = sorted(judged)[:limit]
        judged = {q: judged[q] for q in keep}
        wanted = {d for q in keep for d in judged[q]}
        distractors = [d for d in sorted(docs) if d not in wanted][: max(0, 10 * len(wanted))]
        docs = {d: docs[d] for d in sorted(wanted | set(distractors))}
    return Dataset(docs, {q: texts[q] for q in judged}, judged)


def _memory_id(doc_id: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9._-]", "-", doc_id)[:60]
    return f"d-{clean}"


def write_pool(dataset: Dataset, folder: Path) -> dict[str, str]:
    """Write one memory file per corpus document; return memory id -> corpus id."""
    from mtlgit.frontmatter import render

    ids: dict[str, str] = {}
    target = folder / "memories"
    target.mkdir(parents=True, exist_ok=True)
    for number, (doc_id, (title, text)) in enumerate(dataset.corpus.items()):
        memory_id = _memory_id(doc_id)
        if memory_id in ids:
            memory_id = f"{memory_id}-{number}"
        ids[memory_id] = doc_id
        meta = {"id": memory_id, "title": title or text[:80] or doc_id, "format": "summary", "scope": "task-specific"}
        (target / f"{number:07d}.md").write_text(render(meta, text or title or doc_id), encoding="utf-8")
    return ids


def ndcg_at(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr_at(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if doc in relevant:
            return 1.0 / (i + 1)
    return 0.0


def evaluate(
    dataset: Dataset,
    modes: Sequence[str] = MODES,
    dense_weights: Sequence[float] | None = None,
    model: str = "default",
    workdir: Path | None = None,
) -> dict[str, dict[str, float]]:
    """Index the corpus as a pool and score every mode (and every hybrid weight) on the judged queries."""
    from mtlgit.embed import load_model
    from mtlgit.index import WorktreeIndex
    from mtlgit.recall import DENSE_WEIGHT, Filters, search
    from mtlgit.repo import find_repo

    with tempfile.TemporaryDirectory(prefix="mtlgit-eval-", dir=workdir) as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        model_line = model if model == "default" else str(Path(model).resolve())
        (root / ".mtlgit.yaml").write_text(f"memories: memories\nmodel: {model_line}\n", encoding="utf-8")
        id_map = write_pool(dataset, root)
        repo = find_repo(root)
        snapshot = WorktreeIndex(repo).refresh()
        static = load_model(model_line, root, repo.state_dir)
        runs: list[tuple[str, str, float]] = []
        for mode in modes:
            if mode == "hybrid":
                for weight in dense_weights or [DENSE_WEIGHT]:
                    name = "hybrid" if dense_weights is None else f"hybrid@{weight:g}"
                    runs.append((name, mode, weight))
            else:
                runs.append((mode, mode, 0.0))
        vectors = {q: static.encode_query(text) for q, text in dataset.queries.items()}
        everything = Filters(include_retired=True, include_trajectories=True)
        results: dict[str, dict[str, float]] = {}
        for name, mode, weight in runs:
            totals = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
            for q, text in dataset.queries.items():
                hits = search(snapshot, text, vectors[q], k=100, mode=mode, filters=everything, dense_weight=weight)
                ranked = [id_map[h.memory["id"]] for h in hits]
                relevant = dataset.qrels[q]
                totals["ndcg@10"] += ndcg_at(ranked, relevant)
                totals["recall@10"] += recall_at(ranked, relevant, 10)
                totals["recall@100"] += recall_at(ranked, relevant, 100)
                totals["mrr@10"] += mrr_at(ranked, relevant)
            count = max(len(dataset.queries), 1)
            results[name] = {metric: value / count for metric, value in totals.items()}
        return results
