"""Lint's ``no-when`` warning: a memory that does not say when it applies, in words a task would use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtlgit.applicability import CODE, MIN_NEW_TERMS, when_problems
from mtlgit.memory import parse_bytes
from mtlgit.resources import starter_dir
from tests.conftest import VALID, write

TITLE = "Match the file's existing indentation"
CONCRETE = (
    "When an edit breaks on whitespace: Python `IndentationError` or `TabError`, a Makefile 'missing separator', "
    "YAML that will not parse, a diff full of `^M` or whole-file changes."
)


def with_description(description: str | None, fmt: str = "insight") -> str:
    text = VALID.replace("title: Validate a fix with a self-contained here-doc test", f"title: {TITLE}")
    line = "description: Before calling a fix done, run a minimal inline test of the changed behaviour.\n"
    text = text.replace(line, "" if description is None else f"description: {json.dumps(description)}\n")
    if fmt == "workflow":
        text = text.replace("format: insight", "format: workflow\ngoal: ship it").replace("Write a short", "1. Write")
    return text


def codes(text: str) -> list[tuple[int, str]]:
    memory, problems = parse_bytes(text.encode(), "m.md")
    assert memory is not None, problems
    return [(p.line, p.code) for p in problems]


def test_a_description_naming_situations_passes() -> None:
    assert when_problems("insight", TITLE, CONCRETE) == []
    assert codes(with_description(CONCRETE)) == []


@pytest.mark.parametrize(
    ("description", "words"),
    [
        ("Use judgement about whitespace and line endings.", "does not say when"),  # no situation word
        ("When it applies.", "situation term(s) the title lacks"),
        ("When matching the existing indentation of a file.", "situation term(s) the title lacks"),  # the title again
    ],
)
def test_a_description_that_does_not_say_when_warns(description: str, words: str) -> None:
    problems = when_problems("insight", TITLE, description)
    assert len(problems) == 1 and problems[0][0] == "description" and words in problems[0][1]
    assert "error and exception names" in problems[0][1]  # the message says how to fix it
    assert codes(with_description(description)) == [(4, CODE)]  # the description's line, a warning only


def test_the_threshold_counts_index_terms_not_words() -> None:
    # Stop words and inflections of the title's words add nothing a task could match.
    padded = "When the files of the files were being indented, it is the indentation that is existing."
    assert when_problems("insight", TITLE, padded) != []
    enough = "When " + " ".join(["pytest", "TabError", "Makefile", "YAML", "CRLF", "gofmt"][:MIN_NEW_TERMS]) + "."
    assert when_problems("insight", TITLE, enough) == []


def test_a_workflow_without_description_warns_on_its_title_line() -> None:
    assert codes(with_description(None, "workflow")) == [(3, CODE)]
    assert codes(with_description(CONCRETE, "workflow")) == []


def test_summaries_and_trajectories_are_left_alone() -> None:
    assert when_problems("summary", TITLE, "") == []
    assert when_problems("trajectory", TITLE, "x") == []


def test_lint_strict_fails_on_it_and_the_starter_pool_passes(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    write(repo / "memories" / "vague.md", with_description("When relevant."))
    report = json.loads(cli("lint", "--json").out)
    assert [(p["path"], p["code"], p["severity"]) for p in report["problems"]] == [
        ("memories/vague.md", CODE, "warning")
    ]
    assert cli("lint").code == 0 and cli("lint", "--strict").code == 1
    for path in sorted(starter_dir().rglob("*.md")):
        memory, problems = parse_bytes(path.read_bytes(), path.name)
        assert memory is not None and not [p for p in problems if p.code == CODE], (path.name, problems)
