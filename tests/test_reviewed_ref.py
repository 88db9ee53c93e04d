"""reviewed_ref's default, asked of git: a remote not named origin, refs only git can read, and no git process
for a plain recall."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtlgit.config import _common_dir, default_reviewed_ref
from tests.conftest import git, run_cli
from tests.test_cli_everyday import add


def remote_with_memory(tmp_path: Path, branch: str = "master") -> Path:
    """A bare remote whose default branch is ``branch``, holding one memory."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", branch, str(remote))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(remote), str(seed))
    git(seed, "checkout", "-q", "-b", branch)
    assert run_cli(seed, "init", "--no-hooks").code == 0
    add(seed, "Warm the cache before timing a benchmark")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "reviewed memories")
    git(seed, "push", "-q", "origin", branch)
    return remote


def clone(tmp_path: Path, remote: Path, *options: str) -> Path:
    """A clone of ``remote`` with a new memory on a feature branch."""
    work = tmp_path / "clone"
    git(tmp_path, "clone", "-q", *options, str(remote), str(work))
    git(work, "checkout", "-q", "-b", "feature")
    add(work, "Invalidate the cache after a schema migration")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "a new memory")
    return work


def default(work: Path) -> str | None:
    _common_dir.cache_clear()
    return default_reviewed_ref(work)


def test_a_clone_whose_remote_is_named_upstream_reviews_against_its_default_branch(tmp_path: Path) -> None:
    work = clone(tmp_path, remote_with_memory(tmp_path), "-o", "upstream")
    assert default(work) == "upstream/master"
    result = run_cli(work, "review")
    assert result.code == 0 and result.out.startswith("## mtlgit review: 1 added"), result.output
    reviewed = run_cli(work, "recall", "--reviewed", "--paths", "--min-confidence", "0", "the cache")
    assert reviewed.code == 0 and reviewed.out.count("\n") == 1, reviewed.output  # only the reviewed one


def test_the_one_remote_without_a_head_gives_its_one_default_looking_branch(tmp_path: Path) -> None:
    work = clone(tmp_path, remote_with_memory(tmp_path, "trunk"), "-o", "team")
    git(work, "remote", "set-head", "team", "--delete")
    assert default(work) == "team/trunk"
    git(work, "pack-refs", "--all")  # the same from packed-refs
    assert not (work / ".git" / "refs" / "remotes" / "team" / "trunk").exists()
    assert default(work) == "team/trunk"
    # Two of them, and nothing says which.
    git(work, "push", "-q", "team", "trunk:main")
    git(work, "fetch", "-q", "team")
    assert default(work) is None


def test_two_remotes_and_no_origin_name_no_default(tmp_path: Path) -> None:
    remote = remote_with_memory(tmp_path)
    work = clone(tmp_path, remote, "-o", "upstream")
    git(work, "remote", "add", "fork", str(remote))
    git(work, "fetch", "-q", "fork")
    assert default(work) is None  # though upstream has a HEAD: which remote reviews is the user's to say
    result = run_cli(work, "review")
    assert result.code == 1 and "reviewed_ref" in result.err and "Traceback" not in result.err, result.output


def test_origin_wins_over_another_remote(tmp_path: Path) -> None:
    remote = remote_with_memory(tmp_path)
    work = clone(tmp_path, remote)
    git(work, "remote", "add", "fork", str(remote))
    git(work, "fetch", "-q", "fork")
    git(work, "remote", "set-head", "origin", "--delete")
    git(work, "remote", "set-head", "fork", "master")
    assert default(work) == "origin/master"


def test_a_reftable_repository_is_read_through_git(tmp_path: Path) -> None:
    remote = remote_with_memory(tmp_path)
    made = subprocess.run(
        ["git", "clone", "-q", "--ref-format=reftable", "-o", "upstream", str(remote), str(tmp_path / "rt")],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        first = made.stderr.strip().splitlines()[0]
        pytest.skip(f"this git cannot make a reftable repository (2.45 or later can): {first}")
    assert not (tmp_path / "rt" / ".git" / "refs" / "remotes").exists()
    assert default(tmp_path / "rt") == "upstream/master"


def test_a_plain_recall_in_a_clone_runs_no_git(tmp_path: Path) -> None:
    """The default is read when the configuration is, which a recall of a settled index does not do; a
    refresh reads it without git when origin/HEAD is a file."""
    work = clone(tmp_path, remote_with_memory(tmp_path), "-o", "upstream")
    assert run_cli(work, "index").code == 0
    env = {**os.environ, "PATH": ""}  # no git to run: a spawn would fail
    command = [sys.executable, "-X", "importtime", "-m", "mtlgit", "recall", "schema migration"]
    proc = subprocess.run(command, cwd=work, capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "schema migration" in proc.stdout.lower(), proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "mtlgit.git" not in imported and "subprocess" not in imported
