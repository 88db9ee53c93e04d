"""Recall in two stages against the exhaustive path: agreement of the top 3 and top 10, and time per call.

From ``recall.TWO_STAGE_MIN`` candidates, recall scores every candidate on the stored head of the vectors
(``segment.HEAD_DIMS`` dimensions), estimates its dense z-score from that, and scores only the best
``RESCORE`` + k in full, with the ``BAR_RESCORE`` best by estimated confidence (mtlgit/recall.py). This
measures, on an indexed pool (e.g. 100k memories made with ``pools.py``), how often the two-stage top 3 and top
10 equal the exhaustive ones (same memories, same order), for each number rescored, and how often the default
answer (k = 3 after the default confidence bar: which memories, their order, or none) does, over task-worded
queries: the agent-task sets (``benchmarks/agent_tasks/*.jsonl``,
``benchmarks/agent_cases/cases.tsv``) and, when the third-party data is there, SciFact's training claims.
It also times one in-process call of each path (search only, and the whole MCP-like request: freshness,
search, budget, prompt text and JSON), medians.

Run it (the pool must be indexed: ``mtlgit index`` in it)::

    .venv/bin/python benchmarks/bench_two_stage.py --pool /tmp/pool-100k
    .venv/bin/python benchmarks/bench_two_stage.py --pool /tmp/pool-100k --rescore 100 --rescore 300
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

# As `mtlgit mcp` does (mtlgit/cli/mcp_cmd.py): one BLAS thread, set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mtlgit import recall as recall_module  # noqa: E402
from mtlgit import render  # noqa: E402
from mtlgit.confidence import DEFAULT_MIN_CONFIDENCE  # noqa: E402
from mtlgit.recall import Recaller, Source, search_sources  # noqa: E402
from mtlgit.recall_request import RecallRequest, execute  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "queries-train.jsonl"


def queries() -> dict[str, list[str]]:
    """The task-worded query sets by name (SciFact's claims only when the data folder is there)."""
    sets: dict[str, list[str]] = {}
    tasks = []
    for path in sorted((ROOT / "benchmarks" / "agent_tasks").glob("*.jsonl")):
        tasks += [json.loads(line)["task"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    sets["agent tasks"] = tasks
    with open(ROOT / "benchmarks" / "agent_cases" / "cases.tsv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    sets["agent cases"] = [row[0] for row in rows[1:] if row]
    if SCIFACT.exists():
        lines = SCIFACT.read_text(encoding="utf-8").splitlines()
        sets["scifact claims"] = [json.loads(line)["text"] for line in lines if line.strip()]
    else:
        print(f"note: {SCIFACT} is absent: SciFact's claims left out", file=sys.stderr)
    return sets


def ranking(recaller: Recaller, query: str, model: object, k: int, bar: float = 0.0) -> tuple[list[str], float]:
    started = time.perf_counter()
    encode = model.encode_query  # type: ignore[attr-defined]
    hits = search_sources([Source(recaller.snapshot(quick=True))], query, encode, k=k, min_confidence=bar)
    return [hit.path for hit in hits], time.perf_counter() - started


def whole_call(recaller: Recaller, query: str) -> float:
    """One MCP-like request in process: freshness as the server checks it, search, budget, prompt, JSON."""
    started = time.perf_counter()
    recalled = execute(RecallRequest(query=query), recaller)
    render.prompt(recalled.result.hits)
    json.dumps(recalled.to_json())
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, required=True, help="an indexed pool (pools.py, then mtlgit index)")
    parser.add_argument("--rescore", type=int, action="append", help="numbers rescored in full (default 100-500)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many queries per set (0: all)")
    args = parser.parse_args()
    rescores = args.rescore or [100, 200, 300, 500]
    recaller = Recaller(args.pool)
    snapshot = recaller.snapshot()
    model = recaller.model(str(snapshot.manifest["model"]))
    print(f"pool {args.pool}: {snapshot.n_docs} memories, {len(snapshot.segments)} segment(s)")
    two_stage_min = recall_module.TWO_STAGE_MIN
    default_rescore = recall_module.RESCORE
    for name, texts in queries().items():
        texts = texts[: args.limit] if args.limit else texts
        recall_module.TWO_STAGE_MIN = 10**12
        exact = []
        exact_times = []
        for text in texts:
            ranked, took = ranking(recaller, text, model, 10)
            exact.append(ranked)
            exact_times.append(took)
        barred = [ranking(recaller, text, model, 3, DEFAULT_MIN_CONFIDENCE)[0] for text in texts]
        median = statistics.median(exact_times) * 1000
        none = sum(not answer for answer in barred)
        print(
            f"\n{name}: {len(texts)} queries ({none} with nothing above the bar); exhaustive search median "
            f"{median:.1f} ms"
        )
        recall_module.TWO_STAGE_MIN = two_stage_min
        for rescore in rescores:
            recall_module.RESCORE = rescore
            same3 = same10 = same_bar = 0
            times = []
            for text, reference, answer in zip(texts, exact, barred, strict=True):
                ranked, took = ranking(recaller, text, model, 10)
                times.append(took)
                same3 += ranked[:3] == reference[:3]
                same10 += ranked == reference
                same_bar += ranking(recaller, text, model, 3, DEFAULT_MIN_CONFIDENCE)[0] == answer
            print(
                f"  rescore {rescore:4d} + k: top 3 agree {same3 / len(texts):7.2%}, top 10 agree "
                f"{same10 / len(texts):7.2%}, after the bar {same_bar / len(texts):7.2%}, "
                f"search median {statistics.median(times) * 1000:.1f} ms"
            )
        recall_module.RESCORE = default_rescore
    sample = [text for texts in queries().values() for text in texts[:40]]
    for label, minimum in (("exhaustive", 10**12), (f"two-stage (rescore {default_rescore})", two_stage_min)):
        recall_module.TWO_STAGE_MIN = minimum
        for text in sample[:10]:  # warm-up
            whole_call(recaller, text)
        times = [whole_call(recaller, text) for text in sample]
        print(f"\nwhole request in process, {label}: median {statistics.median(times) * 1000:.1f} ms over {len(times)}")
    recall_module.TWO_STAGE_MIN = two_stage_min
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
