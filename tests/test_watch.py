"""The inotify watcher: what it reports, in-process, and the watcher process's life (start, answer, stop)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtlgit import watch

pytestmark = pytest.mark.skipif(not watch.available(), reason="inotify is Linux only")


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, watch.TreeWatch]]:
    root = tmp_path / "repo"
    (root / "memories" / "a").mkdir(parents=True)
    (root / "memories" / "a" / "one.md").write_text("one\n")
    tw = watch.TreeWatch(root, "memories")
    try:
        yield root, tw
    finally:
        tw.close()


def _since(tw: watch.TreeWatch, seq: int) -> watch.Changes:
    return tw.since(tw.token, seq)


def test_an_edit_in_place_is_reported_even_when_size_and_mtime_are_put_back(tree: tuple[Path, watch.TreeWatch]) -> None:
    root, tw = tree
    path = root / "memories" / "a" / "one.md"
    st = os.stat(path)
    start = _since(tw, 0)
    assert start.none
    path.write_text("two\n")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime: a stat check cannot see it
    changes = _since(tw, start.seq)
    assert changes.paths == ["memories/a/one.md"] and not changes.everything
    assert _since(tw, changes.seq).none  # nothing after that number


def test_new_folders_and_files_in_them_are_reported_as_a_tree(tree: tuple[Path, watch.TreeWatch]) -> None:
    root, tw = tree
    (root / "memories" / "b" / "c").mkdir(parents=True)
    (root / "memories" / "b" / "c" / "two.md").write_text("two\n")
    changes = _since(tw, 0)
    assert "memories/b" in changes.folders  # its whole tree is to be listed: "c" may predate its watch
    seq = changes.seq
    (root / "memories" / "b" / "c" / "two.md").write_text("more\n")  # the new folder is watched too
    assert _since(tw, seq).paths == ["memories/b/c/two.md"]


def test_renames_and_deletes_name_both_paths(tree: tuple[Path, watch.TreeWatch]) -> None:
    root, tw = tree
    (root / "memories" / "b").mkdir()
    seq = _since(tw, 0).seq
    os.rename(root / "memories" / "a" / "one.md", root / "memories" / "b" / "one.md")
    changes = _since(tw, seq)
    assert changes.paths == ["memories/a/one.md", "memories/b/one.md"]
    shutil.rmtree(root / "memories" / "a")
    assert "memories/a" in _since(tw, changes.seq).folders


def test_files_outside_the_memories_folder_are_not_reported(tree: tuple[Path, watch.TreeWatch]) -> None:
    root, tw = tree
    seq = _since(tw, 0).seq
    (root / "README.md").write_text("hello\n")
    (root / "src").mkdir()
    (root / "src" / "x.py").write_text("x = 1\n")
    assert _since(tw, seq).none


@pytest.mark.parametrize("change", ["configuration", "memories folder removed", "memories folder moved"])
def test_what_the_watch_cannot_vouch_for_is_everything(tree: tuple[Path, watch.TreeWatch], change: str) -> None:
    root, tw = tree
    seq = _since(tw, 0).seq
    if change == "configuration":
        (root / ".mtlgit.yaml").write_text("memories: memories\n")
    elif change == "memories folder removed":
        shutil.rmtree(root / "memories")
    else:
        os.rename(root / "memories", root / "elsewhere")
    assert _since(tw, seq).everything
    assert tw.gone  # the watcher stops: the next recall checks every file and starts one for the folder named


def test_a_memories_folder_made_after_the_watch_starts_is_watched(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    tw = watch.TreeWatch(root, "notes/memories")
    try:
        (root / "notes" / "memories").mkdir(parents=True)
        first = _since(tw, 0)
        assert first.everything or "notes/memories" in first.folders
        (root / "notes" / "memories" / "x.md").write_text("x\n")
        later = _since(tw, first.seq)
        assert later.everything or later.paths == ["notes/memories/x.md"]
    finally:
        tw.close()


def test_another_watch_or_a_number_from_before_a_gap_gets_everything(
    tree: tuple[Path, watch.TreeWatch], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, tw = tree
    assert tw.since("another watch", 0).everything
    assert tw.since(tw.token, tw.seq + 5).everything  # a number this watch never gave
    monkeypatch.setattr(watch, "MAX_TRACKED", 3)
    seq = _since(tw, 0).seq
    for i in range(5):
        (root / "memories" / f"n{i}.md").write_text("x\n")
    assert _since(tw, seq).everything  # too many distinct paths to keep: the caller checks every file
    later = _since(tw, tw.seq)
    assert later.none


# --- the watcher process -----------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    root = tmp_path / "repo"
    (root / "memories").mkdir(parents=True)
    (root / "memories" / "one.md").write_text("one\n")
    state = root / ".git" / "mtlgit"
    state.mkdir(parents=True)
    watch.start(root, state, "memories")
    assert watch.wait_until_running(state), "the watcher did not start"
    try:
        yield root, state
    finally:
        watch.stop(state)


def test_the_watcher_process_answers_what_changed_and_stops(served: tuple[Path, Path]) -> None:
    root, state = served
    status = watch.status(state)
    assert status is not None and status["pid"] != os.getpid()
    first = watch.ask(state, status["token"], status["seq"])
    assert first is not None and first.none
    (root / "memories" / "one.md").write_text("changed\n")
    # No wait: the write has returned, so its event is queued, and the watcher reads its queue before answering.
    changes = watch.ask(state, first.token, first.seq)
    assert changes is not None and changes.paths == ["memories/one.md"]
    assert watch.stop(state)
    deadline = time.monotonic() + 5
    while (state / watch.SOCKET).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not (state / watch.SOCKET).exists()
    assert watch.ask(state, first.token, first.seq) is None  # nobody answers: the caller checks every file


def test_a_second_watcher_of_the_same_worktree_exits_at_once(served: tuple[Path, Path]) -> None:
    root, state = served
    token = watch.status(state)["token"]  # type: ignore[index]
    proc = subprocess.run(
        [sys.executable, "-m", "mtlgit.watch", str(root), str(state), "memories"], timeout=30, check=False
    )
    assert proc.returncode == 1
    assert watch.status(state)["token"] == token  # type: ignore[index]


def test_a_killed_watcher_leaves_no_wrong_answer(served: tuple[Path, Path]) -> None:
    _root, state = served
    status = watch.status(state)
    assert status is not None
    os.kill(status["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while watch.status(state) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (state / watch.SOCKET).exists()  # left behind by the killed process
    assert watch.ask(state, status["token"], status["seq"]) is None


def test_a_watcher_with_a_long_state_path_and_an_idle_limit(tmp_path: Path) -> None:
    root = tmp_path / ("r" * 60) / ("s" * 60)
    (root / "memories").mkdir(parents=True)
    state = root / ".git" / "mtlgit"
    state.mkdir(parents=True)
    assert len(str(state / watch.SOCKET)) > 108  # more than a Unix socket's path may hold
    code = (
        "import sys; from pathlib import Path; from mtlgit import watch; "
        f"sys.exit(watch.serve(Path({str(root)!r}), Path({str(state)!r}), 'memories', idle=1.5))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        assert watch.wait_until_running(state)
        (root / "memories" / "x.md").write_text("x\n")
        changes = watch.ask(state, None, 0)
        assert changes is not None and changes.everything  # no token given: everything
        assert proc.wait(timeout=15) == 0  # idle for 1.5 s after the last question: it exits
    finally:
        proc.kill()
    assert not (state / watch.SOCKET).exists()


def test_the_watcher_exits_when_the_repository_is_removed(served: tuple[Path, Path]) -> None:
    root, state = served
    pid = watch.status(state)["pid"]  # type: ignore[index]
    shutil.rmtree(root)
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid), "the watcher outlived its repository"


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a child of this process that exited stays a zombie until reaped: not running)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


# --- recall with the watcher (recall.freshness: watch), end to end ------------------------------------------


def _memory(title: str, body: str, number: int) -> str:
    return (
        f"---\nid: 01JDQ2V6R3J8Z6TT4M0S3W{number:04d}\ntitle: {title}\n"
        f"description: When {title.lower()}, apply the lesson below.\nformat: insight\nscope: task-agnostic\n"
        f"domains: [python]\ncreated: 2026-11-25T14:03:11Z\nstatus: active\n---\n{body}\n"
    )


@pytest.fixture
def watched(repo: Path) -> Iterator[Path]:
    from tests.conftest import run_cli

    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text().replace("freshness: auto", "freshness: watch"))
    for number, title in enumerate(["Retry flaky network calls", "Pin dependency versions", "Quote shell vars"]):
        path = repo / "memories" / f"m{number}.md"
        path.write_text(_memory(title, f"Body {number} about {title}.", number))
        hour_ago = time.time_ns() - 3600 * 10**9
        os.utime(path, ns=(hour_ago, hour_ago))  # outside the racy window: a stat check trusts its stat
    state = repo / ".git" / "mtlgit"
    assert run_cli(repo, "recall", "network retries").code == 0  # builds, and starts the watcher
    assert watch.wait_until_running(state), "the first recall did not start the watcher"
    try:
        yield repo
    finally:
        watch.stop(state)


def _titles(repo: Path, query: str) -> list[str]:
    import json

    from tests.conftest import run_cli

    result = run_cli(repo, "recall", query, "--json", "-k", "3")
    assert result.code == 0, result.output
    return [hit["title"] for hit in json.loads(result.out)["results"]]


def _mark(repo: Path) -> list[object] | None:
    from mtlgit.index import WorktreeIndex
    from mtlgit.repo import find_repo

    snapshot = WorktreeIndex(find_repo(repo)).current()
    assert snapshot is not None
    return snapshot.manifest.watch


def test_recall_sees_an_edit_that_keeps_size_and_mtime_through_the_watcher(watched: Path) -> None:
    repo = watched
    _titles(repo, "shell quoting")  # the watcher runs now: this recall records its number
    assert _mark(repo) is not None
    path = repo / "memories" / "m2.md"
    st = os.stat(path)
    text = path.read_text()
    path.write_text(text.replace("Quote shell vars", "Zebra xylophones"))  # same length
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # a stat check alone would not see this edit
    assert os.stat(path).st_size == st.st_size
    from mtlgit.index import WorktreeIndex, is_fresh
    from mtlgit.repo import find_repo

    snapshot = WorktreeIndex(find_repo(repo)).current()
    assert snapshot is not None and is_fresh(snapshot, repo)  # every stat as recorded: the stat check is fooled
    assert "Zebra xylophones" in _titles(repo, "zebra xylophones")


def test_new_folders_deletes_and_the_configuration_are_seen_through_the_watcher(watched: Path) -> None:
    repo = watched
    _titles(repo, "anything")
    (repo / "memories" / "deep" / "er").mkdir(parents=True)
    (repo / "memories" / "deep" / "er" / "n.md").write_text(_memory("Close file handles", "Use with.", 7))
    assert "Close file handles" in _titles(repo, "close file handles")
    (repo / "memories" / "m0.md").unlink()
    assert "Retry flaky network calls" not in _titles(repo, "retry flaky network calls")
    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text().replace("k: 3", "k: 1"))
    from tests.conftest import run_cli

    result = run_cli(repo, "recall", "pin dependency versions", "--json")
    assert len(__import__("json").loads(result.out)["results"]) == 1  # the new default k is read


def test_without_a_watcher_recall_checks_every_file_and_starts_one(watched: Path) -> None:
    repo = watched
    state = repo / ".git" / "mtlgit"
    assert watch.stop(state)
    deadline = time.monotonic() + 5
    while watch.status(state) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    (state / "watch.started").unlink(missing_ok=True)
    (repo / "memories" / "m1.md").write_text(_memory("Vendor the wheel files", "Keep wheels.", 1))
    assert "Vendor the wheel files" in _titles(repo, "vendor wheel files")  # by stat, as no watcher runs
    assert watch.wait_until_running(state), "recall did not start the watcher again"


def test_auto_on_a_small_pool_starts_no_watcher(repo: Path) -> None:
    from tests.conftest import run_cli

    (repo / "memories" / "m.md").write_text(_memory("Retry flaky network calls", "Back off.", 1))
    assert run_cli(repo, "recall", "retry").code == 0
    time.sleep(0.3)
    assert watch.status(repo / ".git" / "mtlgit") is None
    assert not (repo / ".git" / "mtlgit" / "watch.started").exists()


def _recall_paths(repo: Path, query: str) -> list[str]:
    from tests.conftest import run_cli

    result = run_cli(repo, "recall", query, "--mode", "bm25", "--min-confidence", "0", "--paths")
    assert result.code == 0, result.output
    return result.out.split()


def _wait_for_watcher(repo: Path, memories: str) -> None:
    state = repo / ".git" / "mtlgit"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = watch.status(state)
        if status is not None and status.get("memories") == memories:
            return
        time.sleep(0.05)
    pytest.fail(f"no watcher of {memories!r}: {watch.status(state)}")


def test_a_new_memories_folder_in_the_configuration_gets_a_watcher_of_its_own(watched: Path) -> None:
    repo = watched
    _titles(repo, "anything")
    os.rename(repo / "memories", repo / "notes")
    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text().replace("memories: memories", "memories: notes"))
    assert _recall_paths(repo, "pin dependency versions")[0] == "notes/m1.md"
    _wait_for_watcher(repo, "notes")
    _titles(repo, "anything")  # records the new watcher's number
    for word in ("Hornswaggle", "Frobnicate"):  # every later edit too, not only the first
        path = repo / "notes" / "m2.md"
        path.write_text(path.read_text().replace("Quote shell vars", f"{word} shell vars"))
        assert _recall_paths(repo, word.lower())[0] == "notes/m2.md"
        path.write_text(path.read_text().replace(f"{word} shell vars", "Quote shell vars"))


def test_the_repository_root_as_the_memories_folder_is_watched(repo: Path) -> None:
    from tests.conftest import run_cli

    (repo / "memories").rmdir()
    config = repo / ".mtlgit.yaml"
    config.write_text(
        config.read_text().replace("memories: memories", "memories: .").replace("freshness: auto", "freshness: watch")
    )
    (repo / "insight").mkdir()
    (repo / "insight" / "a.md").write_text(_memory("Retry flaky network calls", "Back off.", 1))
    state = repo / ".git" / "mtlgit"
    try:
        assert run_cli(repo, "recall", "retry").code == 0
        _wait_for_watcher(repo, ".")
        _recall_paths(repo, "retry")
        (repo / "insight" / "a.md").write_text(_memory("Skullduggery at the root", "Back off.", 1))
        (repo / "b.md").write_text(_memory("Zanzibar quokka", "A new memory at the root.", 2))
        assert _recall_paths(repo, "skullduggery")[0] == "insight/a.md"
        assert _recall_paths(repo, "zanzibar quokka")[0] == "b.md"
    finally:
        watch.stop(state)


def test_a_folder_hidden_by_a_rename_is_not_indexed_through_the_watcher(watched: Path) -> None:
    repo = watched
    _titles(repo, "anything")
    (repo / "memories" / "old").mkdir()
    os.rename(repo / "memories" / "m0.md", repo / "memories" / "old" / "m0.md")
    assert _recall_paths(repo, "retry flaky network calls")[0] == "memories/old/m0.md"
    os.rename(repo / "memories" / "old", repo / "memories" / ".archive")  # hidden: never read
    assert "Retry flaky network calls" not in _titles(repo, "retry flaky network calls")
    (repo / "memories" / ".stash").mkdir()
    (repo / "memories" / ".stash" / "h.md").write_text(_memory("Hidden stash note", "Never indexed.", 9))
    assert "Hidden stash note" not in _titles(repo, "hidden stash note")
