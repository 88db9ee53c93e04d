"""Git-native workflow with real git: hooks, commits, merges, rebases, checkouts, worktrees, clones, --rev."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtlgit.cache import BlobCache
from mtlgit.index import WorktreeIndex, open_current
from mtlgit.lock import file_lock
from mtlgit.repo import find_repo
from tests.conftest import VALID, git, run_cli, write

HOOKS = ("pre-commit", "post-commit", "post-merge", "post-checkout", "post-rewrite")


def add(repo: Path, title: str, content: str = "", domain: str = "python") -> dict[str, str]:
    result = run_cli(
        repo,
        "add",
        "-t",
        title,
        "-d",
        f"When {title.lower()}.",
        "-c",
        content or f"{title}: the lesson in one sentence.",
        "--domain",
        domain,
        "--json",
        "--force",  # similar titles on purpose: these tests are about git, not duplicates
    )
    assert result.code == 0, result.output
    return json.loads(result.out)  # type: ignore[no-any-return]


def commit(
    repo: Path, message: str, env: dict[str, str] | None = None, git_cmd: str = "git"
) -> subprocess.CompletedProcess[str]:
    subprocess.run([git_cmd, "add", "-A"], cwd=repo, check=True, env=env)
    return subprocess.run([git_cmd, "commit", "-qm", message], cwd=repo, capture_output=True, text=True, env=env)


def wait_for_index(repo: Path, predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Background refreshes finish on their own time: poll the live snapshot."""
    index_dir = Path(find_repo(repo).worktree_state_dir) / "index"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snapshot = open_current(index_dir)
        if snapshot is not None and predicate(snapshot):
            return
        time.sleep(0.1)
    log = find_repo(repo).state_dir / "hooks.log"
    raise AssertionError(f"index not refreshed in {timeout} s; hooks.log: {log.read_text() if log.exists() else ''}")


def wait_for_log(repo: Path, text: str, timeout: float = 60.0) -> None:
    log = find_repo(repo).state_dir / "hooks.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in hooks.log: {log.read_text() if log.exists() else '(no log)'}")


def titles_in(snapshot) -> set[str]:  # type: ignore[no-untyped-def]
    return {r["title"] for r in snapshot.records(range(snapshot.n_docs))}


def recall_titles(repo: Path, *args: str) -> list[str]:
    result = run_cli(repo, "recall", *args, "--json")
    assert result.code == 0, result.output
    return [r["title"] for r in json.loads(result.out)["results"]]


# --- hooks -----------------------------------------------------------------------------------------------


def test_install_status_reinstall_uninstall(repo: Path) -> None:
    installed = run_cli(repo, "hooks", "install")
    assert installed.code == 0, installed.output
    for hook in HOOKS:
        path = repo / ".git" / "hooks" / hook
        assert os.access(path, os.X_OK)
        assert path.read_text().splitlines()[1].startswith("# mtlgit-hook v3")
        assert f"INSTALL_PYTHON='{sys.executable}'" in path.read_text()
    status = json.loads(run_cli(repo, "hooks", "status", "--json").out)
    assert [s["state"] for s in status] == ["installed"] * 5
    again = run_cli(repo, "hooks", "install")
    assert again.out.count("already installed") == 5
    removed = run_cli(repo, "hooks", "uninstall")
    assert removed.code == 0 and removed.out.count("removed") == 5
    assert not any((repo / ".git" / "hooks" / hook).exists() for hook in HOOKS)


def test_an_older_mtlgit_hook_is_upgraded_in_place(repo: Path) -> None:
    old = write(repo / ".git" / "hooks" / "pre-commit", "#!/bin/sh\n# mtlgit-hook v0 (an early script)\nexit 0\n")
    old.chmod(0o755)
    result = run_cli(repo, "hooks", "install")
    assert "pre-commit: upgraded" in result.out
    assert not (repo / ".git" / "hooks" / "pre-commit.legacy").exists()
    assert "mtlgit-hook v3" in old.read_text()


def test_a_foreign_hook_keeps_running_and_its_exit_code_counts(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "foreign-ran"
    foreign = write(repo / ".git" / "hooks" / "pre-commit", f'#!/bin/sh\necho ran >> {marker}\nexit "${{FAIL:-0}}"\n')
    foreign.chmod(0o755)
    original = foreign.read_text()
    assert "kept as pre-commit.legacy" in run_cli(repo, "hooks", "install").out
    add(repo, "Keep commits small")
    assert commit(repo, "one").returncode == 0
    assert marker.read_text() == "ran\n"
    add(repo, "Another lesson")
    blocked = commit(repo, "two", env={**os.environ, "FAIL": "3"})
    assert blocked.returncode != 0
    assert marker.read_text() == "ran\nran\n"
    assert "Another lesson" not in git(repo, "log", "--format=%s")
    assert run_cli(repo, "hooks", "uninstall").code == 0
    assert (repo / ".git" / "hooks" / "pre-commit").read_text() == original
    assert not (repo / ".git" / "hooks" / "pre-commit.legacy").exists()


def test_core_hooks_path_is_refused_with_a_hint(repo: Path) -> None:
    git(repo, "config", "core.hooksPath", ".husky")
    result = run_cli(repo, "hooks", "install")
    assert result.code == 1
    assert "core.hooksPath is set to '.husky'" in result.err and "mtlgit hook-run" in result.err
    assert not (repo / ".husky").exists()


def test_pre_commit_blocks_bad_memories_and_names_the_file(repo: Path) -> None:
    assert run_cli(repo, "hooks", "install").code == 0
    add(repo, "Read the error message to the end")
    assert commit(repo, "good").returncode == 0
    write(repo / "memories" / "bad.md", VALID.replace("format: insight", "format: poem"))
    blocked = commit(repo, "bad")
    assert blocked.returncode == 1
    assert "memories/bad.md:5: error: 'format' is 'poem'" in blocked.stderr
    assert "commit blocked" in blocked.stderr
    # Only what is staged counts: fixing the file without staging it still blocks.
    (repo / "memories" / "bad.md").write_text(VALID)
    assert subprocess.run(["git", "commit", "-qm", "bad"], cwd=repo, capture_output=True).returncode == 1
    assert commit(repo, "fixed").returncode == 0
    # A copy keeps its id: the duplicate is blocked.
    shutil.copy(repo / "memories" / "bad.md", repo / "memories" / "copy.md")
    duplicate = commit(repo, "copy")
    assert duplicate.returncode == 1 and "also the id of memories/bad.md" in duplicate.stderr


def test_hooks_work_with_path_stripped(repo: Path) -> None:
    assert run_cli(repo, "hooks", "install").code == 0
    write(repo / "memories" / "bad.md", "---\ntitle: [\n---\n")
    env = {**os.environ, "PATH": "/nonexistent"}
    git_bin = shutil.which("git")
    assert git_bin is not None
    blocked = commit(repo, "bad", env=env, git_cmd=git_bin)
    assert blocked.returncode == 1, blocked.stderr
    assert "memories/bad.md:2: error: front matter is not valid YAML" in blocked.stderr


def test_post_commit_refreshes_the_index_in_the_background(repo: Path) -> None:
    assert run_cli(repo, "hooks", "install").code == 0
    add(repo, "Measure before optimising")
    index = WorktreeIndex(find_repo(repo))
    before = index.current()
    git(repo, "add", "-A")
    # With the index lock held here, the refresh cannot finish (it waits up to 300 s for the lock): the commit
    # returns all the same, so git did not wait for it. A timer would show that only on an idle machine.
    with file_lock(index.lock_path):
        git(repo, "commit", "-qm", "first")  # fails the test by its timeout if the hook waits for the refresh
        after = index.current()
        assert (after and after.folder) == (before and before.folder)
    wait_for_index(repo, lambda s: "Measure before optimising" in titles_in(s))
    wait_for_log(repo, "post-commit: index of 1 memories fresh")


@pytest.mark.slow
def test_checkout_merge_and_rebase_refresh_the_index(repo: Path) -> None:
    assert run_cli(repo, "hooks", "install").code == 0
    add(repo, "Base lesson")
    assert commit(repo, "base").returncode == 0
    git(repo, "checkout", "-qb", "feature")
    add(repo, "Feature lesson")
    assert commit(repo, "feature").returncode == 0
    git(repo, "checkout", "-q", "main")
    wait_for_index(repo, lambda s: titles_in(s) == {"Base lesson"})
    add(repo, "Main lesson")
    assert commit(repo, "main").returncode == 0
    git(repo, "merge", "-q", "--no-edit", "feature")
    wait_for_index(repo, lambda s: titles_in(s) == {"Base lesson", "Feature lesson", "Main lesson"})
    assert sorted(recall_titles(repo, "lesson", "-k", "5")) == ["Base lesson", "Feature lesson", "Main lesson"]
    git(repo, "checkout", "-qb", "topic", "HEAD~1")
    add(repo, "Topic lesson")
    assert commit(repo, "topic").returncode == 0
    git(repo, "rebase", "-q", "main")
    wait_for_index(repo, lambda s: "Topic lesson" in titles_in(s) and "Feature lesson" in titles_in(s))
    wait_for_log(repo, "post-rewrite: index of 4 memories fresh")


def test_worktrees_share_the_hooks(repo: Path) -> None:
    assert run_cli(repo, "hooks", "install").code == 0
    add(repo, "Shared lesson")
    assert commit(repo, "base").returncode == 0
    other = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", str(other), "-b", "wt")
    write(other / "memories" / "bad.md", "---\nid: [\n---\n")
    assert commit(other, "bad").returncode == 1


@pytest.mark.slow
def test_the_pre_commit_framework_runs_mtlgit_lint(repo: Path, tmp_path: Path) -> None:
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if pre_commit is None:
        pytest.skip("the pre-commit package is not installed")
    project = Path(__file__).resolve().parent.parent
    hook_repo = tmp_path / "hook-repo"
    subprocess.run(["git", "clone", "-q", str(project), str(hook_repo)], check=True)
    if not (hook_repo / ".pre-commit-hooks.yaml").exists():
        pytest.skip("the project's .pre-commit-hooks.yaml is not committed yet")
    write(repo / "memories" / "bad.md", VALID.replace("format: insight", "format: poem"))
    git(repo, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    result = subprocess.run(
        [pre_commit, "try-repo", str(hook_repo), "mtlgit-lint", "--files", "memories/bad.md"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "memories/bad.md:5: error: 'format' is 'poem'" in result.stdout


# --- reproducible and reviewed recall ----------------------------------------------------------------------


def test_recall_at_a_revision_reads_git_not_the_working_tree(repo: Path) -> None:
    old = add(repo, "Old lesson about flaky tests", "Rerun a flaky test many times to measure how flaky it is.")
    assert commit(repo, "v1").returncode == 0
    git(repo, "tag", "v1")
    (repo / old["path"]).unlink()
    add(repo, "New lesson about flaky tests", "Quarantine a flaky test and file an issue.")
    assert commit(repo, "v2").returncode == 0
    add(repo, "Uncommitted lesson about flaky tests")
    assert recall_titles(repo, "flaky tests", "--rev", "v1") == ["Old lesson about flaky tests"]
    assert recall_titles(repo, "flaky tests", "--rev", "HEAD") == ["New lesson about flaky tests"]
    assert set(recall_titles(repo, "flaky tests")) == {
        "New lesson about flaky tests",
        "Uncommitted lesson about flaky tests",
    }
    cache = BlobCache(find_repo(repo).state_dir / "cache.sqlite")
    vectors = cache.count("vectors")
    cache.close()
    assert recall_titles(repo, "flaky tests", "--rev", "v1") == ["Old lesson about flaky tests"]
    cache = BlobCache(find_repo(repo).state_dir / "cache.sqlite")
    assert cache.count("vectors") == vectors
    cache.close()
    bad = run_cli(repo, "recall", "x", "--rev", "--upload-pack=touch /tmp/pwned")
    assert bad.code == 1 and "is not a commit of this repository" in bad.err


def test_reviewed_recall_keeps_only_what_is_on_the_reviewed_branch(repo: Path, tmp_path: Path) -> None:
    reviewed = add(repo, "Reviewed lesson on migrations", "Write a reversible migration and test the rollback.")
    assert commit(repo, "reviewed").returncode == 0
    missing = run_cli(repo, "recall", "migration", "--reviewed")
    assert missing.code == 1 and "the reviewed ref 'origin/main' does not exist" in missing.err
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    add(repo, "Unreviewed lesson on migrations", "Squash migrations before release.")
    path = repo / reviewed["path"]
    assert recall_titles(repo, "migration", "--reviewed") == ["Reviewed lesson on migrations"]
    path.write_text(path.read_text().replace("reversible", "REVERSIBLE"))
    assert recall_titles(repo, "migration", "--reviewed") == []
    assert len(recall_titles(repo, "migration")) == 2


def test_a_shallow_clone_recalls(repo: Path, tmp_path: Path) -> None:
    add(repo, "First lesson")
    assert commit(repo, "one").returncode == 0
    add(repo, "Second lesson")
    assert commit(repo, "two").returncode == 0
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    assert sorted(recall_titles(clone, "lesson", "-k", "5")) == ["First lesson", "Second lesson"]
    assert sorted(recall_titles(clone, "lesson", "-k", "5", "--rev", "HEAD")) == ["First lesson", "Second lesson"]
    old = run_cli(clone, "recall", "lesson", "--rev", "HEAD~1")
    assert old.code == 1 and "is not a commit of this repository" in old.err


def test_branches_that_each_add_memories_merge_cleanly(repo: Path) -> None:
    add(repo, "Base")
    assert commit(repo, "base").returncode == 0
    git(repo, "checkout", "-qb", "a")
    add(repo, "From branch a")
    assert commit(repo, "a").returncode == 0
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-qb", "b")
    add(repo, "From branch b")
    assert commit(repo, "b").returncode == 0
    git(repo, "merge", "-q", "--no-edit", "a")
    assert run_cli(repo, "lint").code == 0
    assert sorted(recall_titles(repo, "branch", "-k", "5")) == ["Base", "From branch a", "From branch b"]


def test_a_conflicted_memory_is_reported_and_skipped(repo: Path) -> None:
    memory = add(repo, "Shared lesson", "Original wording.")
    assert commit(repo, "base").returncode == 0
    path = repo / memory["path"]
    git(repo, "checkout", "-qb", "a")
    path.write_text(path.read_text().replace("Original wording.", "Wording from a."))
    assert commit(repo, "a").returncode == 0
    git(repo, "checkout", "-q", "main")
    path.write_text(path.read_text().replace("Original wording.", "Wording from main."))
    assert commit(repo, "main").returncode == 0
    merged = subprocess.run(["git", "merge", "-q", "a"], cwd=repo, capture_output=True, text=True)
    assert merged.returncode != 0
    lint = run_cli(repo, "lint")
    assert lint.code == 1 and f"{memory['path']}:" in lint.out and "merge conflict" in lint.out
    assert recall_titles(repo, "lesson") == []


# --- review, log, staleness ------------------------------------------------------------------------------


def test_review_reports_a_branch_for_a_pull_request(repo: Path) -> None:
    base = add(repo, "Reproduce the failure before changing code", "Run the reported steps and see them fail.")
    retiring = add(repo, "Prefer print debugging over guessing", "Print the values where the bug shows.")
    assert commit(repo, "base").returncode == 0
    git(repo, "checkout", "-qb", "feature")
    add(
        repo,
        "Patch line 1203 of query.py",
        "In django/db/models/sql/query.py line 1203 reset alias_refcount (commit 4f2c1a9, django__django-16032).",
    )
    add(repo, "Reproduce the failure before changing any code", "Run the reported steps and see them fail first.")
    assert run_cli(repo, "retire", retiring["id"]).code == 0
    write(repo / "memories" / "broken.md", "---\ntitle: no id\n---\nbody\n")
    assert commit(repo, "feature").returncode == 0
    result = run_cli(repo, "review", "main..feature")
    assert result.code == 0, result.output
    report = result.out
    assert report.startswith("## mtlgit review: 3 added, 1 retired")
    assert "- **Patch line 1203 of query.py** (insight · python)" in report
    assert "reads as task-specific" in report
    assert f'**near-duplicate** of "{base["title"]}"' in report
    assert "### Retired\n\n- **Prefer print debugging over guessing**" in report
    assert "❌ line 1: missing required field 'id'" in report
    assert "**1 error(s)**" in report or "error(s)**" in report
    assert run_cli(repo, "review", "main..feature", "--check").code == 1
    data = json.loads(run_cli(repo, "review", "main...feature", "--json").out)
    assert {c["kind"] for c in data["changes"]} == {"added", "retired"}
    clean = run_cli(repo, "review", "main..main", "--check")
    assert clean.code == 0 and "no memory changes" in clean.out


def test_review_without_a_range_needs_the_reviewed_ref(repo: Path) -> None:
    add(repo, "A lesson")
    assert commit(repo, "one").returncode == 0
    result = run_cli(repo, "review")
    assert result.code == 1 and "give one, e.g. `mtlgit review main..HEAD`" in result.err


def test_log_follows_a_memory_across_renames_and_retirement(repo: Path) -> None:
    memory = add(repo, "Keep the diff small")
    assert commit(repo, "add it").returncode == 0
    target = repo / "memories" / "moved" / "keep-the-diff-small.md"
    target.parent.mkdir()
    (repo / memory["path"]).rename(target)
    assert commit(repo, "move it").returncode == 0
    assert run_cli(repo, "retire", memory["id"]).code == 0
    assert commit(repo, "retire it").returncode == 0
    history = json.loads(run_cli(repo, "log", memory["id"][:12], "--json").out)
    assert history["id"] == memory["id"]
    assert [(e["subject"], e["change"], e["status"]) for e in history["history"]] == [
        ("retire it", "retired", "retired"),
        ("move it", f"renamed from {memory['path']}", "active"),
        ("add it", "added", "active"),
    ]
    target.unlink()
    assert commit(repo, "delete it").returncode == 0
    gone = json.loads(run_cli(repo, "log", memory["id"], "--json").out)
    assert gone["history"][0]["change"] == "deleted"


def test_a_memory_about_changed_code_is_flagged_possibly_stale(repo: Path) -> None:
    write(repo / "src" / "parser.py", "def parse(text):\n    return text.split()\n")
    assert commit(repo, "code").returncode == 0
    learned_at = git(repo, "rev-parse", "HEAD").strip()
    result = run_cli(
        repo,
        "add",
        "-t",
        "The parser splits on whitespace",
        "-d",
        "When parsing input.",
        "-c",
        "Tokens are separated by any whitespace.",
        "--source-commit",
        learned_at,
        "--source-path",
        "src/parser.py",
        "--json",
    )
    assert result.code == 0, result.output
    assert commit(repo, "memory").returncode == 0
    fresh = json.loads(run_cli(repo, "recall", "parser whitespace", "--json").out)["results"][0]
    assert fresh["notes"] == []
    write(repo / "src" / "parser.py", "def parse(text):\n    return text.split(',')\n")
    assert commit(repo, "change the parser").returncode == 0
    stale = json.loads(run_cli(repo, "recall", "parser whitespace", "--json").out)["results"][0]
    assert stale["notes"] == [f"possibly stale: src/parser.py changed since {learned_at[:10]}"]
    assert "! possibly stale: src/parser.py" in run_cli(repo, "recall", "parser whitespace").out
    assert "possibly stale: src/parser.py" in run_cli(repo, "recall", "parser whitespace", "--prompt").out
    lint = run_cli(repo, "lint")
    assert lint.code == 0 and "warning: possibly stale: src/parser.py" in lint.out


def test_the_example_ci_workflow_runs_real_review_commands(repo: Path, tmp_path: Path) -> None:
    import re

    import yaml

    workflow = yaml.safe_load((Path(__file__).resolve().parent.parent / "docs" / "review-workflow.yml").read_text())
    steps = workflow["jobs"]["review"]["steps"]
    commands = [step["run"] for step in steps if "mtlgit review" in step.get("run", "")]
    assert len(commands) == 2
    add(repo, "Base lesson on retries")
    assert commit(repo, "base").returncode == 0
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    git(repo, "fetch", "-q", "origin")
    git(repo, "checkout", "-qb", "feature")
    write(repo / "memories" / "broken.md", "---\ntitle: no id\n---\nbody\n")
    assert commit(repo, "feature").returncode == 0
    for command in commands:
        args = re.sub(r"\$\{\{ github.base_ref \}\}", "main", command).split(">")[0].split()
        result = run_cli(repo, *[a.strip('"') for a in args[1:]])
        if "--check" in args:
            assert result.code == 1
        else:
            assert result.code == 0 and "## mtlgit review: 1 added" in result.out
