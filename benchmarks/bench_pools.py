"""Recall across a unified pool: this repository plus 5 other repositories' pools of 10k memories each.

Builds 5 upstream repositories (each a committed pool of N memories, different seeds), adds them as pools of
an empty local repository, syncs them (timed: fetch into bare mirrors, read from git objects, embed), then
times whole ``mtlgit recall`` processes over the 6 sources, interleaved with ``python -c 'import numpy'``.
Target (issue: unified pool): <= 300 ms per recall with 5 pools of 10k.

Run it::

    .venv/bin/python benchmarks/bench_pools.py                # 5 pools x 10k, 15 recalls
    .venv/bin/python benchmarks/bench_pools.py --pools 2 --size 1000 --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pools import build_pool

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@b",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@b",
}
QUERIES = [
    "retry a flaky network request",
    "fix a failing pytest test",
    "quote variables in shell scripts",
    "the SQL join is slow",
    "parse dates with time zones",
]


def run(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pools", type=int, default=5)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parents[1] / "mtlgit")])
    mtlgit = str(Path(sys.executable).with_name("mtlgit"))
    with tempfile.TemporaryDirectory(prefix="mtlgit-bench-pools-") as tmp:
        root = Path(tmp)
        for n in range(args.pools):
            upstream = root / f"team{n}"
            build_pool(upstream, args.size, seed=n + 1)
            run(["git", "add", "-A"], upstream)
            run(["git", "commit", "-qm", "pool"], upstream)
            run(["git", "branch", "-M", "main"], upstream)
        local = root / "local"
        local.mkdir()
        run(["git", "init", "-q"], local)
        run([mtlgit, "init", "--no-hooks"], local)
        for n in range(args.pools):
            run([mtlgit, "pool", "add", f"team{n}", str(root / f"team{n}"), "--domain", f"d{n}", "--no-sync"], local)
        sync = run([mtlgit, "pool", "sync"], local)
        run([mtlgit, "recall", "warm up"], local)
        recalls, baseline = [], []
        for i in range(args.runs):
            baseline.append(run([sys.executable, "-c", "import numpy"], local))
            recalls.append(run([mtlgit, "recall", QUERIES[i % len(QUERIES)]], local))
        p50, base = statistics.median(recalls), statistics.median(baseline)
        print(
            f"{args.pools} pools x {args.size} memories: sync {sync:.1f} s; recall whole process p50 "
            f"{p50 * 1000:.0f} ms (numpy import {base * 1000:.0f} ms, ratio {p50 / base:.2f}; target 300 ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
