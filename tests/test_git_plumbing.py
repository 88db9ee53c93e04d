"""mtlgit.git, the one module that runs git, and mtlgit.rules, the rules every layer shares."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtlgit import git as mtlgit_git
from mtlgit.errors import MtlgitError
from mtlgit.gitobjects import object_ids
from mtlgit.repo import find_repo
from tests.conftest import git, run_cli, write


def memory_text(memory_id: str, title: str) -> str:
    return f"---\nid: {memory_id}\ntitle: {title}\nformat: insight\ndescription: about {title}\n---\n{title}\n"


def _damage(repo: Path, object_id: str) -> None:
    """Overwrite a loose object with bytes that are not zlib: git finds the object and cannot read it."""
    path = repo / ".git" / "objects" / object_id[:2] / object_id[2:]
    path.chmod(0o644)
    path.write_bytes(b"not an object")


def test_a_damaged_object_in_object_ids_is_a_one_line_error(repo: Path) -> None:
    write(repo / "memories" / "gen" / "a.md", memory_text("M1", "a lesson about damaged trees"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    _damage(repo, git(repo, "rev-parse", "HEAD:memories/gen").strip())
    with pytest.raises(MtlgitError) as caught:
        object_ids(find_repo(repo), ["HEAD:memories/gen/a.md"])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("git cat-file failed: ")
    assert message.startswith("git cat-file failed: fatal: loose object ") and message.endswith(" is corrupt")


def test_a_damaged_object_in_a_memory_log_is_a_one_line_error(repo: Path) -> None:
    path = repo / "memories" / "gen" / "a.md"
    write(path, memory_text("M1", "a lesson about damaged trees"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    write(path, memory_text("M1", "a lesson about damaged trees, edited"))
    git(repo, "commit", "-qam", "two")
    _damage(repo, git(repo, "rev-parse", "HEAD~1:memories/gen").strip())
    result = run_cli(repo, "log", "M1")
    assert result.code == 1, result.output
    assert result.out == ""
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "git log failed: fatal: loose object " in result.err


def test_a_memory_log_before_the_first_commit_says_so(repo: Path) -> None:
    write(repo / "memories" / "a.md", memory_text("M1", "a lesson"))
    result = run_cli(repo, "log", "M1")
    assert result.code == 1 and "has no history yet: commit it first" in result.err, result.output


def test_a_failing_command_names_itself_and_keeps_all_of_git_words(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(mtlgit_git.GitError) as caught:
        mtlgit_git.run(tmp_path, "-c", "core.quotepath=off", "rev-parse", "--verify", "no-such-branch")
    assert str(caught.value) == "git rev-parse failed: fatal: Needed a single revision"
    assert caught.value.returncode == 128 and "Needed a single revision" in caught.value.stderr
    result = mtlgit_git.run(tmp_path, "rev-parse", "--verify", "no-such-branch", check=False)
    assert not result.ok and result.error == "fatal: Needed a single revision"


def test_bytes_in_and_out(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    data = b"caf\xe9 \x00 not utf-8\n"
    blob = mtlgit_git.run(tmp_path, "hash-object", "-w", "--stdin", input=data).text.strip()
    assert mtlgit_git.run(tmp_path, "cat-file", "blob", blob).stdout == data


def test_git_missing_or_slow_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(mtlgit_git.GitError, match=r"^git cat-file took more than 1e-06 s and was stopped$"):
        mtlgit_git.run(tmp_path, "cat-file", "--batch", input=b"", timeout=1e-6)
    with pytest.raises(mtlgit_git.GitError, match=r"^git status could not start in .*: No such file or directory$"):
        mtlgit_git.run(tmp_path / "gone", "status")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(mtlgit_git.GitError, match=r"^git is not installed or not on PATH: install git"):
        mtlgit_git.run(tmp_path, "status")


def test_a_memories_folder_with_a_hidden_name_reads_the_same_from_a_commit(repo: Path) -> None:
    """The rules of the working tree apply to a commit's tree: the folder's own name may start with a dot."""
    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("memories: memories", "memories: .mem"), "utf-8")
    write(repo / ".mem" / "a.md", memory_text("M1", "a lesson about hidden folders and quokkas"))
    write(repo / ".mem" / ".draft" / "b.md", memory_text("M2", "a hidden draft about quokkas"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    for extra in ((), ("--rev", "HEAD")):
        result = run_cli(repo, "recall", "quokkas", "--mode", "bm25", "--json", *extra)
        assert result.code == 0, result.output
        assert [hit["path"] for hit in json.loads(result.out)["results"]] == [".mem/a.md"], extra


def _mtlgit_imports(module: str) -> set[str]:
    """Every mtlgit module ``module`` imports, at its top or inside a function."""
    source = Path(__file__).resolve().parent.parent.joinpath(*module.split(".")).with_suffix(".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("mtlgit.")}


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("mtlgit.rules", "mtlgit."),  # the rules import nothing from mtlgit
        ("mtlgit.gitobjects", "mtlgit.store"),
        ("mtlgit.memory", "mtlgit.store"),
        ("mtlgit.hooks", "mtlgit.store"),
    ],
)
def test_a_layer_imports_nothing_above_it(module: str, forbidden: str) -> None:
    assert sorted(name for name in _mtlgit_imports(module) if name.startswith(forbidden)) == []


def test_recall_runs_no_git_and_loads_no_subprocess(repo: Path) -> None:
    """Finding the repository is done in Python: recall pays neither a git process nor the subprocess import."""
    write(repo / "memories" / "a.md", memory_text("M1", "a lesson about wombats"))
    assert run_cli(repo, "index").code == 0
    env = {**os.environ, "PATH": ""}  # no git to run: a spawn would fail
    command = [sys.executable, "-X", "importtime", "-m", "mtlgit", "recall", "wombats"]
    proc = subprocess.run(command, cwd=repo, capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "wombats" in proc.stdout, proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "mtlgit.recall" in imported and "subprocess" not in imported and "mtlgit.git" not in imported
