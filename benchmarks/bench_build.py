"""A full index build from nothing (``rm -rf .git/mtlgit && mtlgit index``) at given sizes, whole processes.

For each size a fresh pool is made with ``pools.py`` (or ``--pool SIZE=DIR`` names one made before: it is
copied, never changed). Each round, in one loop (the machine is shared and noisy, so every figure is a median
and also a ratio to ``python -c 'import numpy'`` run in the same loop), every side deletes the pool's state
folder (index and parse cache) and times ``mtlgit index``: wall seconds, CPU seconds of the process and its
workers, and peak memory (max RSS of the largest process, from ``os.wait4``).

Each side is ``NAME=MTLGIT_BINARY`` (e.g. the checkout's and an older one's), each with its own copy of the pool.

    python benchmarks/bench_build.py new=.venv/bin/mtlgit old=/path/to/old/venv/bin/mtlgit --sizes 10000 --runs 5
    python benchmarks/bench_build.py new=.venv/bin/mtlgit --pool 100000=/tmp/p100k --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def timed(argv: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and max RSS (KB) of one whole process; Linux counts in both the
    workers it forked and waited for (their CPU is added, their RSS is the larger of theirs and its own)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read() if proc.stderr is not None else b""
    if status != 0:
        raise SystemExit(f"{' '.join(argv)} in {cwd} failed: {err.decode(errors='replace')[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sides", nargs="+", help="NAME=MTLGIT_BINARY")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10000])
    parser.add_argument("--pool", action="append", default=[], help="SIZE=DIR: a pool made before (copied)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="where the copies go (default: a temporary folder)")
    args = parser.parse_args(argv)
    sides = dict(side.split("=", 1) for side in args.sides)
    given = {int(size): Path(folder) for size, folder in (item.split("=", 1) for item in args.pool)}
    work = Path(tempfile.mkdtemp(prefix="bench-build-", dir=args.work))
    try:
        for size in [*args.sizes, *[s for s in given if s not in args.sizes]]:
            source = given.get(size)
            if source is None:
                from pools import build_pool

                source = work / f"pool-{size}"
                build_pool(source, size)
            pools = {}
            for name in sides:
                pools[name] = work / f"{name}-{size}"
                shutil.copytree(source, pools[name], symlinks=True, ignore=shutil.ignore_patterns("mtlgit"))
            report(size, sides, pools, args.runs)
            for folder in pools.values():
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(size: int, sides: dict[str, str], pools: dict[str, Path], runs: int) -> None:
    walls: dict[str, list[float]] = {"numpy": [], **{name: [] for name in sides}}
    cpus: dict[str, list[float]] = {name: [] for name in sides}
    peaks: dict[str, list[int]] = {name: [] for name in sides}
    for _round in range(runs):
        walls["numpy"].append(timed([sys.executable, "-c", "import numpy"], Path.cwd())[0])
        for name, binary in sides.items():
            shutil.rmtree(pools[name] / ".git" / "mtlgit", ignore_errors=True)
            wall, cpu, peak = timed([binary, "index"], pools[name])
            # A build at 5,000 files or more starts a watcher: stopped, so that it adds no noise to the next.
            subprocess.run([binary, "watch", "--stop"], cwd=pools[name], capture_output=True, check=False)
            walls[name].append(wall)
            cpus[name].append(cpu)
            peaks[name].append(peak)
    base = statistics.median(walls["numpy"])
    print(f"\n{size} memories, {runs} runs (medians); numpy import {base:.3f} s")
    print(f"{'side':12s} {'wall s':>8s} {'x numpy':>8s} {'CPU s':>7s} {'ms CPU/memory':>14s} {'peak RSS':>9s}")
    for name in sides:
        wall = statistics.median(walls[name])
        cpu = statistics.median(cpus[name])
        peak = statistics.median(peaks[name]) / 1024
        print(f"{name:12s} {wall:8.2f} {wall / base:8.1f} {cpu:7.2f} {cpu / size * 1000:14.3f} {peak:7.0f} MB")


if __name__ == "__main__":
    raise SystemExit(main())
