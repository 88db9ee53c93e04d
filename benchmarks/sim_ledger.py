"""A simulated agent loop over many tasks: does the outcome ledger tell helpful memories from harmful ones,
and what does the recall prior do?

The pool: ``--topics`` topics of ``--per-topic`` memories each; every memory is helpful (``--helpful`` of
them), harmful (``--harmful``) or neutral. A task has one topic. Recall scores every memory (``--relevance`` if
it is on the task's topic, plus standard normal noise), standardises the scores over the pool as hybrid
recall does (z-scores), adds the ledger's prior (:func:`mtlgit.ledger.prior_values`, recomputed every
``--refresh`` tasks from the outcomes so far) and returns the top 3.

The agent uses a recalled memory with probability ``--use-on-topic`` when it is on the task's topic and
``--use-off-topic`` otherwise, and says so ("Using Memory Item N"). The task succeeds with probability
``--base`` plus ``--effect`` for each helpful on-topic memory used, minus ``--effect`` for each harmful one
used (clipped to [0.05, 0.95]). No agent reports "hurt": harm is found from outcomes alone. Outcomes are
written as mtlgit writes them and read back by the ledger's own code (:func:`mtlgit.ledger.outcome_figures`).

Recall in mtlgit multiplies the prior by the spread (standard deviation) of the candidates' fused scores
before adding it; the scores here are z-scores, whose spread is 1, so the prior is added as it is.

Printed, for each prior weight (the bound of ``recall.feedback_weight``), medians over ``--seeds`` runs:

- tasks until the ledger separates helpful from harmful memories: the first refresh at which a helpful memory
  taken at random has a higher ledger score than a harmful one with probability 0.8 / 0.9 (the area under the
  ROC curve of the unbounded score, ties counted half);
- tasks until the ledger flags 50% / 90% of the harmful memories (lint's rule: evidence of harm), and how
  many helpful or neutral memories are flagged by then (false flags); at the end, the share of harmful
  memories flagged and the false flags; how many times a harmful memory had been used when it was flagged;
- hit@3 of helpful memories (a helpful memory of the task's topic in the top 3, over tasks whose topic has
  one) and how often a harmful memory is recalled (share of tasks with one in the top 3), over the last half
  of the run, when the ledger has evidence.

Run it::

    .venv/bin/python benchmarks/sim_ledger.py
    .venv/bin/python benchmarks/sim_ledger.py --tasks 4000 --seeds 9 --weights 0 0.25 0.5 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass

import numpy as np

from mtlgit import ledger
from mtlgit.ids import new_ulid

HELPFUL, NEUTRAL, HARMFUL = 1, 0, -1


@dataclass
class Run:
    separated_80: float
    separated_90: float
    flagged_half: float
    flagged_most: float
    false_flags_at_most: float
    hit3: float
    harmful_recalled: float
    false_flags_end: int
    harmful_flagged_end: float
    uses_to_flag: float


def simulate(args: argparse.Namespace, weight: float, seed: int) -> Run:
    rng = np.random.default_rng(seed)
    n = args.topics * args.per_topic
    topic = np.repeat(np.arange(args.topics), args.per_topic)
    kind = rng.choice(
        [HELPFUL, HARMFUL, NEUTRAL], size=n, p=[args.helpful, args.harmful, 1 - args.helpful - args.harmful]
    )
    ids = [new_ulid() for _ in range(n)]
    harmful = set(np.flatnonzero(kind == HARMFUL).tolist())
    lines: list[bytes] = []
    bonus = np.zeros(n, dtype=np.float32)
    flagged_half = flagged_most = separated_80 = separated_90 = float("nan")
    false_at_most = float("nan")
    hits = harmful_hits = counted = tasks_with_helpful = 0
    uses_when_flagged: dict[int, int] = {}
    for task in range(1, args.tasks + 1):
        t = int(rng.integers(args.topics))
        on_topic = topic == t
        raw = args.relevance * on_topic + rng.standard_normal(n)
        score = (raw - raw.mean()) / raw.std() + bonus
        top = np.argsort(-score)[:3]
        used = [int(i) for i in top if rng.random() < (args.use_on_topic if on_topic[i] else args.use_off_topic)]
        p = args.base
        for i in used:
            if kind[i] == HARMFUL:
                p -= args.effect
            elif kind[i] == HELPFUL and on_topic[i]:
                p += args.effect
        success = rng.random() < min(0.95, max(0.05, p))
        event = {
            "v": 1,
            "id": "oc-" + new_ulid(),
            "at": "2026-12-01T00:00:00Z",
            "receipt": "rc-" + new_ulid(),
            "outcome": "success" if success else "failure",
            "memories": [ids[i] for i in top],
            "used": [ids[i] for i in used],
            "hurt": [],
            "tool": "sim",
        }
        lines.append(json.dumps(event, separators=(",", ":")).encode())
        if task > args.tasks // 2:
            helpful_here = on_topic & (kind == HELPFUL)
            if helpful_here.any():
                tasks_with_helpful += 1
                hits += bool(helpful_here[top].any())
            harmful_hits += bool((kind[top] == HARMFUL).any())
            counted += 1
        if task % args.refresh == 0:
            figures = ledger.outcome_figures(b"\n".join(lines) + b"\n")
            bonus = ledger.prior_values(figures, ids, weight)
            # The score before the bound: weight 1 and the effect clipped to [-1, 1] keep its order.
            score = ledger.prior_values(figures, ids, 1.0)
            auc = _auc(score[kind == HELPFUL], score[kind == HARMFUL])
            if auc >= 0.8 and separated_80 != separated_80:
                separated_80 = task
            if auc >= 0.9 and separated_90 != separated_90:
                separated_90 = task
            flags = {i for i, memory_id in enumerate(ids) if figures.get(memory_id).harmful}
            for i in flags & harmful:
                uses_when_flagged.setdefault(i, figures.get(ids[i]).used)
            share = len(flags & harmful) / max(1, len(harmful))
            if share >= 0.5 and flagged_half != flagged_half:
                flagged_half = task
            if share >= 0.9 and flagged_most != flagged_most:
                flagged_most, false_at_most = task, len(flags - harmful)
    return Run(
        separated_80,
        separated_90,
        flagged_half,
        flagged_most,
        false_at_most,
        hits / max(1, tasks_with_helpful),
        harmful_hits / max(1, counted),
        len(flags - harmful),
        len(flags & harmful) / max(1, len(harmful)),
        statistics.median(uses_when_flagged.values()) if uses_when_flagged else float("nan"),
    )


def _auc(better: np.ndarray, worse: np.ndarray) -> float:
    """The probability that a value of ``better`` exceeds one of ``worse`` (ties count half)."""
    if not len(better) or not len(worse):
        return float("nan")
    above = (better[:, None] > worse[None, :]).mean()
    tied = (better[:, None] == worse[None, :]).mean()
    return float(above + tied / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--per-topic", type=int, default=5)
    parser.add_argument("--helpful", type=float, default=0.3)
    parser.add_argument("--harmful", type=float, default=0.15)
    parser.add_argument("--relevance", type=float, default=3.0)
    parser.add_argument("--use-on-topic", type=float, default=0.6)
    parser.add_argument("--use-off-topic", type=float, default=0.15)
    parser.add_argument("--base", type=float, default=0.5)
    parser.add_argument("--effect", type=float, default=0.25)
    parser.add_argument("--refresh", type=int, default=25)
    args = parser.parse_args()
    print(
        f"{args.topics * args.per_topic} memories, {args.tasks} tasks, {args.seeds} seeds; "
        f"success {args.base} +/- {args.effect} per helpful/harmful memory used; medians over seeds"
    )
    header = (
        "weight  tasks to separate (AUC 0.8 / 0.9)  tasks to flag 50% / 90% of harmful  false flags then  "
        "hit@3 helpful  harmful recalled  flagged at end (harmful share / false)  uses of a harmful memory when flagged"
    )
    print(header)
    for weight in args.weights:
        runs = [simulate(args, weight, seed) for seed in range(args.seeds)]

        def med(name: str, runs: list[Run] = runs) -> float:
            return float(statistics.median(getattr(r, name) for r in runs))

        print(
            f"{weight:6.2f}  {med('separated_80'):>12.0f} / {med('separated_90'):<16.0f}"
            f"  {med('flagged_half'):>10.0f} / {med('flagged_most'):<10.0f}"
            f"              {med('false_flags_at_most'):>6.1f}        {med('hit3'):11.3f}  "
            f"{med('harmful_recalled'):16.3f}  {med('harmful_flagged_end'):10.2f} / {med('false_flags_end'):<26.0f} "
            f"{med('uses_to_flag'):.0f}"
        )


if __name__ == "__main__":
    main()
