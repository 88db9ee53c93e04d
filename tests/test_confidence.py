"""Confidence and abstention: recall says when nothing applies, and explains why a memory came up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import git, run_cli, write

from mtlgit.analysis import analyze, words
from mtlgit.confidence import confidence
from mtlgit.query import prepare


@pytest.fixture(scope="module")
def starter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with the starter pool, indexed once for the module."""
    path = tmp_path_factory.mktemp("starter") / "repo"
    path.mkdir()
    git(path, "init", "-q")
    assert run_cli(path, "init", "--starter").code == 0
    assert run_cli(path, "index").code == 0
    return path


def recall_json(repo: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = run_cli(repo, "recall", "--json", *args)
    assert result.code == 0, result.output
    data: dict = json.loads(result.out)  # type: ignore[type-arg]
    return data


@pytest.mark.parametrize(
    "task",
    [
        "Write a haiku about the first snow of winter.",
        "Translate these release notes into French: 'Version 2.3 adds dark mode and fixes the login page.'",
        "What is the capital of Australia?",
    ],
)
def test_a_task_no_memory_fits_gets_nothing_back(starter: Path, task: str) -> None:
    data = recall_json(starter, task)
    assert data["results"] == []
    assert "confidence bar" in data["reason"]


def test_a_task_a_memory_fits_keeps_a_hit_with_its_confidence(starter: Path) -> None:
    data = recall_json(starter, "make fails: Makefile:14: *** missing separator. Stop. The recipe lines were indented")
    assert data["results"], data
    for hit in data["results"]:
        assert data["min_confidence"] <= hit["confidence"] <= 1


def test_min_confidence_zero_keeps_k_and_one_keeps_none(starter: Path) -> None:
    task = "Write a haiku about the first snow of winter."
    assert len(recall_json(starter, "--min-confidence", "0", task)["results"]) == 3
    assert recall_json(starter, "--min-confidence", "1", "-k", "5", "fix the failing test")["results"] == []


def test_the_configured_bar_is_used_and_checked(starter: Path) -> None:
    config = starter / ".mtlgit.yaml"
    saved = config.read_text(encoding="utf-8")
    assert "recall:\n" in saved
    try:
        write(config, saved.replace("recall:\n", "recall:\n  min_confidence: 0\n"))
        data = recall_json(starter, "Write a haiku about the first snow of winter.")
        assert data["min_confidence"] == 0 and len(data["results"]) == 3
        write(config, saved.replace("recall:\n", "recall:\n  min_confidence: 7\n"))
        result = run_cli(starter, "recall", "anything at all")
        assert result.code == 1 and ".mtlgit.yaml:" in result.err and "min_confidence" in result.err
    finally:
        write(config, saved)


@pytest.mark.parametrize("query", ["!!!", "the a of", "--- ... ???"])
def test_a_query_without_content_words_matches_nothing(starter: Path, query: str) -> None:
    data = recall_json(starter, "--min-confidence", "0", "--", query)
    assert data["results"] == [] and "no content words" in data["reason"]


def test_prompt_prints_nothing_and_says_why_on_stderr(starter: Path) -> None:
    result = run_cli(starter, "recall", "--prompt", "Write a haiku about the first snow of winter.")
    assert result.code == 0
    assert result.out == ""
    assert "nothing recalled" in result.err


def test_explain_shows_terms_cosine_fused_score_and_confidence(starter: Path) -> None:
    task = "make fails: Makefile:14: *** missing separator. Stop."
    text = run_cli(starter, "recall", "--explain", "--min-confidence", "0", task)
    assert text.code == 0, text.output
    assert text.out.count("why: confidence") == 3
    data = recall_json(starter, "--explain", "--min-confidence", "0", task)
    for hit in data["results"]:
        why = hit["explain"]
        assert set(why) == {"terms", "bm25", "cosine", "fused", "prior", "confidence"}
        assert why["terms"] == {} or abs(sum(why["terms"].values()) - 1) < 0.01
        assert all(word in words(prepare(task).lexical) for word in why["terms"])  # the words, not their stems
    prompt = run_cli(starter, "recall", "--prompt", "--explain", "--min-confidence", "0", task)
    assert "# Memory Item 1" in prompt.out and "why: confidence" in prompt.err


def test_confidence_grows_with_each_raw_score() -> None:
    low = confidence(np.array([0.0]), np.array([0.1]), 59, "hybrid")[0]
    more_terms = confidence(np.array([5.0]), np.array([0.1]), 59, "hybrid")[0]
    closer = confidence(np.array([0.0]), np.array([0.6]), 59, "hybrid")[0]
    assert 0 < low < more_terms < 1 and low < closer < 1


def test_traceback_frames_and_noise_do_not_reach_the_query() -> None:
    task = """Upgrading broke the export.

Traceback (most recent call last):
  File "/usr/lib/python3.11/site-packages/acme/export.py", line 88, in write_rows
    writer.writerow(row)
  File "/usr/lib/python3.11/site-packages/acme/io.py", line 12, in writerow
    return self._w.writerow(encode(row))
UnicodeEncodeError: 'ascii' codec can't encode character '\\xe9' in position 3
at 2026-11-30T10:41:22Z, object 0x7f3a2c1d, commit 4f2c1a9e
"""
    terms = analyze(prepare(task).lexical)
    assert {"usr", "lib", "site", "packag", "writerow", "7f3a2c1d", "4f2c1a9e"}.isdisjoint(terms)
    assert "unicodeencodeerror" in terms and "ascii" in terms
    assert "upgrad" in terms and "export" in terms


def test_compounds_keep_a_joined_term() -> None:
    assert "readon" in analyze("mount it read-only")
    assert "offbyon" in analyze("an off-by-one error")


@pytest.mark.parametrize(
    "text",
    [
        "x" * 100_000,
        "deadbeef1" * 10_000,
        "a/" * 50_000,
        "at " + "a:1" * 30_000,
        "  at " + "x" * 100_000 + "(",
        "a-" * 50_000,
    ],
    ids=["one-word", "hex", "slashes", "frame-like", "open-paren", "hyphens"],
)
def test_preparing_a_crafted_query_takes_linear_time(text: str) -> None:
    import time

    start = time.perf_counter()
    analyze(prepare(text).lexical)
    assert time.perf_counter() - start < 2.0  # the first took 37 s before the path and compound patterns were anchored


def test_the_bar_applies_before_the_top_k_is_taken(starter: Path) -> None:
    task = "Our nightly cron job cannot find pg_dump: command not found, although it works in my shell"
    ranked = recall_json(starter, "--min-confidence", "0", "-k", "10", task)["results"]
    bar = sorted(hit["confidence"] for hit in ranked)[-2]  # the two most confident memories clear it
    one = recall_json(starter, "--min-confidence", str(bar), "-k", "1", task)["results"]
    two = recall_json(starter, "--min-confidence", str(bar), "-k", "2", task)["results"]
    assert len(one) == 1 and len(two) == 2 and one[0]["id"] == two[0]["id"]
    assert all(hit["confidence"] >= bar for hit in two)


@pytest.mark.parametrize("value", ["nan", "inf", "-0.1", "1.5"])
def test_a_bar_that_is_not_a_number_from_0_to_1_is_refused(starter: Path, value: str) -> None:
    result = run_cli(starter, "recall", "--min-confidence", value, "fix the failing test")
    assert result.code == 2 and "--min-confidence" in result.err


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("the app hangs at startup (crashes on macOS)", {"startup", "crash", "maco"}),
        ("grant read/write/execute permissions over TCP/IP", {"read", "write", "execut", "tcp", "ip"}),
    ],
)
def test_words_that_only_look_like_frames_or_paths_are_kept(text: str, kept: set[str]) -> None:
    assert kept <= set(analyze(prepare(text).lexical))


def test_recall_at_a_revision_uses_that_revisions_configuration(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    assert run_cli(repo, "init", "--starter").code == 0
    config = repo / ".mtlgit.yaml"
    text = config.read_text(encoding="utf-8")
    write(config, text.replace("recall:\n", "recall:\n  min_confidence: 0\n"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "bar off")
    write(config, text.replace("recall:\n", "recall:\n  min_confidence: 1\n"))
    git(repo, "commit", "-qam", "bar at 1")
    task = "Write a haiku about the first snow of winter."
    assert len(recall_json(repo, "--rev", "HEAD~1", task)["results"]) == 3
    assert recall_json(repo, "--rev", "HEAD", task)["results"] == []  # the same tree, another configuration


def test_a_long_lived_recaller_survives_a_rebuild_in_another_process(starter: Path) -> None:
    from mtlgit.recall import Recaller

    recaller = Recaller(starter)
    first = recaller.recall("fix the failing test", min_confidence=0.0)
    assert run_cli(starter, "index", "--rebuild").code == 0
    again = recaller.recall("fix the failing test", min_confidence=0.0)
    assert [hit.memory["id"] for hit in again.hits] == [hit.memory["id"] for hit in first.hits]
    assert recaller.recall("fix the failing test", min_confidence=0.0, quick=True).hits
