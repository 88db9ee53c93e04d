"""Retrieval evaluation on a labelled set in BEIR layout: nDCG@10, Recall@10, Recall@100 and MRR@10.

The corpus is written as memory files into a temporary git repository and indexed by the same code that
serves ``mtlgit recall``, so the figures measure the product, not a copy of it.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtlgit import git
from mtlgit.embed import load_model
from mtlgit.errors import MtlgitError
from mtlgit.frontmatter import render
from mtlgit.index import WorktreeIndex
from mtlgit.memory import parse_bytes
from mtlgit.recall import DENSE_WEIGHT, Filters, Recaller, search
from mtlgit.repo import find_repo
from mtlgit.rules import MODES


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

    with tempfile.TemporaryDirectory(prefix="mtlgit-eval-", dir=workdir) as tmp:
        root = Path(tmp)
        git.run(root, "init", "-q")
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


# Agent-task benchmark: task texts as agents receive them, labelled against a pool of memories
# (benchmarks/agent_tasks/README.md). Scored through the same Recaller that serves `mtlgit recall`.

SPLITS = ("dev", "test")
KINDS = ("plain", "traceback", "log", "code")
TASK_K = 3
TASK_DEPTH = 10


@dataclass(frozen=True)
class Task:
    id: str
    split: str
    style: str
    kind: str
    text: str
    labels: dict[str, int]
    where: str  # file:line, for messages


def load_tasks(source: Path) -> list[Task]:
    """Every task of ``source``: one JSONL file, or every ``*.jsonl`` directly inside a folder.

    :raises MtlgitError: naming the file and line of a malformed task, or a task id used twice.
    """
    files = sorted(source.glob("*.jsonl")) if source.is_dir() else [source]
    if not files:
        raise MtlgitError(f"{source}: no *.jsonl task file in this folder")
    tasks: list[Task] = []
    seen: dict[str, str] = {}
    for path in files:
        for number, row in _read_jsonl(path):
            task = _task(row, f"{path}:{number}")
            if task.id in seen:
                raise MtlgitError(f"{task.where}: the task id {task.id!r} is used again (first at {seen[task.id]})")
            seen[task.id] = task.where
            tasks.append(task)
    return tasks


def _task(row: Any, where: str) -> Task:
    def fail(message: str) -> MtlgitError:
        return MtlgitError(f"{where}: {message}")

    if not isinstance(row, dict):
        raise fail("a task line must be a JSON object with id, split, style, kind, task and labels")
    for key in ("id", "split", "style", "kind", "task"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise fail(f"'{key}' must be a non-empty string")
    if row["split"] not in SPLITS:
        raise fail(f"split {row['split']!r} must be one of {', '.join(SPLITS)}")
    if row["kind"] not in KINDS:
        raise fail(f"kind {row['kind']!r} must be one of {', '.join(KINDS)}")
    if "labels" not in row:
        raise fail("'labels' is missing: give memory id -> grade, or {} when no memory applies")
    labels = row["labels"]
    if not isinstance(labels, dict):
        raise fail("'labels' must be an object of memory id -> grade, e.g. {\"01M8...\": 2}; {} when none applies")
    for memory, grade in labels.items():
        if grade not in (1, 2) or isinstance(grade, bool):
            raise fail(f"the grade of {memory} is {grade!r}: use 2 (central) or 1 (useful)")
    return Task(row["id"], row["split"], row["style"], row["kind"], row["task"], dict(labels), where)


def copy_pool(pool: Path, target: Path) -> set[str]:
    """Copy the memory files of ``pool`` (keeping their sub-folders) into ``target``; the ids of the valid ones."""

    ids: set[str] = set()
    for path in sorted(pool.rglob("*.md")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        relative = path.relative_to(pool)
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_bytes(data)
        memory, _problems = parse_bytes(data, str(relative), abstraction=False)
        if memory is not None:
            ids.add(memory.id)
    return ids


@dataclass
class TaskRun:
    """What recall returned for one task: the ranking's top 3 and top 10 (no confidence bar), and the hits a
    default recall keeps (k=3 above the default bar)."""

    task: Task
    top: list[str]
    ranked: list[str]
    kept: list[str]

    def first_relevant(self) -> int | None:
        return next((i + 1 for i, memory in enumerate(self.ranked) if memory in self.task.labels), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.task.id,
            "style": self.task.style,
            "split": self.task.split,
            "labels": self.task.labels,
            "top3": self.top,
            "top10": self.ranked,
            "kept": self.kept,
            "first_relevant_rank": self.first_relevant(),
        }


def task_metrics(runs: Sequence[TaskRun]) -> dict[str, float | int | None]:
    """Ranking figures over the labelled tasks, abstention figures over both kinds; None where undefined.

    hit@3: a labelled memory in the ranking's top 3; central@3: a grade-2 one, over the tasks that have one;
    kept_hit@3: a labelled memory among the hits a default recall keeps; silent_unlabelled: tasks without labels
    that got no hit at all; kept_labelled: labelled tasks that got at least one hit.
    """
    labelled = [run for run in runs if run.task.labels]
    unlabelled = [run for run in runs if not run.task.labels]
    central = [run for run in labelled if 2 in run.task.labels.values()]

    def share(part: Sequence[TaskRun], test: Callable[[TaskRun], bool]) -> float | None:
        return sum(1 for run in part if test(run)) / len(part) if part else None

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    return {
        "tasks": len(runs),
        "labelled": len(labelled),
        "unlabelled": len(unlabelled),
        "hit@3": share(labelled, lambda r: any(m in r.task.labels for m in r.top)),
        "central@3": share(central, lambda r: any(r.task.labels.get(m) == 2 for m in r.top)),
        "ndcg@10": mean([ndcg_at(run.ranked, run.task.labels, TASK_DEPTH) for run in labelled]),
        "mrr@10": mean([mrr_at(run.ranked, run.task.labels, TASK_DEPTH) for run in labelled]),
        "kept_hit@3": share(labelled, lambda r: any(m in r.task.labels for m in r.kept)),
        "silent_unlabelled": share(unlabelled, lambda r: not r.kept),
        "kept_labelled": share(labelled, lambda r: bool(r.kept)),
    }


def evaluate_tasks(
    tasks: Sequence[Task],
    pool: Path,
    modes: Sequence[str] = MODES,
    model: str = "default",
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Recall every task from a temporary repository holding the memory files of ``pool``, in each mode.

    The repository has the default configuration (only the model can be changed), and each task is recalled
    twice through :class:`mtlgit.recall.Recaller`, as `mtlgit recall` does: with k=10 and no confidence bar for
    the ranking figures (hit@3, central@3, nDCG@10, MRR@10), and as configured by default (k=3, the default
    bar) for abstention and for hit@3 of what an agent would really receive.

    :raises MtlgitError: when a label names a memory that is not in the pool.
    """

    with tempfile.TemporaryDirectory(prefix="mtlgit-eval-tasks-", dir=workdir) as tmp:
        root = Path(tmp)
        git.run(root, "init", "-q")
        if model != "default":
            (root / ".mtlgit.yaml").write_text(f"model: {json.dumps(str(Path(model).resolve()))}\n", "utf-8")
        known = copy_pool(pool, root / "memories")
        for task in tasks:
            unknown = sorted(set(task.labels) - known)
            if unknown:
                raise MtlgitError(
                    f"{task.where}: label {unknown[0]} is not a memory of the pool {pool}: "
                    "fix the id, or evaluate against the pool it was labelled on (--pool)"
                )
        recaller = Recaller(root)
        unreadable = int(recaller.snapshot().manifest.get("problem_files", 0))
        results: dict[str, Any] = {
            "pool": str(pool),
            "pool_size": len(known),
            "unreadable_files": unreadable,
            "modes": {},
        }
        for mode in modes:
            runs = []
            for task in tasks:
                # quick: the pool does not change during the run, so stat-ing every file each time is waste.
                kept = recaller.recall(task.text, k=TASK_K, mode=mode, quick=True)
                deep = recaller.recall(task.text, k=TASK_DEPTH, mode=mode, quick=True, min_confidence=0.0)
                ids = [str(hit.memory["id"]) for hit in deep.hits]
                runs.append(TaskRun(task, ids[:TASK_K], ids, [str(hit.memory["id"]) for hit in kept.hits]))
            styles = sorted({run.task.style for run in runs})
            results["modes"][mode] = {
                "overall": task_metrics(runs),
                "styles": {style: task_metrics([r for r in runs if r.task.style == style]) for style in styles},
                "runs": [run.to_json() for run in runs],
            }
        return results
