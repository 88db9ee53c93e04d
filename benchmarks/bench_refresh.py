"""What a hand edit costs the next command, interleaved against another mtlgit on a copy of the same pool.

For each round, in one loop (the machine is shared and noisy, so every figure is a median of whole processes
and also a ratio to ``python -c 'import numpy'`` run in the same loop):

- ``numpy``: the baseline;
- ``recall``: ``mtlgit recall QUERY`` with nothing changed;
- ``edit+index``: append a sentence to one memory (a different one each round, in place, as an editor that
  writes in place does), then time ``mtlgit index``;
- ``edit+recall``: the same edit, then time ``mtlgit recall QUERY`` (it must see the edit: never stale).

Each side is ``NAME=POOL_DIR:MTLGIT_BINARY``; both pools should be copies of one pool made with ``pools.py``.
Peak memory (max RSS) of each timed process comes from ``os.wait4``.

    python benchmarks/pools.py /tmp/p10k --size 10000
    cp -r /tmp/p10k /tmp/p10k-old
    python benchmarks/bench_refresh.py new=/tmp/p10k:.venv/bin/mtlgit old=/tmp/p10k-old:/path/to/old/venv/bin/mtlgit
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUERIES = [
    "retry a flaky network request",
    "the build works locally but fails in CI",
    "parse a date string with a timezone",
    "pandas merge returns more rows than expected",
]


def timed(argv: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and max RSS (KB) of one whole process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, _status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss


def edit_one(pool: Path, round_number: int) -> None:
    files = sorted((pool / "memories").rglob("*.md"))
    path = files[(round_number * 7919) % len(files)]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"\nBenchmark round {round_number} adds this sentence.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sides", nargs="+", help="NAME=POOL_DIR:MTLGIT_BINARY")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args(argv)
    sides = {}
    for side in args.sides:
        name, _, rest = side.partition("=")
        pool, _, binary = rest.partition(":")
        sides[name] = (Path(pool), binary)
    for _name, (pool, binary) in sides.items():  # warm: build or refresh the index, start what starts
        subprocess.run([binary, "index"], cwd=pool, capture_output=True, check=False)
        subprocess.run([binary, "recall", QUERIES[0]], cwd=pool, capture_output=True, check=False)
    time.sleep(2)
    times: dict[str, list[float]] = {"numpy": []}
    peaks: dict[str, list[int]] = {}
    for run in range(args.runs):
        times["numpy"].append(timed([sys.executable, "-c", "import numpy"], Path.cwd())[0])
        for name, (pool, binary) in sides.items():
            query = QUERIES[run % len(QUERIES)]
            for case in ("recall", "edit+index", "edit+recall"):
                if case.startswith("edit"):
                    edit_one(pool, run * 2 + (case == "edit+recall"))
                command = [binary, "index"] if case == "edit+index" else [binary, "recall", query]
                seconds, rss = timed(command, pool)
                times.setdefault(f"{name} {case}", []).append(seconds)
                peaks.setdefault(f"{name} {case}", []).append(rss)
    base = statistics.median(times["numpy"])
    print(f"{'what':28s} {'median':>9s} {'x numpy':>8s} {'peak RSS':>9s}   ({args.runs} runs)")
    for key, values in times.items():
        median = statistics.median(values)
        peak = f"{max(peaks[key]) / 1024:.0f} MB" if key in peaks else ""
        print(f"{key:28s} {median * 1000:7.0f} ms {median / base:7.2f}x {peak:>9s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
