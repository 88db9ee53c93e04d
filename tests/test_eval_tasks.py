"""`mtlgit eval --tasks`: agent tasks recalled from a memory pool, run as a real CLI subprocess."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_cli

DATA = ROOT / "tests" / "data" / "eval_tasks"
POOL = DATA / "pool"
TASKS = ROOT / "benchmarks" / "agent_tasks"
QUOTE, MAKE, PIN, UTC = (f"01JQ000000000000000000000{n}" for n in (1, 2, 3, 4))


def evaluate(cwd: Path, *args: str) -> dict[str, Any]:
    result = run_cli(cwd, "eval", "--json", *args)
    assert result.code == 0, result.output
    data: dict[str, Any] = json.loads(result.out)
    return data


def expected(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The figures recomputed from the hit lists, independently of mtlgit.evaluate."""
    labelled = [r for r in runs if r["labels"]]

    def ndcg(run: dict[str, Any]) -> float:
        gains = [run["labels"].get(m, 0) / math.log2(i + 2) for i, m in enumerate(run["top10"])]
        ideal = [g / math.log2(i + 2) for i, g in enumerate(sorted(run["labels"].values(), reverse=True))]
        return sum(gains) / sum(ideal)

    def mrr(run: dict[str, Any]) -> float:
        return next((1 / (i + 1) for i, m in enumerate(run["top10"]) if m in run["labels"]), 0.0)

    return {
        "hit@3": sum(any(m in r["labels"] for m in r["top3"]) for r in labelled) / len(labelled),
        "central@3": sum(any(r["labels"].get(m) == 2 for m in r["top3"]) for r in labelled) / len(labelled),
        "ndcg@10": sum(map(ndcg, labelled)) / len(labelled),
        "mrr@10": sum(map(mrr, labelled)) / len(labelled),
    }


def test_bm25_figures_follow_the_hits_recall_returns(tmp_path: Path) -> None:
    data = evaluate(tmp_path, "--tasks", str(DATA), "--pool", str(POOL), "--mode", "bm25")
    assert data["pool_size"] == 5 and list(data["modes"]) == ["bm25"]
    bm25 = data["modes"]["bm25"]
    runs = {run["id"]: run for run in bm25["runs"]}
    assert runs["t-001"]["top3"][0] == QUOTE
    assert runs["t-002"]["top3"][0] == MAKE
    assert runs["t-003"]["top3"][0] == UTC
    # No word of these tasks is in the pool, so BM25 recall returns nothing: the abstention figures see that.
    assert runs["t-005"]["top3"] == runs["t-006"]["top3"] == []
    assert runs["t-005"]["kept"] == runs["t-006"]["kept"] == []
    overall = bm25["overall"]
    assert (overall["tasks"], overall["labelled"], overall["unlabelled"]) == (6, 4, 2)
    labelled = [run for run in runs.values() if run["labels"]]
    assert overall["silent_unlabelled"] == 1.0
    assert math.isclose(overall["kept_labelled"], sum(bool(run["kept"]) for run in labelled) / len(labelled))
    for name, value in expected(list(runs.values())).items():
        assert math.isclose(overall[name], value), name
    assert set(bm25["styles"]) == {"none", "swe-bench", "ticket"}
    none = bm25["styles"]["none"]
    assert none["hit@3"] is None and none["ndcg@10"] is None and none["silent_unlabelled"] == 1.0
    ticket_runs = [run for run in runs.values() if run["style"] == "ticket"]
    assert math.isclose(bm25["styles"]["ticket"]["ndcg@10"], expected(ticket_runs)["ndcg@10"])


def test_text_table_has_a_row_per_mode_and_style(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "eval", "--tasks", str(DATA / "tasks.jsonl"), "--pool", str(POOL), "--split", "test")
    assert result.code == 0, result.output
    lines = result.out.splitlines()
    assert lines[0].startswith("3 tasks (2 labelled, 1 without a memory), split test; pool")
    assert lines[1].split() == [
        "mode",
        "scope",
        "n",
        "hit@3",
        "central@3",
        "nDCG@10",
        "MRR@10",
        "kept-hit@3",
        "none-silent",
        "labelled-kept",
    ]
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in lines[2:]}
    assert set(rows) == {(m, s) for m in ("hybrid", "bm25", "dense") for s in ("all", "none", "swe-bench", "ticket")}
    assert rows[("bm25", "none")] == ["1", "-", "-", "-", "-", "-", "1.000", "-"]
    assert rows[("bm25", "ticket")][:2] == ["1", "1.000"]
    for cells in rows.values():
        assert all(cell == "-" or 0 <= float(cell) <= 1 for cell in cells[1:])


def test_split_keeps_only_its_tasks(tmp_path: Path) -> None:
    data = evaluate(tmp_path, "--tasks", str(DATA), "--pool", str(POOL), "--mode", "bm25", "--split", "dev")
    assert sorted(run["id"] for run in data["modes"]["bm25"]["runs"]) == ["t-001", "t-002", "t-005"]


def write_tasks(folder: Path, *rows: Any) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "x.jsonl").write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in rows))
    return folder


def task(**changes: Any) -> dict[str, Any]:
    row = {"id": "x-1", "split": "dev", "style": "ticket", "kind": "plain", "task": "fix it", "labels": {QUOTE: 2}}
    return {**row, **changes}


BAD_FILES = [
    ((task(), "{not json\n"), "x.jsonl:2: not a JSON object"),
    ((task(split="train"),), "x.jsonl:1: split 'train' must be one of dev, test"),
    ((task(kind="prose"),), "x.jsonl:1: kind 'prose' must be one of"),
    ((task(task="  "),), "x.jsonl:1: 'task' must be a non-empty string"),
    ((task(labels={QUOTE: 3}),), "x.jsonl:1: the grade of"),
    ((task(labels=[QUOTE]),), "x.jsonl:1: 'labels' must be an object"),
    (({k: v for k, v in task().items() if k != "labels"},), "x.jsonl:1: 'labels' is missing"),
    ((task(), task()), "x.jsonl:2: the task id 'x-1' is used again (first at"),
    ((task(), task(id="x-2", labels={"01JQZZZZZZZZZZZZZZZZZZZZZZ": 1})), "x.jsonl:2: label 01JQZZZZZZZZZZZZZZZZZZZZZZ"),
]


@pytest.mark.parametrize(("rows", "message"), BAD_FILES)
def test_a_bad_task_file_gets_a_one_line_error_naming_file_and_line(
    tmp_path: Path, rows: tuple[Any, ...], message: str
) -> None:
    folder = write_tasks(tmp_path / "tasks", *rows)
    result = run_cli(tmp_path, "eval", "--tasks", str(folder), "--pool", str(POOL), "--mode", "bm25")
    assert result.code == 1, result.output
    assert message in result.err and "Traceback" not in result.output, result.err
    assert len(result.err.strip().splitlines()) == 1


def test_task_options_and_beir_options_do_not_mix(tmp_path: Path) -> None:
    empty = write_tasks(tmp_path / "empty")
    (empty / "x.jsonl").unlink()
    checks = [
        (("--tasks", str(DATA), "--limit", "3"), "--tasks does not take --limit"),
        (("--split", "dev", "--corpus", str(DATA / "tasks.jsonl")), "--split, --mode and --pool go with --tasks"),
        (("--tasks", str(empty)), "no *.jsonl task file in this folder"),
        (("--tasks", str(DATA), "--model", str(tmp_path / "nowhere")), "--model: "),
    ]
    for args, message in checks:
        result = run_cli(tmp_path, "eval", *args)
        assert result.code == 1 and message in result.err, result.output


@pytest.mark.slow
def test_benchmark_files_load_against_the_starter_pool(tmp_path: Path) -> None:
    """Every task file in benchmarks/agent_tasks and the regression labels only starter memories."""
    together = tmp_path / "all"
    together.mkdir()
    files = [*TASKS.glob("*.jsonl"), *(TASKS / "regression").glob("*.jsonl")]
    for path in files:
        shutil.copy(path, together)
    data = evaluate(tmp_path, "--tasks", str(together), "--mode", "bm25")
    overall = data["modes"]["bm25"]["overall"]
    assert data["pool_size"] == 59 and overall["tasks"] >= 89 + 43 and overall["labelled"] > 0


def test_cases43_is_the_tsv_converted(tmp_path: Path) -> None:
    copy = tmp_path / "agent_tasks" / "regression"
    copy.mkdir(parents=True)
    shutil.copy(TASKS / "regression" / "from_tsv.py", copy)
    (tmp_path / "agent_cases").mkdir()
    shutil.copy(ROOT / "benchmarks" / "agent_cases" / "cases.tsv", tmp_path / "agent_cases")
    subprocess.run([sys.executable, str(copy / "from_tsv.py")], check=True)
    assert (copy / "cases43.jsonl").read_text() == (TASKS / "regression" / "cases43.jsonl").read_text()
