"""Fit recall's confidence model and choose its default bar on the dev split of the agent-task benchmark.

Every dev task is recalled (top 10, no bar) from a repository holding the starter pool, in each mode. The
model is fitted at the level of the task: the raw scores of its best memory (the dense cosine, and the raw BM25
score over log(1 + pool size)) against whether the task has any labelled memory, by a logistic regression
(Newton's method). Recall applies the same function to each memory it returns. The script prints the
coefficients to copy into ``mtlgit/confidence.py`` and, for a range of bars, what a default recall (k=3) then
does: the share of tasks without a memory that get nothing back, of labelled tasks that keep a hit, and of
labelled tasks that keep a labelled one.

Run it from a clone (the task files ship in ``benchmarks/agent_tasks``)::

    python benchmarks/fit_confidence.py                # fit on dev and print; nothing is written
    python benchmarks/fit_confidence.py --split test   # the shipped model's figures on the test split
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mtlgit.confidence import COEFFICIENTS  # noqa: E402
from mtlgit.evaluate import copy_pool, load_tasks  # noqa: E402
from mtlgit.recall import MODES, Recaller  # noqa: E402

BARS = (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8)

Hit = tuple[float, float, bool]  # cosine, BM25 / log(1 + pool size), labelled


def collect(split: str) -> dict[str, list[tuple[list[Hit], bool]]]:
    """For each mode and task: its top 10 hits' features, and whether the task has labelled memories."""
    tasks = [t for t in load_tasks(ROOT / "benchmarks" / "agent_tasks") if split == "all" or t.split == split]
    out: dict[str, list[tuple[list[Hit], bool]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="mtlgit-fit-") as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        copy_pool(ROOT / "memories", root / "memories")
        recaller = Recaller(root)
        scale = float(np.log1p(recaller.snapshot().n_docs))
        for task in tasks:
            for mode in MODES:
                result = recaller.recall(task.text, k=10, mode=mode, quick=True, min_confidence=0.0)
                hits = [(h.dense, h.bm25 / scale, str(h.memory["id"]) in task.labels) for h in result.hits]
                out[mode].append((hits, bool(task.labels)))
    return out


def fit(x: np.ndarray, y: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """Logistic regression by Newton's method, with a small ridge for stability."""
    design = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(design.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-design @ w))
        grad = design.T @ (p - y) + ridge * np.r_[0, w[1:]]
        hess = design.T @ (design * (p * (1 - p))[:, None]) + ridge * np.diag(np.r_[0, np.ones(len(w) - 1)])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def abstention(rows: list[tuple[list[Hit], bool]], coef: tuple[float, float, float], bar: float) -> tuple[float, ...]:
    """A default recall (k=3) at ``bar``: (unlabelled tasks silent, labelled tasks keeping a hit, labelled tasks
    keeping a labelled hit)."""
    silent = kept = good = labelled = unlabelled = 0
    for hits, has_labels in rows:
        kept_hits = [h for h in hits[:3] if 1 / (1 + np.exp(-(coef[0] + coef[1] * h[0] + coef[2] * h[1]))) >= bar]
        if has_labels:
            labelled += 1
            kept += bool(kept_hits)
            good += any(h[2] for h in kept_hits)
        else:
            unlabelled += 1
            silent += not kept_hits
    return silent / max(unlabelled, 1), kept / max(labelled, 1), good / max(labelled, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="dev", choices=("dev", "test", "all"))
    args = parser.parse_args()
    data = collect(args.split)
    for mode in MODES:
        rows = [(hits[0] if hits else (0.0, 0.0, False), labelled) for hits, labelled in data[mode]]
        x = np.array([(c, b) for (c, b, _r), _l in rows])
        y = np.array([float(labelled) for _h, labelled in rows])
        if args.split == "dev":
            columns = {"hybrid": [0, 1], "bm25": [1], "dense": [0]}[mode]
            w = fit(x[:, columns], y)
            full = [float(w[0]), 0.0, 0.0]
            for weight, column in zip(w[1:], columns, strict=True):
                full[1 + column] = float(weight)
            coef = (full[0], full[1], full[2])
            print(f"{mode}: fitted (intercept, cosine, bm25) = ({coef[0]:.3f}, {coef[1]:.3f}, {coef[2]:.3f})")
        else:
            coef = COEFFICIENTS[mode]
            print(f"{mode}: shipped (intercept, cosine, bm25) = {coef}")
        print("  bar   none-silent  labelled-kept  labelled-kept-a-labelled-one")
        for bar in BARS:
            silent, kept, good = abstention(data[mode], coef, bar)
            print(f"  {bar:4.2f}  {silent:11.3f}  {kept:13.3f}  {good:28.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
