"""Real third-party files through the loader: every one is loaded or reported, none crashes or hangs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mtlgit.memory import parse_bytes
from tests.conftest import SHARED_DATA, git, run_cli, write

YAML_SUITE = SHARED_DATA / "yaml-test-suite" / "cases"
CURSOR_RULES = SHARED_DATA / "cursor-rules" / "rules"

needs_yaml_suite = pytest.mark.skipif(not YAML_SUITE.is_dir(), reason=f"third-party data not found at {YAML_SUITE}")
needs_cursor_rules = pytest.mark.skipif(
    not CURSOR_RULES.is_dir(), reason=f"third-party data not found at {CURSOR_RULES}"
)


HEADER = b"id: 01JDQ2V6R3J8Z6TT4M0S3W4K9B\ntitle: t\ndescription: d\nformat: insight\n"


def yaml_suite_memories(header: bytes = b"") -> list[tuple[str, bytes]]:
    """Each case's YAML (402 with sub-cases) as the front matter of a memory, after ``header``."""
    out = []
    for source in sorted(YAML_SUITE.rglob("in.yaml")):
        data = source.read_bytes()
        name = str(source.parent.relative_to(YAML_SUITE)).replace("/", "-")
        out.append((name, b"---\n" + header + data + (b"" if data.endswith(b"\n") else b"\n") + b"---\nBody.\n"))
    return out


def cursor_rule_files() -> list[Path]:
    return sorted(p for p in CURSOR_RULES.rglob("*") if p.is_file())


@needs_yaml_suite
@pytest.mark.parametrize("header", [b"", HEADER], ids=["bare", "after-required-keys"])
def test_every_yaml_suite_case_is_loaded_or_reported(header: bytes) -> None:
    cases = yaml_suite_memories(header)
    assert len(cases) == 402
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
        # A case that is a block mapping extends the required keys and loads; the others are reported.
        assert loaded > 50 and reported > 150
    else:
        assert loaded == 0  # no case carries an id and a title


@needs_cursor_rules
def test_every_cursor_rule_file_is_loaded_or_reported() -> None:
    files = cursor_rule_files()
    assert len(files) > 1000
    reported = 0
    for path in files:
        memory, problems = parse_bytes(path.read_bytes(), path.name)
        assert memory is not None or any(p.is_error for p in problems), path
        reported += memory is None
    # They are agent rules, not mtlgit memories: none carries an id, so each is reported, clearly.
    assert reported == len(files)


@needs_cursor_rules
def test_the_invalid_yaml_of_cursor_rules_names_the_line() -> None:
    path = CURSOR_RULES / "angular-novo-elements-cursorrules-prompt-file" / "angular-standalone-component-rules.mdc"
    _memory, problems = parse_bytes(path.read_bytes(), "rule.md")
    assert [(p.line, p.code) for p in problems] == [(3, "front-matter")]
    assert "not valid YAML" in problems[0].message


@pytest.mark.slow
@needs_yaml_suite
@needs_cursor_rules
def test_lint_survives_a_pool_of_all_third_party_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for name, data in yaml_suite_memories():
        write(repo / "memories" / "yaml" / f"{name}.md", data)
    for index, path in enumerate(cursor_rule_files()):
        target = repo / "memories" / "cursor" / f"{index:04d}-{path.stem}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    result = run_cli(repo, "lint", "--json")
    assert result.code == 1, result.err
    report = json.loads(result.out)
    assert report["files"] == len(yaml_suite_memories()) + len(cursor_rule_files())
    assert "Traceback" not in result.err
