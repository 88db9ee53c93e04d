"""Shared fixtures: real git repositories in tmp_path, the CLI run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
TEST_DATA = ROOT / "tests" / "data"  # small excerpts of SHARED_DATA's sets that ship with the tests


def third_party_sets(name: str) -> list[object]:
    """Parameters for a test over a third-party set: the excerpt in tests/data, and the full set in
    ``../shared/data``, which only a development checkout has (skipped with a reason without it)."""
    full = SHARED_DATA / name
    skip = pytest.mark.skipif(not full.is_dir(), reason=f"the full set is not at {full} (a development checkout)")
    return [pytest.param(TEST_DATA / name, id="excerpt"), pytest.param(full, id="full", marks=skip)]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run the tests marked slow (left out by default)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the slow tests out unless asked for: ``--runslow`` adds them, ``-m slow`` runs only them."""
    if config.getoption("--runslow") or config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
        config.stash[_SLOW_LEFT_OUT] = len(slow)


_SLOW_LEFT_OUT = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    left_out = config.stash.get(_SLOW_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"{left_out} slow test(s) left out: --runslow runs them too, -m slow runs only them"
        )


@pytest.fixture(scope="session", autouse=True)
def _git_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Pin git's identity and keep the user's and the system's git configuration out of every test."""
    home = tmp_path_factory.mktemp("home")
    template = tmp_path_factory.mktemp("git-template")
    saved = dict(os.environ)
    os.environ.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_TEMPLATE_DIR": str(template),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Test Author",
            "GIT_AUTHOR_EMAIL": "author@example.com",
            "GIT_COMMITTER_NAME": "Test Committer",
            "GIT_COMMITTER_EMAIL": "committer@example.com",
            "EDITOR": "false",
            "VISUAL": "false",
        }
    )
    os.environ.pop("GIT_DIR", None)
    os.environ.pop("GIT_WORK_TREE", None)
    subprocess.run(["git", "config", "--global", "init.defaultBranch", "main"], check=True)
    yield
    os.environ.clear()
    os.environ.update(saved)
    _stop_watchers(tmp_path_factory.getbasetemp())


def _stop_watchers(base: Path) -> None:
    """Stop the memory-folder watchers that recalls on large pools started in this run's repositories (they
    would otherwise wait an hour for a question)."""
    from mtlgit import watch

    for pattern in ("*/*/.git/mtlgit", "*/*/*/.git/mtlgit", "*/*/*/*/.git/mtlgit"):
        for state in base.glob(pattern):
            if (state / watch.SOCKET).exists():
                watch.stop(state)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=120)
    return proc.stdout


def run_cli(cwd: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run ``mtlgit`` as a real subprocess of the interpreter running the tests."""
    proc = subprocess.run(
        [sys.executable, "-m", "mtlgit", *args],
        cwd=cwd,
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository with mtlgit initialised, recall's confidence bar off.

    The pools of these tests are a few made-up memories, nothing like the pools the bar was calibrated on, and
    they test how recall works, not whether a memory applies: they recall the top k (``min_confidence: 0``).
    tests/test_confidence.py tests the bar, with the default configuration and the starter pool.
    """
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    result = run_cli(path, "init")
    assert result.code == 0, result.output
    config = path / ".mtlgit.yaml"
    text = config.read_text(encoding="utf-8")
    assert "recall:\n" in text
    config.write_text(text.replace("recall:\n", "recall:\n  min_confidence: 0\n"), encoding="utf-8")
    return path


@pytest.fixture
def cli(repo: Path):  # type: ignore[no-untyped-def]
    """``cli("list", "--json")`` runs mtlgit in the test repository."""

    def call(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return run_cli(repo, *args, input=input, env=env)

    return call


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


VALID = """\
---
id: 01JDQ2V6R3J8Z6TT4M0S3W4K9B
title: Validate a fix with a self-contained here-doc test
description: Before calling a fix done, run a minimal inline test of the changed behaviour.
format: insight
scope: task-agnostic
domains: [swe-bench, python]
tags: [testing, verification]
outcome: success
source:
  task: django__django-16032
  agent: mini-swe-agent
  model: gpt-5-mini
  commit: 4f2c1a9
  paths: [django/db/models/sql/query.py]
created: 2026-11-25T14:03:11Z
status: active
superseded_by: null
---
Write a short battery of checks in an inline `python - <<'EOF'` block covering the normal case, an edge
case and the reported failure; run it before and after the change.
"""
