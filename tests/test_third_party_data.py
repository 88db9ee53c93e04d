"""Real third-party files through the loader: every one is loaded or reported, none crashes or hangs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mtlgit.memory import parse_bytes
from tests.conftest import SHARED_DATA, TEST_DATA, git, run_cli, third_party_sets, write

YAML_SUITE = "yaml-test-suite"
CURSOR_RULES = "cursor-rules"
CASES = {"excerpt": 134, "full": 402}  # in.yaml files, sub-cases included (tests/data/README.md)


HEADER = b"id: 01JDQ2V6R3J8Z6TT4M0S3W4K9B\ntitle: t\ndescription: d\nformat: insight\n"


def yaml_suite_memories(suite: Path, header: bytes = b"") -> list[tuple[str, bytes]]:
    """Each case's YAML as the front matter of a memory, after ``header``."""
    cases = suite / "cases"
    out = []
    for source in sorted(cases.rglob("in.yaml")):
        data = source.read_bytes()
        name = str(source.parent.relative_to(cases)).replace("/", "-")
        out.append((name, b"---\n" + header + data + (b"" if data.endswith(b"\n") else b"\n") + b"---\nBody.\n"))
    return out


def cursor_rule_files(rules: Path) -> list[Path]:
    return sorted(p for p in (rules / "rules").rglob("*") if p.is_file())


@pytest.mark.parametrize("suite", third_party_sets(YAML_SUITE))
@pytest.mark.parametrize("header", [b"", HEADER], ids=["bare", "after-required-keys"])
def test_every_yaml_suite_case_is_loaded_or_reported(suite: Path, header: bytes) -> None:
    cases = yaml_suite_memories(suite, header)
    assert len(cases) == CASES["excerpt" if suite.is_relative_to(TEST_DATA) else "full"]
    loaded = reported = 0
    for name, data in cases:
        memory, problems = parse_bytes(data, f"{name}.md")
        if memory is None:
            assert any(p.is_error and p.message for p in problems), name
            reported += 1
        else:
            loaded += 1
    assert loaded + reported == len(cases)
    if header:
        # A case that is a block mapping extends the required keys and loads (2 in 5); the others are reported.
        assert loaded > len(cases) // 8 and reported > len(cases) * 3 // 8
    else:
        assert loaded == 0  # no case carries an id and a title


@pytest.mark.parametrize("rules", third_party_sets(CURSOR_RULES))
def test_every_cursor_rule_file_is_loaded_or_reported(rules: Path) -> None:
    files = cursor_rule_files(rules)
    assert len(files) > (40 if rules.is_relative_to(TEST_DATA) else 1000)
    reported = 0
    for path in files:
        memory, problems = parse_bytes(path.read_bytes(), path.name)
        assert memory is not None or any(p.is_error for p in problems), path
        reported += memory is None
    # They are agent rules, not mtlgit memories: none carries an id, so each is reported, clearly.
    assert reported == len(files)


def test_the_invalid_yaml_of_cursor_rules_names_the_line() -> None:
    folder = TEST_DATA / CURSOR_RULES / "rules" / "angular-novo-elements-cursorrules-prompt-file"
    _memory, problems = parse_bytes((folder / "angular-standalone-component-rules.mdc").read_bytes(), "rule.md")
    assert [(p.line, p.code) for p in problems] == [(3, "front-matter")]
    assert "not valid YAML" in problems[0].message


def test_lint_survives_a_pool_of_the_shipped_third_party_files(tmp_path: Path) -> None:
    check_lint_over(tmp_path, TEST_DATA)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"the full sets are not at {SHARED_DATA} (a development checkout)")
def test_lint_survives_a_pool_of_all_third_party_files(tmp_path: Path) -> None:
    check_lint_over(tmp_path, SHARED_DATA)


def check_lint_over(tmp_path: Path, data: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    cases = yaml_suite_memories(data / YAML_SUITE)
    for name, content in cases:
        write(repo / "memories" / "yaml" / f"{name}.md", content)
    rules = cursor_rule_files(data / CURSOR_RULES)
    for index, path in enumerate(rules):
        target = repo / "memories" / "cursor" / f"{index:04d}-{path.stem}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    result = run_cli(repo, "lint", "--json")
    assert result.code == 1, result.err
    report = json.loads(result.out)
    assert report["files"] == len(cases) + len(rules)
    assert "Traceback" not in result.err
