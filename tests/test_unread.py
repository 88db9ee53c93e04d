"""A memory file the index could not read comes back by itself once it can be read, in every freshness mode.

A chmod, or a symlink's target made elsewhere, changes no stat the snapshot records (size, mtime, inode of the
file, mtimes of the memory folders): before, such a memory stayed out of every recall until ``--rebuild``.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mtlgit import watch
from tests.conftest import VALID, Result, run_cli, write

QUERY = "a battery of checks in an inline block"
TITLE = "Validate a fix with a self-contained here-doc test"
OTHER = VALID.replace("01JDQ2V6R3J8Z6TT4M0S3W4K9B", "01JDQ2V6R3J8Z6TT4M0S3W4K9C").replace(
    "title: Validate a fix with a self-contained here-doc test", "title: Pin the versions of build tools"
)
MODES = ["stat", "folders", "watch"]


def _configure(repo: Path, freshness: str) -> None:
    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("freshness: auto", f"freshness: {freshness}"))
    write(repo / "memories" / "insight" / "other.md", OTHER)


def _titles(result: Result) -> list[str]:
    assert result.code == 0, result.output
    return [hit["title"] for hit in json.loads(result.out)["results"]]


def _generation(repo: Path) -> str:
    return (repo / ".git" / "mtlgit" / "index" / "CURRENT").read_text(encoding="utf-8")


def _watching(repo: Path, freshness: str) -> None:
    """In watch mode, the watcher the first index started must answer the recalls that follow."""
    if freshness == "watch":
        assert watch.wait_until_running(repo / ".git" / "mtlgit"), "the index did not start the watcher"


@pytest.mark.parametrize("command", ["recall", "index"])
@pytest.mark.parametrize("freshness", MODES)
def test_a_broken_symlink_memory_is_indexed_once_its_target_exists(repo: Path, freshness: str, command: str) -> None:
    _configure(repo, freshness)
    (repo / "elsewhere").mkdir()
    link = repo / "memories" / "insight" / "x.md"
    link.symlink_to("../../elsewhere/x.md")
    assert "1 unreadable" in run_cli(repo, "index").out
    _watching(repo, freshness)
    first = run_cli(repo, "recall", QUERY, "--json")
    assert TITLE not in _titles(first)
    assert json.loads(first.out)["unreadable_files"] == 1
    generation = _generation(repo)
    again = run_cli(repo, "recall", QUERY)
    assert "1 memory file(s) could not be read" in again.err  # said on each recall, once
    assert _generation(repo) == generation  # while it stays broken, no recall refreshes for it

    write(repo / "elsewhere" / "x.md", VALID)  # the symlink's own stat, and its folder's, do not change
    if command == "index":
        assert "Indexed 2 memories from 2 files in" in run_cli(repo, "index").out
    found = run_cli(repo, "recall", QUERY, "--json")
    assert TITLE in _titles(found)
    assert json.loads(found.out)["unreadable_files"] == 0


def test_the_mcp_servers_recaller_sees_a_symlinks_target_made(repo: Path) -> None:
    """The server's own watch vouches for nothing while a symlink is in the tree: its check opens the target."""
    from mtlgit.mcp_server import WatchedRecaller

    _configure(repo, "auto")
    (repo / "elsewhere").mkdir()
    (repo / "memories" / "insight" / "x.md").symlink_to("../../elsewhere/x.md")
    recaller = WatchedRecaller(repo)

    def titles() -> list[str]:
        return [str(hit.memory["title"]) for hit in recaller.recall(QUERY, k=2).hits]

    try:
        for _ in range(3):  # the first call arms the watch, the next ones may be vouched for
            assert TITLE not in titles()
        assert recaller.recall(QUERY, k=2).problem_files == 1
        write(repo / "elsewhere" / "x.md", VALID)
        assert TITLE in titles()
    finally:
        recaller._close_watch()


# --- a file without read permission, read by a process that the permission binds ---------------------------

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _drop_file_capabilities() -> None:
    """Run in the child before exec: root without the two capabilities that let it read any file."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _bound_by_permissions(tmp_path: Path) -> Callable[[], None] | None:
    """What to run in a child so that a chmod 000 file is unreadable to it (None: nothing, this user is bound
    already); skips the test where that cannot be had."""
    if not sys.platform.startswith("linux"):
        pytest.skip("permission bits are tested on Linux")
    if os.geteuid() != 0:
        return None
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", f"open({str(probe)!r}).read()"],
            preexec_fn=_drop_file_capabilities,  # safe before exec: the test process has one thread
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.SubprocessError as exc:
        pytest.skip(f"running as root, and a child cannot drop CAP_DAC_OVERRIDE here ({exc})")
    if "PermissionError" not in proc.stderr:
        pytest.skip("running as root, and a child that drops CAP_DAC_OVERRIDE still reads a chmod 000 file")
    return _drop_file_capabilities


@pytest.fixture
def bound(repo: Path, tmp_path: Path) -> Callable[..., Result]:
    """``bound("recall", ...)`` runs mtlgit in the test repository as a process that a chmod 000 binds."""
    preexec = _bound_by_permissions(tmp_path)

    def call(*args: str) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "mtlgit", *args],
            cwd=repo,
            input="",
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=preexec,  # safe before exec: the test process has one thread
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return call


@pytest.mark.parametrize("freshness", MODES)
def test_a_memory_without_read_permission_is_indexed_once_it_is_readable(
    repo: Path, bound: Callable[..., Result], freshness: str
) -> None:
    _configure(repo, freshness)
    memory = write(repo / "memories" / "insight" / "x.md", VALID)
    memory.chmod(0)
    assert "1 unreadable" in bound("index").out
    _watching(repo, freshness)
    blocked = bound("recall", QUERY, "--json")
    assert TITLE not in _titles(blocked)
    generation = _generation(repo)
    assert "1 memory file(s) could not be read" in bound("recall", QUERY).err
    assert _generation(repo) == generation  # while it stays unreadable, no recall refreshes for it
    lint = bound("lint")
    assert "memories/insight/x.md: error: cannot read the file: Permission denied" in lint.out, lint.output

    memory.chmod(0o644)  # changes the ctime only
    found = bound("recall", QUERY, "--json")
    assert TITLE in _titles(found)
    assert json.loads(found.out)["unreadable_files"] == 0


def test_the_watcher_mode_tries_an_unreadable_file_even_when_the_watcher_saw_nothing(
    repo: Path, bound: Callable[..., Result]
) -> None:
    """A chmod through a hard link outside the memories folder raises no event the watcher sees."""
    _configure(repo, "watch")
    memory = write(repo / "memories" / "insight" / "x.md", VALID)
    (repo / "elsewhere").mkdir()
    outside = repo / "elsewhere" / "x.md"
    os.link(memory, outside)
    outside.chmod(0)
    assert "1 unreadable" in bound("index").out
    _watching(repo, "watch")
    assert TITLE not in _titles(bound("recall", QUERY, "--json"))  # records the watcher's mark
    outside.chmod(0o644)
    assert TITLE in _titles(bound("recall", QUERY, "--json"))


@pytest.mark.parametrize("freshness", MODES)
def test_the_memories_of_a_folder_that_could_not_be_listed_come_back_once_it_can_be(
    repo: Path, bound: Callable[..., Result], freshness: str
) -> None:
    _configure(repo, freshness)
    folder = repo / "memories" / "private"
    write(folder / "x.md", VALID)
    folder.chmod(0)
    try:
        assert "1 unreadable" in bound("index").out
        blocked = bound("recall", QUERY, "--json")
        assert TITLE not in _titles(blocked)
        assert json.loads(blocked.out)["unreadable_files"] == 1
        lint = bound("lint")
        assert lint.code == 1
        assert "memories/private: error: cannot list the folder (Permission denied)" in lint.out, lint.output
    finally:
        folder.chmod(0o755)  # changes no mtime, of the folder or of its parent
    assert TITLE in _titles(bound("recall", QUERY, "--json"))


def test_list_counts_a_memory_the_index_could_not_read(repo: Path) -> None:
    """`mtlgit list` reads the pool from the index: a memory file listed but never read (here a broken symlink)
    is in no row of it, and is counted from the manifest's list, as `mtlgit index` and recall count it."""
    write(repo / "memories" / "insight" / "other.md", OTHER)
    link = repo / "memories" / "insight" / "x.md"
    link.symlink_to("../../elsewhere/x.md")
    assert "1 unreadable" in run_cli(repo, "index").out
    listed = run_cli(repo, "list")
    assert listed.code == 0 and "1 file(s) could not be read" in listed.err, listed.output
    (repo / "elsewhere").mkdir()
    write(repo / "elsewhere" / "x.md", VALID)
    assert "could not be read" not in run_cli(repo, "list").err
