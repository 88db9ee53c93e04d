"""A build from nothing: forked workers parse, analyse and embed; the result is the same as one process's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mtlgit.cache import BlobCache
from mtlgit.embed import load_model
from mtlgit.ids import blob_id
from mtlgit.index import build
from mtlgit.index.segment import FileInput, SegmentData
from mtlgit.repo import find_repo
from tests.conftest import write

TOPICS = [
    "Retry the flaky socket test with a longer timeout before blaming the parser.",
    "Café naïve façade, accents and “quotes” — dashes — survive tokenization; α-helix ± 2 μm.",
    "Pin the lock file in CI so that a transitive upgrade cannot break the build overnight.",
    "camelCaseIdentifiers and snake_case_names split into their parts for BM25.",
]


def pool(root: Path, count: int) -> list[FileInput]:
    """``count`` memories (one in ten invalid, a few with the same content twice) and their file inputs."""
    files = []
    for n in range(count):
        text = TOPICS[n % len(TOPICS)]
        if n % 10 == 3:
            body = "---\ntitle: no id here\nformat: insight\n---\nbody\n"
        else:
            number = n - n % 7 if n % 7 == 6 else n  # every seventh file repeats an earlier content
            body = (
                f"---\nid: m{number:05d}\ntitle: lesson {number} {text[:30]}\nformat: insight\n"
                f"description: when {text[:40]}\ndomains: [testing]\ntags: [t{number % 5}]\n---\n{text} {number}\n"
            )
        rel = f"memories/insight/m{n:05d}.md"
        data = write(root / rel, body).read_bytes()
        files.append(FileInput(rel, [len(data), 0, n], blob_id(data)))
    return files


def built(root: Path, files: list[FileInput], hook: Any = None) -> SegmentData:
    shutil.rmtree(root / ".git" / "mtlgit", ignore_errors=True)
    repo = find_repo(root)
    model = load_model("default", root, repo.state_dir)
    fresh = [FileInput(f.rel, f.stat, f.blob) for f in files]
    read = lambda indexes: {i: (root / files[i].rel).read_bytes() for i in indexes}  # noqa: E731
    return build.Builder(repo, model).segment(fresh, read, hook)


def killing_workers(root: Path, then: Callable[[dict[str, Any]], dict[str, Any]] = lambda r: r) -> Any:
    """A record hook that ends any worker process it runs in at once (exit 3, leaving ``root/worker-died``), and
    in the main process gives ``then(record)``. Where it runs is where the worker dies: the hook is applied
    after a task's files are read and parsed, and before their vectors' text is made."""
    main = os.getpid()

    def hook(record: dict[str, Any]) -> dict[str, Any]:
        if os.getpid() != main:
            (root / "worker-died").touch()
            os._exit(3)
        return then(record)

    return hook


def same(a: SegmentData, b: SegmentData) -> None:
    assert a.paths == b.paths and a.records == b.records and a.problems == b.problems
    for name in ("file_doc", "doc_file", "ids", "vocab", "tf_ptr", "tf_term", "tf_count", "labels_ids"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.vectors, b.vectors)


@pytest.fixture
def small_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers from a few files on, in tasks of 8 and chunks of 64: many tasks, some across chunks."""
    monkeypatch.setattr(build, "PARALLEL_FROM", 1)
    monkeypatch.setattr(build, "TASK", 8)
    monkeypatch.setattr(build, "CHUNK", 64)
    monkeypatch.setattr(build, "AHEAD", 3)


def test_workers_give_the_same_segment_and_cache_as_one_process(
    repo: Path, small_tasks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = pool(repo, 150)
    parallel = built(repo, files)
    cache = BlobCache(repo / ".git" / "mtlgit" / "cache.sqlite")
    stored = cache.docs(f.blob for f in files), cache.count("vectors")
    cache.close()
    assert parallel.n_docs == 135 and len({i for i, p in parallel.problems if p["severity"] == "error"}) == 15
    monkeypatch.setattr(build, "PARALLEL_FROM", 10**9)
    serial = built(repo, files)
    same(parallel, serial)
    cache = BlobCache(repo / ".git" / "mtlgit" / "cache.sqlite")
    assert (cache.docs(f.blob for f in files), cache.count("vectors")) == stored
    cache.close()
    # A rebuild that finds everything cached analyses nothing and gives the same segment again.
    repo_obj = find_repo(repo)
    again = build.Builder(repo_obj, load_model("default", repo, repo_obj.state_dir)).segment(
        [FileInput(f.rel, f.stat, f.blob) for f in files], lambda indexes: pytest.fail("read a cached content")
    )
    same(again, serial)


def test_a_worker_that_dies_leaves_its_work_to_the_main_process(
    repo: Path, small_tasks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = pool(repo, 120)
    # A worker killed while embedding (the hook runs there for the vector's text).
    hook = killing_workers(repo, lambda record: {**record, "domains": [*record["domains"], "pool-a"]})
    dying = built(repo, files, hook)
    assert (repo / "worker-died").exists() and build._JOB is None
    monkeypatch.setattr(build, "PARALLEL_FROM", 10**9)
    serial = built(repo, files, hook)
    same(dying, serial)
    assert b'"pool-a"' in dying.records[0]


def test_an_impossible_date_is_a_problem_on_its_line_not_a_crash(repo: Path, cli: Any) -> None:
    head = "---\nid: 01ARZ3NDEKTSV4RRFFQ69G5FA{}\ntitle: t\nformat: insight\ndescription: d\ncreated: {}\n---\nbody\n"
    write(repo / "memories" / "insight" / "bad.md", head.format("V", "2026-02-30T10:00:00Z"))
    write(repo / "memories" / "insight" / "good.md", head.format("W", "2026-02-28T10:00:00Z"))
    index = cli("index")
    assert index.code == 0 and "1 unreadable" in index.output, index.output
    lint = cli("lint")
    assert "memories/insight/bad.md:6: error: front matter holds an impossible date" in lint.output, lint.output


def test_a_worker_that_hangs_is_ended_and_its_work_done_by_the_main_process(
    repo: Path, small_tasks: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    files = pool(repo, 120)
    main = os.getpid()
    monkeypatch.setattr(build, "STALL", 2.0)
    monkeypatch.setattr(build, "AHEAD", 8)  # tasks queued behind the hung ones are cancelled: done here too

    def hook(record: dict[str, Any]) -> dict[str, Any]:
        if os.getpid() != main:
            (repo / "hung").write_text(str(os.getpid()))
            time.sleep(3600)  # a worker stuck for good: without a bound the build would wait for it
        return record

    started = time.monotonic()
    hung = built(repo, files, hook)
    assert time.monotonic() - started < 30 and build._JOB is None
    with pytest.raises(ProcessLookupError):
        os.kill(int((repo / "hung").read_text()), 0)  # ended and reaped, not left behind
    assert "a worker process made no progress in 2 s" in caplog.text
    monkeypatch.setattr(build, "PARALLEL_FROM", 10**9)
    same(hung, built(repo, files, hook))


def test_a_segment_written_from_views_reads_back_the_same(repo: Path) -> None:
    """The vectors' head and tail are written from views of the vectors, the records from their lines."""
    from mtlgit.index.segment import HEAD_DIMS, Segment, segment_parts, write_folder

    data = built(repo, pool(repo, 40))
    for order in "CF":  # a build's vectors are in C order; in Fortran order the tail is too: written in C order
        data.vectors = np.asarray(data.vectors, order=order)
        folder = repo / f"segment-{order}"
        write_folder(folder, *segment_parts(data))
        segment = Segment(folder)
        np.testing.assert_array_equal(segment.array("vectors.head"), data.vectors[:, :HEAD_DIMS])
        np.testing.assert_array_equal(segment.array("vectors.tail"), data.vectors[:, HEAD_DIMS:])
        assert segment.array("vectors.head").flags.c_contiguous and segment.array("vectors.tail").flags.c_contiguous
        assert segment.record_lines(range(data.n_docs)) == data.records
    held = Segment(repo / "unsaved", data)  # in memory (an index that cannot be saved): contiguous copies
    assert held.array("vectors.head").flags.c_contiguous and held.blob("records.jsonl") == b"".join(data.records)


def test_a_progress_bar_leaves_no_thread_that_would_keep_a_build_from_forking() -> None:
    """A terminal's `mtlgit index` shows bars; the build forks workers only from a process with one thread, so
    a bar must not leave tqdm's monitor thread behind (it outlives the bar)."""
    code = (
        "import threading, time; from mtlgit.progress import progress_bar; "
        "[time.sleep(0.01) for _ in progress_bar(range(3), True, 'scan')]; print(threading.active_count())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


def _workers_of(pid: int) -> set[int]:
    """The children of ``pid`` that are forks of it (the same command line), not the git it runs."""
    own = Path(f"/proc/{pid}/cmdline").read_bytes()
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children.update(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    forks = set()
    for child in children:
        try:
            if Path(f"/proc/{child}/cmdline").read_bytes() == own:
                forks.add(child)
        except OSError:
            continue
    return forks


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped yet, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_build_workers_end_when_their_parent_is_killed(repo: Path) -> None:
    """A signal that ends `mtlgit index` at once (SIGKILL, or SIGTERM, which Python does not catch) while its
    workers run must not leave them behind: they would wait for tasks forever, holding the caller's pipes."""
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs Linux's /proc/<pid>/task/<tid>/children to find the workers")
    pool(repo, build.PARALLEL_FROM + 500)
    # Each task takes a second longer, so that the workers are surely still at work when the build is killed.
    code = (
        "import sys, time; from mtlgit.index import build; made = build.analyse_and_embed; "
        "build.analyse_and_embed = lambda *args: (time.sleep(1), made(*args))[1]; "
        "sys.argv = ['mtlgit', 'index']; from mtlgit.cli.entry import console; console()"
    )
    main = subprocess.Popen(
        [sys.executable, "-c", code], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and main.poll() is None and time.monotonic() < deadline:
            workers = _workers_of(main.pid)
            time.sleep(0.02)
        assert len(workers) >= 2, "the build started no workers"
        main.kill()
        main.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_alive(worker) for worker in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [worker for worker in workers if _alive(worker)], "workers outlived their parent"
    finally:
        main.kill()
        main.wait(timeout=10)
        for worker in workers:
            if _alive(worker):
                os.kill(worker, 9)
