"""BM25 engines compared on the same tokens: bm25s, rank-bm25 and mtlgit's own index and scorer.

What is measured, for each data set (SciFact: its 5,183 abstracts and 809 train claims, read from the
third-party data folder of a development checkout, ``pools.DATA_DIR``, and left out with a note when it is
absent; pools of 10k and 100k memories from ``pools.py`` with 200 queries: the agent task queries plus memory
titles drawn with the seed):

- the tokens: every document and query is analysed once with ``mtlgit.analysis.analyze`` (stop words,
  Snowball stemmer) and the same token lists go to every engine, so only the engines differ;
- build time, in process: ``bm25s.BM25(method="lucene").index(tokens)``; ``rank_bm25.BM25Okapi(tokens)``;
  for mtlgit, ``mtlgit.index.writer.commit`` of one segment (the whole snapshot: vocabulary, term frequencies, the
  postings, records, written to disk) and, separately, ``mtlgit.index.arrays.postings`` alone (the postings from
  the snapshot's term-frequency arrays);
- query latency, in process, median and p90 over the queries, one query at a time: ``retriever.retrieve
  ([tokens], k=10)`` for bm25s; ``get_scores`` plus a top-10 selection for rank-bm25;
  ``mtlgit.recall.bm25_scores`` on the memory-mapped snapshot plus the same top-10 selection for mtlgit;
- import time of each engine: whole process ``python -c 'import X'`` minus ``python -c pass``, medians of
  interleaved runs;
- agreement: the mean share of bm25s's top 10 (documents with a positive score) that each engine also ranks
  in its top 10, and the largest score difference from bm25s's;
- nDCG@10 on the SciFact train split (``qrels-train.tsv``), as a sanity check of each engine (the DESIGN
  figure of 0.665 is BM25 on the test split, with another tokenizer).

rank-bm25 is only a baseline for this benchmark, not an mtlgit dependency: install it into the venv with
``.venv/bin/pip install rank-bm25``; without it, its columns are skipped with a message. On the pools its
queries stop after ``--slow-budget`` seconds (it scores every document in Python), and its figures then cover
the queries it finished.

Run it::

    .venv/bin/python benchmarks/bench_bm25.py             # scifact (when its data is there), pool-10000, pool-100000
    .venv/bin/python benchmarks/bench_bm25.py --datasets scifact,pool-10000 --json /tmp/bm25.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pools

from mtlgit.analysis import analyze
from mtlgit.index import DocInput, FileInput, Manifest
from mtlgit.index.arrays import postings
from mtlgit.index.segment import from_docs
from mtlgit.index.writer import commit
from mtlgit.memory import search_text
from mtlgit.recall import bm25_scores

PYTHON = sys.executable
SCIFACT = pools.DATA_DIR / "scifact"
K = 10
ENGINES = ("bm25s", "rank-bm25", "mtlgit")
IMPORTS = {
    "(bare python)": "pass",
    "numpy": "import numpy",
    "bm25s": "import bm25s",
    "rank-bm25": "import rank_bm25",
    "mtlgit": "from mtlgit.recall import bm25_scores",
}


@dataclass
class Dataset:
    name: str
    docs: list[list[str]]
    queries: list[list[str]]
    query_ids: list[str]
    qrels: dict[str, set[int]] = field(default_factory=dict)
    seconds_tokens: float = 0.0


@dataclass
class EngineResult:
    engine: str
    build: float | None = None
    build_matrix: float | None = None
    latencies: list[float] = field(default_factory=list)
    tops: list[list[int]] = field(default_factory=list)
    max_score_diff: float | None = None
    note: str = ""


def top_k(scores: np.ndarray, k: int = K) -> list[int]:
    """The ``k`` best documents with a positive score, best first, ties by document number."""
    positive = np.flatnonzero(scores > 0)
    if not len(positive):
        return []
    if len(positive) > k:
        cut = np.argpartition(-scores[positive], k - 1)[:k]
        positive = positive[cut]
    order = np.lexsort((positive, -scores[positive]))
    return [int(i) for i in positive[order]]


# --- data ---------------------------------------------------------------------------------------------------


def load_scifact() -> Dataset:
    started = time.perf_counter()
    ids: list[str] = []
    docs: list[list[str]] = []
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            ids.append(str(doc["_id"]))
            docs.append(analyze(f"{doc.get('title', '')}\n{doc.get('text', '')}"))
    row = {doc_id: i for i, doc_id in enumerate(ids)}
    qrels: dict[str, set[int]] = {}
    with open(SCIFACT / "qrels-train.tsv", encoding="utf-8") as handle:
        next(handle)  # header: query-id corpus-id score
        for line in handle:
            parts = line.split()
            if len(parts) >= 3 and int(parts[2]) > 0 and parts[1] in row:
                qrels.setdefault(parts[0], set()).add(row[parts[1]])
    queries: list[list[str]] = []
    query_ids: list[str] = []
    with open(SCIFACT / "queries-train.jsonl", encoding="utf-8") as handle:
        for line in handle:
            query = json.loads(line)
            if str(query["_id"]) in qrels:
                query_ids.append(str(query["_id"]))
                queries.append(analyze(query["text"]))
    return Dataset("scifact", docs, queries, query_ids, qrels, time.perf_counter() - started)


def load_pool(size: int, seed: int, n_queries: int) -> Dataset:
    started = time.perf_counter()
    memories = pools.generate(size, seed)
    docs = [analyze(search_text(m)) for m in memories]
    rng = random.Random(seed + 1)
    texts = list(pools.AGENT_QUERIES)
    texts += [m["title"] for m in rng.sample(memories, max(0, min(len(memories), n_queries - len(texts))))]
    queries = [analyze(t) for t in texts]
    return Dataset(
        f"pool-{size}", docs, queries, [str(i) for i in range(len(queries))], {}, time.perf_counter() - started
    )


# --- engines ------------------------------------------------------------------------------------------------


def timed_queries(
    result: EngineResult,
    queries: Sequence[list[str]],
    search: Callable[[list[str]], list[int]],
    budget: float | None = None,
) -> None:
    started = time.perf_counter()
    for i, query in enumerate(queries):
        t0 = time.perf_counter()
        top = search(query)
        result.latencies.append(time.perf_counter() - t0)
        result.tops.append(top)
        if budget is not None and i >= 9 and time.perf_counter() - started > budget:
            result.note = f"stopped after {i + 1} of {len(queries)} queries (--slow-budget {budget:.0f} s)"
            break


def run_bm25s(data: Dataset) -> tuple[EngineResult, list[np.ndarray]]:
    import bm25s

    result = EngineResult("bm25s")
    gc.collect()
    t0 = time.perf_counter()
    retriever = bm25s.BM25(method="lucene")
    retriever.index(data.docs, show_progress=False)
    result.build = time.perf_counter() - t0
    k = min(K, len(data.docs))

    def search(query: list[str]) -> list[int]:
        if not query:
            return []
        docs, scores = retriever.retrieve([query], k=k, show_progress=False)
        return [int(d) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    timed_queries(result, data.queries, search)
    full = [retriever.get_scores(q) if q else np.zeros(len(data.docs), np.float32) for q in data.queries]
    # Same top-10 rule for every engine (ties by document number) for agreement and nDCG.
    result.tops = [top_k(scores) for scores in full]
    return result, full


def run_rank_bm25(data: Dataset, budget: float | None) -> EngineResult:
    result = EngineResult("rank-bm25")
    if importlib.util.find_spec("rank_bm25") is None:
        result.note = "not installed (.venv/bin/pip install rank-bm25): skipped"
        return result
    from rank_bm25 import BM25Okapi  # type: ignore[import-untyped]

    gc.collect()
    t0 = time.perf_counter()
    engine = BM25Okapi(data.docs)
    result.build = time.perf_counter() - t0

    def search(query: list[str]) -> list[int]:
        return top_k(np.asarray(engine.get_scores(query), dtype=np.float64)) if query else []

    timed_queries(result, data.queries, search, budget)
    return result


def run_mtlgit(data: Dataset, reference: list[np.ndarray], workdir: Path) -> EngineResult:
    result = EngineResult("mtlgit")
    n = len(data.docs)
    blob = "0" * 40
    files = [FileInput(f"memories/{i}.md", [0, 0, i], blob) for i in range(n)]
    docs = [
        DocInput(i, {"id": str(i), "format": "insight", "status": "active"}, terms) for i, terms in enumerate(data.docs)
    ]
    gc.collect()
    t0 = time.perf_counter()
    snapshot = commit(workdir / data.name, Manifest(kind="benchmark", dim=1), None, {}, from_docs(files, docs, dim=1))
    result.build = time.perf_counter() - t0
    segment = snapshot.segments[0]
    tf_ptr = np.asarray(segment.array("tf.ptr"))
    term_ids = np.asarray(segment.array("tf.term"))
    counts = np.asarray(segment.array("tf.count"))
    n_terms = len(segment.array("vocab"))
    t0 = time.perf_counter()
    postings(tf_ptr, term_ids, counts, n_terms)
    result.build_matrix = time.perf_counter() - t0

    def search(query: list[str]) -> list[int]:
        return top_k(bm25_scores(snapshot, query))

    timed_queries(result, data.queries, search)
    diffs = [
        float(np.max(np.abs(bm25_scores(snapshot, q) - ref))) for q, ref in zip(data.queries, reference, strict=True)
    ]
    result.max_score_diff = max(diffs) if diffs else 0.0
    return result


# --- figures ------------------------------------------------------------------------------------------------


def ndcg_at_10(tops: Sequence[list[int]], data: Dataset) -> float | None:
    if not data.qrels or not tops:
        return None
    total = 0.0
    for query_id, top in zip(data.query_ids, tops, strict=False):
        relevant = data.qrels.get(query_id, set())
        dcg = sum(1.0 / math.log2(rank + 2) for rank, doc in enumerate(top[:K]) if doc in relevant)
        ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), K)))
        total += dcg / ideal if ideal else 0.0
    return total / len(tops)


def agreement(tops: Sequence[list[int]], reference: Sequence[list[int]]) -> float | None:
    pairs = [(a, b) for a, b in zip(tops, reference, strict=False) if b]
    if not pairs:
        return None
    return statistics.mean(len(set(a) & set(b)) / len(b) for a, b in pairs)


def import_times(runs: int) -> dict[str, float]:
    """Median whole-process time of ``python -c 'import X'`` per engine, interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in IMPORTS}
    available = {name: code for name, code in IMPORTS.items() if name != "rank-bm25" or _has("rank_bm25")}
    for _ in range(runs):
        for name, code in available.items():
            t0 = time.perf_counter()
            subprocess.run([PYTHON, "-c", code], check=True, stdout=subprocess.DEVNULL)
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(values) for name, values in samples.items() if values}


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.2f} ms" if seconds < 0.01 else f"{seconds * 1000:.1f} ms"


def bench(data: Dataset, budget: float | None, workdir: Path) -> tuple[str, dict[str, Any]]:
    reference_result, reference_scores = run_bm25s(data)
    results = [reference_result, run_rank_bm25(data, budget), run_mtlgit(data, reference_scores, workdir)]
    n_terms = len({t for doc in data.docs for t in doc})
    per_doc = sum(map(len, data.docs)) / max(1, len(data.docs))
    lines = [
        f"== {data.name}: {len(data.docs):,} documents, {len(data.queries)} queries, {n_terms:,} distinct terms, "
        f"{per_doc:.1f} terms per document (tokens in {data.seconds_tokens:.1f} s) ==",
        f"{'engine':<10} {'build':>9} {'matrix':>9} {'query p50':>10} {'query p90':>10} {'queries':>7} "
        f"{'top10 agree':>11} {'max |diff|':>10} {'nDCG@10':>8}  note",
    ]
    figures: dict[str, Any] = {"docs": len(data.docs), "queries": len(data.queries), "terms": n_terms}
    reference_tops = reference_result.tops
    for result in results:
        if result.build is None:
            lines.append(f"{result.engine:<10} {result.note}")
            figures[result.engine] = {"skipped": result.note}
            continue
        p50 = statistics.median(result.latencies) if result.latencies else None
        p90 = statistics.quantiles(result.latencies, n=10)[8] if len(result.latencies) > 1 else p50
        agree = agreement(result.tops, reference_tops)
        ndcg = ndcg_at_10(result.tops, data)
        diff = "" if result.max_score_diff is None else f"{result.max_score_diff:.2e}"
        lines.append(
            f"{result.engine:<10} {_ms(result.build):>9} {_ms(result.build_matrix) if result.build_matrix else '':>9} "
            f"{_ms(p50):>10} {_ms(p90):>10} {len(result.latencies):>7} "
            f"{f'{agree:.3f}' if agree is not None else '-':>11} {diff:>10} "
            f"{f'{ndcg:.4f}' if ndcg is not None else '':>8}  {result.note}"
        )
        figures[result.engine] = {
            "build_seconds": result.build,
            "matrix_seconds": result.build_matrix,
            "query_p50_seconds": p50,
            "query_p90_seconds": p90,
            "queries_run": len(result.latencies),
            "top10_agreement_with_bm25s": agree,
            "max_abs_score_diff_vs_bm25s": result.max_score_diff,
            "ndcg_at_10": ndcg,
            "note": result.note,
        }
    return "\n".join(lines), figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="BM25 engines on the same tokens: bm25s, rank-bm25, mtlgit.")
    parser.add_argument(
        "--datasets",
        default=None,
        help="scifact and/or pool-N (default: scifact, when its data is there, pool-10000, pool-100000)",
    )
    parser.add_argument("--queries", type=int, default=200, help="queries per pool (agent queries + titles)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slow-budget", type=float, default=60.0, help="seconds of rank-bm25 queries per pool")
    parser.add_argument("--import-runs", type=int, default=9, help="whole-process runs per import")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    args = parser.parse_args(argv)
    if args.datasets is None:
        names = ["pool-10000", "pool-100000"]
        if SCIFACT.is_dir():
            names.insert(0, "scifact")
        else:
            print(f"bench_bm25: SciFact not found at {SCIFACT}: benchmarking the pools only", file=sys.stderr)
    else:
        names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    if "scifact" in names and not SCIFACT.is_dir():
        print(
            f"bench_bm25: the scifact data set needs BEIR SciFact (corpus.jsonl, queries-train.jsonl, "
            f"qrels-train.tsv) at {SCIFACT}; set MTLGIT_BENCH_DATA to the folder holding scifact/",
            file=sys.stderr,
        )
        return 2

    import bm25s

    print(f"BM25 engines on identical mtlgit.analysis tokens; Python {sys.version.split()[0]}, numpy {np.__version__}")
    rank_version = "not installed"
    if _has("rank_bm25"):
        from importlib.metadata import version

        rank_version = version("rank-bm25")
    print(
        f"bm25s {bm25s.__version__} (method=lucene, numpy backend), rank-bm25 {rank_version} (BM25Okapi, k1=1.5 b=0.75)"
    )
    out: dict[str, Any] = {"datasets": {}}
    with tempfile.TemporaryDirectory(prefix="mtlgit-bm25-") as tmp:
        for name in names:
            if name == "scifact":
                data = load_scifact()
                budget = None
            elif name.startswith("pool-"):
                data = load_pool(int(name.removeprefix("pool-").replace("_", "")), args.seed, args.queries)
                budget = args.slow_budget
            else:
                print(f"bench_bm25: unknown data set {name!r} (scifact or pool-N)", file=sys.stderr)
                return 2
            print()
            text, figures = bench(data, budget, Path(tmp))
            print(text)
            out["datasets"][name] = figures
            del data
            gc.collect()
            sys.stdout.flush()

    print()
    times = import_times(args.import_runs)
    bare = times.get("(bare python)", 0.0)
    print(
        f"== import time: whole process `python -c 'import X'` minus `python -c pass`, median of {args.import_runs} =="
    )
    for name, seconds in times.items():
        label = "python -c pass" if name == "(bare python)" else name
        extra = "" if name == "(bare python)" else f"  (+{(seconds - bare) * 1000:.0f} ms)"
        print(f"  {label:<16} {seconds * 1000:7.1f} ms{extra}")
    if not _has("rank_bm25"):
        print("  rank-bm25        not installed: skipped")
    out["imports_seconds"] = times
    print("  (mtlgit: `from mtlgit.recall import bm25_scores`, the recall path's modules; all three import numpy)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
