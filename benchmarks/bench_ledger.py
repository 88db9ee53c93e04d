"""The cost of the outcome ledger: recording a receipt per recall, and aggregating a large ledger.

- **record, in-process**: :func:`mtlgit.ledger.record_recall` on a real recall result (config read, HEAD,
  blob ids of the hits, one appended line), median of many calls;
- **record, whole process**: ``mtlgit recall --json`` with ``ledger.record: true`` against ``false``,
  interleaved, medians and their difference;
- **aggregate**: a ledger of ``--receipts`` receipts (3 memories each, out of 2,000) and ``--outcome-share`` of
  them with an outcome, written as mtlgit writes them; :func:`mtlgit.ledger.figures` cold (no cache) and warm,
  and :func:`mtlgit.ledger.prior` for 3 and for 10k memories;
- **the prior on a recall**: the same ledger written over the pool's own memory ids (and others), so recall
  applies it; ``mtlgit recall`` whole processes with the ledger's outcomes and with them moved away
  (interleaved, medians); the prior's first call in a fresh process (``mtlgit.ledger`` imported, settings and
  the cached outcome tallies read, the table built); and the lookup of the prior of 100k candidates.

``python -c 'import numpy'`` is timed in the same run: the machine is shared, so compare ratios.

Run it::

    .venv/bin/python benchmarks/bench_ledger.py
    .venv/bin/python benchmarks/bench_ledger.py --receipts 100000 --outcome-share 1.0 --runs 9
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mtlgit import ledger, receipts
from mtlgit.ids import new_ulid
from mtlgit.recall import recall
from mtlgit.repo import find_repo

MTLGIT = [sys.executable, "-m", "mtlgit"]
CONFIG = "memories: memories\nmodel: default\nrecall:\n  k: 3\n  mode: hybrid\nledger:\n  record: {record}\n"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_repo(root: Path, memories: int = 30, name: str = "repo") -> Path:
    repo = root / name
    repo.mkdir()
    git(repo, "init", "-q")
    subprocess.run([*MTLGIT, "init"], cwd=repo, check=True, capture_output=True)
    items = [
        {
            "title": f"Lesson {n}: check the {topic} before relying on it",
            "description": f"When a task touches {topic} and something fails in a way you did not expect.",
            "content": f"Look at the {topic} first, reproduce the failure, then change one thing at a time.",
            "domains": ["python"],
        }
        for n, topic in enumerate(
            ["tests", "versions", "paths", "encodings", "timeouts", "permissions", "configuration", "caches"]
            * (memories // 8 + 1)
        )
    ][:memories]
    subprocess.run(
        [*MTLGIT, "add", "--force", "--json", "-"], cwd=repo, input=json.dumps(items), text=True, capture_output=True
    )
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "pool")
    return repo


def whole(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def bench_record(repo: Path, runs: int) -> dict[str, float]:
    os.chdir(repo)
    result = recall("a test fails after a library upgrade")
    times = []
    for _ in range(runs * 20):
        started = time.perf_counter()
        receipts.record_recall(result)
        times.append(time.perf_counter() - started)
    query = ["recall", "--json", "a test fails after a library upgrade"]
    # Two pools built alike, one recording and one not, so the configuration never changes inside the loop.
    without = make_repo(repo.parent, name="without-ledger")
    for folder, record in ((repo, "true"), (without, "false")):
        (folder / ".mtlgit.yaml").write_text(CONFIG.format(record=record), encoding="utf-8")
        for _ in range(2):
            whole([*MTLGIT, *query], folder)
    numpy: list[float] = []
    on: list[float] = []
    off: list[float] = []
    for n in range(runs):
        numpy.append(whole([sys.executable, "-c", "import numpy"], repo))
        pairs = ((repo, on), (without, off)) if n % 2 else ((without, off), (repo, on))
        for folder, bucket in pairs:
            bucket.append(whole([*MTLGIT, *query], folder))
    # What recording adds to a recall's process: the first call in a fresh process, imports included (the
    # difference of two ~1 s whole processes is lost in the noise of a shared machine).
    probe = (
        "import time, sys; from mtlgit.recall import recall; r = recall(sys.argv[1]); t = time.perf_counter(); "
        "from mtlgit.receipts import record_recall; record_recall(r); print(time.perf_counter() - t)"
    )
    first = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", probe, "a test fails"], cwd=repo, capture_output=True, text=True)
        first.append(float(out.stdout))
    return {
        "record_first_call_ms": statistics.median(first) * 1000,
        "record_in_process_ms": statistics.median(times) * 1000,
        "recall_with_ledger_ms": statistics.median(on) * 1000,
        "recall_without_ledger_ms": statistics.median(off) * 1000,
        "whole_process_delta_ms": (statistics.median(on) - statistics.median(off)) * 1000,
        "numpy_ms": statistics.median(numpy) * 1000,
    }


def write_ledger(
    repo: Path, receipts: int, outcome_share: float, memories: int = 2000, pool_ids: list[str] | None = None
) -> None:
    """A ledger as mtlgit writes it, spread over 4 clones' files, over ``pool_ids`` and other ids."""
    import random

    rng = random.Random(0)
    ids = list(pool_ids or []) + [new_ulid() for _ in range(memories - len(pool_ids or []))]
    folder = ledger.ledger_dir(find_repo(repo))
    shutil.rmtree(folder, ignore_errors=True)
    for kind in ("receipts", "outcomes"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
    clones = [os.urandom(8).hex() for _ in range(4)]
    handles = {(kind, c): open(folder / kind / f"{c}.jsonl", "w") for kind in ("receipts", "outcomes") for c in clones}
    for n in range(receipts):
        clone = clones[n % 4]
        chosen = rng.sample(ids, 3)
        rid = "rc-" + new_ulid()
        receipt = {
            "v": 1,
            "id": rid,
            "at": "2026-12-01T14:00:00Z",
            "commit": os.urandom(20).hex(),
            "tool": "cli",
            "agent": None,
            "query_sha": os.urandom(8).hex(),
            "memories": chosen,
            "blobs": [os.urandom(20).hex() for _ in chosen],
            "pools": ["local"] * 3,
        }
        handles["receipts", clone].write(json.dumps(receipt, separators=(",", ":")) + "\n")
        if rng.random() < outcome_share:
            outcome = {
                "v": 1,
                "id": "oc-" + new_ulid(),
                "at": "2026-12-01T14:00:01Z",
                "receipt": rid,
                "outcome": rng.choice(["success", "failure"]),
                "memories": chosen,
                "used": chosen[:1],
                "hurt": [],
                "tool": "cli",
            }
            handles["outcomes", clone].write(json.dumps(outcome, separators=(",", ":")) + "\n")
    for handle in handles.values():
        handle.close()


def bench_aggregate(repo: Path, receipts: int, outcome_share: float, runs: int) -> dict[str, float]:
    r = find_repo(repo)
    write_ledger(repo, receipts, outcome_share)
    cache = ledger.ledger_dir(r) / "recalled.json"
    cold, warm, prior3, prior10k, numpy = [], [], [], [], []
    some_ids = list(ledger.figures(r).memories)[:3]
    many = [new_ulid() for _ in range(10_000)]
    for _ in range(runs):
        numpy.append(whole([sys.executable, "-c", "import numpy"], repo))
        cache.unlink(missing_ok=True)
        started = time.perf_counter()
        got = ledger.figures(r)
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        ledger.figures(r)
        warm.append(time.perf_counter() - started)
        started = time.perf_counter()
        ledger.prior(some_ids, r, weight=0.5)
        prior3.append(time.perf_counter() - started)
        started = time.perf_counter()
        ledger.prior(many, r, weight=0.5)
        prior10k.append(time.perf_counter() - started)
    assert got.receipts == receipts, (got.receipts, receipts)
    return {
        "receipts": receipts,
        "outcomes": got.outcomes,
        "figures_cold_ms": statistics.median(cold) * 1000,
        "figures_warm_ms": statistics.median(warm) * 1000,
        "prior_3_ms": statistics.median(prior3) * 1000,
        "prior_10k_ms": statistics.median(prior10k) * 1000,
        "numpy_ms": statistics.median(numpy) * 1000,
    }


def bench_prior(repo: Path, receipts: int, outcome_share: float, runs: int) -> dict[str, float]:
    import numpy as np

    from mtlgit.recall import Recaller
    from mtlgit.receipts import recall_prior

    r = find_repo(repo)
    pool_ids = [str(hit.memory["id"]) for hit in recall("check the tests", k=1000, min_confidence=0, start=repo).hits]
    write_ledger(repo, receipts, outcome_share, pool_ids=pool_ids)
    # Text output records no receipt, so the ledger does not change; no bar, so the prior has hits to move.
    query = [*MTLGIT, "recall", "--min-confidence", "0", "a test fails after a library upgrade"]
    whole(query, repo)
    assert Recaller(repo).recall(query[-1], min_confidence=0).hits[0].prior != 0, "the prior is not applied"
    # The same repository with and without its outcomes: the folder is renamed away and back, which keeps
    # every file's stat, so the prior's cache stays valid, as it does between two recalls.
    outcomes = ledger.ledger_dir(r) / "outcomes"
    numpy: list[float] = []
    on: list[float] = []
    off: list[float] = []
    for n in range(runs):
        numpy.append(whole([sys.executable, "-c", "import numpy"], repo))
        for with_ledger in (n % 2 == 0, n % 2 == 1):
            if not with_ledger:
                outcomes.rename(outcomes.with_name("outcomes.away"))
            (on if with_ledger else off).append(whole(query, repo))
            if not with_ledger:
                outcomes.with_name("outcomes.away").rename(outcomes)
    probe = (
        "import time; from mtlgit.recall import Recaller, _ledger_prior; r = Recaller(); t = time.perf_counter(); "
        "_ledger_prior(r.repo); print(time.perf_counter() - t)"
    )
    first = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=True)
        first.append(float(out.stdout))
    built = recall_prior(r)
    assert built is not None
    candidates = np.array([new_ulid().encode() for _ in range(100_000 - len(pool_ids))] + pool_ids, dtype="S64")
    lookup = []
    for _ in range(runs * 5):
        started = time.perf_counter()
        built(candidates)
        lookup.append(time.perf_counter() - started)
    return {
        "prior_recall_with_ledger_ms": statistics.median(on) * 1000,
        "prior_recall_no_ledger_ms": statistics.median(off) * 1000,
        "prior_whole_process_delta_ms": (statistics.median(on) - statistics.median(off)) * 1000,
        "prior_first_call_ms": statistics.median(first) * 1000,
        "prior_lookup_100k_ms": statistics.median(lookup) * 1000,
        "prior_numpy_ms": statistics.median(numpy) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--receipts", type=int, default=100_000)
    parser.add_argument("--outcome-share", type=float, default=0.2, help="share of receipts with an outcome")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only-prior", action="store_true", help="measure only the prior on a recall")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.only_prior:
            repo = make_repo(Path(tmp))
            figures.update(bench_record(repo, args.runs))
            figures.update(bench_aggregate(repo, args.receipts, args.outcome_share, args.runs))
        figures.update(bench_prior(make_repo(Path(tmp), name="prior"), args.receipts, args.outcome_share, args.runs))
    for name, value in figures.items():
        print(f"{name:28} {value:10.2f}" if isinstance(value, float) else f"{name:28} {value:10d}")
    ratios = [
        ("record first call", "record_first_call_ms", "numpy_ms"),
        ("record whole-process delta", "whole_process_delta_ms", "numpy_ms"),
        ("figures cold", "figures_cold_ms", "numpy_ms"),
        ("figures warm", "figures_warm_ms", "numpy_ms"),
        ("prior first call", "prior_first_call_ms", "prior_numpy_ms"),
        ("prior whole-process delta", "prior_whole_process_delta_ms", "prior_numpy_ms"),
    ]
    print(
        "ratios to numpy: "
        + ", ".join(f"{label} {figures[a] / figures[b]:.3f}" for label, a, b in ratios if a in figures)
    )


if __name__ == "__main__":
    main()
