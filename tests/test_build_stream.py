"""A working-tree build reads its files in the builder's tasks (workers on a large build): blob ids are found
there, the cache is asked there, and the result is the one a build that read every file first gives."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mtlgit.cache import BlobCache
from mtlgit.embed import load_model
from mtlgit.ids import blob_id
from mtlgit.index import build
from mtlgit.index.segment import FileInput, SegmentData
from mtlgit.index.worktree import WorktreeIndex
from mtlgit.repo import find_repo
from tests.conftest import write
from tests.test_build import built, killing_workers, pool, same


@pytest.fixture
def small_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers from a few files on, in tasks of 8 and chunks of 64: contents repeated across tasks and chunks."""
    monkeypatch.setattr(build, "PARALLEL_FROM", 1)
    monkeypatch.setattr(build, "TASK", 8)
    monkeypatch.setattr(build, "CHUNK", 64)
    monkeypatch.setattr(build, "AHEAD", 3)


def with_copies(root: Path, count: int) -> list[FileInput]:
    """``pool``'s files, every eleventh a copy of a file 9 earlier (another task) or 70 earlier (another chunk)."""
    files = pool(root, count)
    for n in range(11, count, 11):
        data = (root / files[n - (70 if n % 2 and n >= 70 else 9)].rel).read_bytes()
        write(root / files[n].rel, data.decode())
        files[n] = FileInput(files[n].rel, files[n].stat, blob_id(data))
    return files


def unread(root: Path, files: list[FileInput], hook: Any = None) -> SegmentData:
    """The segment of ``files`` built from nothing with no blob id given: the builder reads them."""
    shutil.rmtree(root / ".git" / "mtlgit", ignore_errors=True)
    repo = find_repo(root)
    model = load_model("default", root, repo.state_dir)
    fresh = [FileInput(f.rel, f.stat, "") for f in files]
    read = lambda indexes: {i: (root / fresh[i].rel).read_bytes() for i in indexes}  # noqa: E731
    data = build.Builder(repo, model).segment(fresh, read, hook, root=root)
    assert [f.blob for f in fresh] == [f.blob for f in files]  # every blob id found and set
    return data


def cache_rows(root: Path, files: list[FileInput]) -> tuple[dict[str, Any], int]:
    cache = BlobCache(root / ".git" / "mtlgit" / "cache.sqlite")
    try:
        return cache.docs(f.blob for f in files), cache.count("vectors")
    finally:
        cache.close()


@pytest.mark.parametrize("parallel", [True, False], ids=["workers", "one-process"])
def test_files_read_by_the_tasks_give_the_segment_and_cache_of_files_read_first(
    repo: Path, small_tasks: None, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    files = with_copies(repo, 150)
    if not parallel:
        monkeypatch.setattr(build, "PARALLEL_FROM", 10**9)
    streamed = unread(repo, files)
    stored = cache_rows(repo, files)
    distinct = set(streamed.blob[streamed.doc_file].tolist())
    assert streamed.n_docs == 134 and len(distinct) == stored[1] == 124  # a vector per content
    monkeypatch.setattr(build, "PARALLEL_FROM", 10**9)
    first = built(repo, files)  # blob ids known, contents read before the build
    same(streamed, first)
    np.testing.assert_array_equal(streamed.blob, first.blob)
    assert cache_rows(repo, files) == stored


def test_workers_ask_the_cache_and_analyse_only_what_it_lacks(repo: Path, small_tasks: None) -> None:
    files = with_copies(repo, 120)
    first = unread(repo, files)
    main = os.getpid()
    analysed = repo / "analysed-in-a-worker"

    def hook(record: dict[str, Any]) -> dict[str, Any]:
        if os.getpid() != main:  # a worker applies the hook only to what it analyses
            analysed.touch()
        return record

    repo_obj = find_repo(repo)
    fresh = [FileInput(f.rel, f.stat, "") for f in files]
    again = build.Builder(repo_obj, load_model("default", repo, repo_obj.state_dir)).segment(
        fresh, lambda indexes: pytest.fail("read a cached content again"), hook, root=repo
    )
    assert not analysed.exists()
    same(again, first)


def test_a_file_gone_before_its_task_reads_it_is_left_out(repo: Path, small_tasks: None) -> None:
    files = pool(repo, 40)
    (repo / files[5].rel).unlink()
    data = unread(repo, files[:5] + files[6:])
    assert files[5].rel not in data.paths
    repo_obj = find_repo(repo)
    fresh = [FileInput(f.rel, f.stat, "") for f in files]
    gone = build.Builder(repo_obj, load_model("default", repo, repo_obj.state_dir)).segment(
        fresh, lambda indexes: {i: (repo / fresh[i].rel).read_bytes() for i in indexes}, root=repo
    )
    assert fresh[5].blob == "" and gone.paths == data.paths
    same(gone, data)


def test_a_build_from_nothing_of_the_working_tree_reads_each_file_in_the_tasks(
    repo: Path, small_tasks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = pool(repo, 100)
    snapshot = WorktreeIndex(find_repo(repo)).refresh(rebuild=True)
    assert snapshot.manifest.files == 100
    paths = [p for paths, *_rest in snapshot.file_tables() for p in paths]
    blobs = [b.decode() for _p, _s, blob_table, _l in snapshot.file_tables() for b in blob_table.tolist()]
    expected = sorted((f.rel, blob_id((repo / f.rel).read_bytes())) for f in files)
    assert sorted(zip(paths, blobs, strict=True)) == expected


def test_files_a_dead_worker_had_not_read_are_read_by_the_main_process(
    repo: Path, small_tasks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = with_copies(repo, 120)
    hook = killing_workers(repo)  # a worker dies in its first task, before it reads the files of its next ones
    dying = unread(repo, files, hook)
    assert (repo / "worker-died").exists() and build._JOB is None
    monkeypatch.setattr(build, "PARALLEL_FROM", 10**9)
    same(dying, unread(repo, files, hook))


def test_workers_read_the_cache_of_a_read_only_checkout(repo: Path, small_tasks: None, tmp_path: Path) -> None:
    from tests.test_hostile_inputs import _mount, _need_mount, _unmount

    _need_mount()
    files = with_copies(repo, 120)
    first = unread(repo, files)  # every content analysed and cached
    view = tmp_path / "read-only"
    view.mkdir()
    if _mount("--bind", str(repo), str(view)).returncode != 0:
        pytest.skip("cannot bind-mount here")
    analysed = tmp_path / "analysed-in-a-worker"
    main = os.getpid()

    def hook(record: dict[str, Any]) -> dict[str, Any]:
        if os.getpid() != main:
            analysed.touch()
        return record

    try:
        if _mount("-o", "remount,bind,ro", str(view)).returncode != 0:
            pytest.skip("cannot remount read-only here")
        repo_obj = find_repo(view)
        fresh = [FileInput(f.rel, f.stat, "") for f in files]
        again = build.Builder(repo_obj, load_model("default", view, repo_obj.state_dir)).segment(
            fresh, lambda indexes: pytest.fail("read a cached content again"), hook, root=view
        )
    finally:
        _unmount(view)
    assert not analysed.exists()  # the workers found every content in the cache they could not write
    same(again, first)
