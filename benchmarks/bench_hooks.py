"""The cost of mtlgit's git hooks: the wall time they add to ``git commit`` on a pool of 10k memories.

Measured as whole ``git commit`` processes, with the hooks installed and without, interleaved in one loop
(the machine is shared: medians and differences of the same run):

- no memory changed: a commit of an unrelated file (the pre-commit hook sees no staged Markdown and does not
  start Python; the post-commit hook starts the index refresh in the background and returns);
- one memory changed: a commit of one edited memory (the pre-commit hook lints the staged file against the
  pool's ids, from the blob cache).

Also printed: how long the background refresh takes to finish after the commit returned (from hooks.log).

Run it::

    .venv/bin/python benchmarks/bench_hooks.py            # 10k memories, 15 commits of each kind
    .venv/bin/python benchmarks/bench_hooks.py --size 1000 --runs 7
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

MTLGIT = [sys.executable, "-m", "mtlgit"]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def timed_commit(repo: Path, path: Path, text: str, env: dict[str, str]) -> float:
    path.write_text(text, encoding="utf-8")
    subprocess.run(["git", "add", str(path)], cwd=repo, check=True, env=env)
    started = time.perf_counter()
    subprocess.run(["git", "commit", "-qm", "bench"], cwd=repo, check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def wait_for_refresh(repo: Path, lines_before: int, timeout: float = 120.0) -> float:
    log = repo / ".git" / "mtlgit" / "hooks.log"
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if log.exists() and len(log.read_text().splitlines()) > lines_before:
            return time.perf_counter() - started
        time.sleep(0.02)
    return float("nan")


def log_lines(repo: Path) -> int:
    log = repo / ".git" / "mtlgit" / "hooks.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parents[1] / "mtlgit")])
    with tempfile.TemporaryDirectory(prefix="mtlgit-bench-hooks-") as tmp:
        repo = Path(tmp) / "pool"
        build_pool(repo, args.size)
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "b",
            "GIT_AUTHOR_EMAIL": "b@b",
            "GIT_COMMITTER_NAME": "b",
            "GIT_COMMITTER_EMAIL": "b@b",
        }
        git(repo, "add", "-A")
        subprocess.run(["git", "commit", "-qm", "pool"], cwd=repo, check=True, env=env)
        subprocess.run([*MTLGIT, "index"], cwd=repo, check=True, capture_output=True)
        memory = sorted((repo / "memories").rglob("*.md"))[len(list((repo / "memories").rglob("*.md"))) // 2]
        original = memory.read_text(encoding="utf-8")
        other = repo / "notes.txt"
        plain: dict[str, list[float]] = {"none": [], "one": []}
        hooked: dict[str, list[float]] = {"none": [], "one": []}
        refresh: list[float] = []
        for run in range(args.runs):
            for installed in (False, True):
                subprocess.run(
                    [*MTLGIT, "hooks", "install" if installed else "uninstall"],
                    cwd=repo,
                    check=True,
                    capture_output=True,
                )
                target = hooked if installed else plain
                for kind, path, text in (
                    ("none", other, f"note {run} {installed}\n"),
                    ("one", memory, original.rstrip("\n") + f" Edit {run} {installed}.\n"),
                ):
                    before = log_lines(repo)
                    target[kind].append(timed_commit(repo, path, text, env))
                    if installed:
                        took = wait_for_refresh(repo, before)
                        if kind == "none":
                            refresh.append(took)
        print(f"git commit on a pool of {args.size} memories, {args.runs} commits of each kind (medians)")
        print(f"{'':28}{'no hooks':>10}{'hooks':>10}{'added':>10}{'target':>10}")
        for kind, label, target_ms in (("none", "no memory changed", 100), ("one", "one memory changed", 500)):
            base, with_hooks = statistics.median(plain[kind]), statistics.median(hooked[kind])
            print(
                f"{label:<28}{base * 1000:>8.0f}ms{with_hooks * 1000:>8.0f}ms"
                f"{(with_hooks - base) * 1000:>8.0f}ms{target_ms:>8}ms"
            )
        finished = [r for r in refresh if r == r]
        if finished:
            print(
                f"background refresh after a commit: median {statistics.median(finished) * 1000:.0f} ms "
                "(the commit does not wait for it)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
