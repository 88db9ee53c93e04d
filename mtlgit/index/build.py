"""The segment builder: files of a source in, a segment out, analysing and embedding only what the cache lacks.

Contents the cache has never seen are parsed, analysed and embedded by forked worker processes (one a core,
when there are thousands), a task of ``TASK`` files at a time; the workers share the memory-mapped model and
hand back each analysis already encoded as the cache stores it, with its vector and its line of
``records.jsonl``. A file whose blob id is not known yet (a working-tree file never read) is read where its task
runs, which computes its blob id and asks the cache about it there: a build from nothing starts its workers
on the first files listed instead of reading every file first. The main process meanwhile stores what comes
back and turns the files into compact arrays a chunk (``CHUNK``) at a time, so that it holds the analyses
(records, terms) of about one chunk; the chunks are joined at the end.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mtlgit.index.segment import DocInput, FileInput, SegmentData, concat, from_docs, record_line
from mtlgit.progress import progress_bar
from mtlgit.rules import read_regular

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from mtlgit.cache import BlobCache
    from mtlgit.embed import StaticModel
    from mtlgit.repo import Repo

CHUNK = 4096
TASK = 256  # files a worker takes at a time: small enough to spread evenly, large enough to batch
# Tasks handed to the workers before the main process has taken their results: more than a chunk's, so that
# they need not wait while the main process stores and assembles one (16 tasks), few enough that
# results waiting for the main process (~10 KB an analysis) stay a few tens of megabytes.
AHEAD = 20
PARALLEL_FROM = 3000  # contents to analyse from which workers pay for their start (~50 ms each)
# Seconds a task may take before its worker is taken for hung: a task takes well under a second, even on a
# loaded machine, so this is reached only by a worker stuck for good (a blocked read, a deadlock).
STALL = 60.0
ReadBlobs = Callable[[list[int]], dict[int, bytes]]
RecordHook = Callable[[dict[str, Any]], dict[str, Any]]
# A content to analyse: its blob id, path, bytes, whether its vector is wanted, and the first file holding it;
# a file not read yet has no blob id and no bytes (they are read, and the cache asked, where the task runs).
Work = tuple[str, str, bytes, bool, int]
# What is made of it: blob id, analysis, the analysis as the cache stores it (JSON, CRC-32), vector or None,
# and the record's line of records.jsonl (after the record hook; None for a file that is not a memory).
Made = tuple[str, dict[str, Any], str, int, np.ndarray | None, bytes | None]
# The blob id found for each file read where its task ran ("" for a file gone since its stat), by file index.
Found = list[tuple[int, str]]
# Which of some blob ids the cache has an analysis of, and which a vector of.
Known = Callable[[list[str]], tuple[set[str], set[str]]]


class Builder:
    """Turns files (with blob ids) into a segment, analysing only contents the cache lacks."""

    def __init__(self, repo: Repo, model: StaticModel, progress: bool = False, vectors_key: str | None = None) -> None:
        """:param vectors_key: where the cache keeps the vectors made here (default: the model's key). A
        ``record_hook`` that changes the text embedded (a pool's domain label) needs its own, or a working tree
        and a pool sharing a file would share whichever vector was made first."""
        self.repo = repo
        self.model = model
        self.progress = progress
        self.vectors_key = vectors_key or model.key

    def segment(
        self,
        files: Sequence[FileInput],
        read: ReadBlobs,
        record_hook: RecordHook | None = None,
        root: Path | None = None,
    ) -> SegmentData:
        """A segment of ``files``.

        :param read: returns the bytes of the given file indexes (called only for contents never analysed).
        :param record_hook: rewrites each record before it is stored (a pool's domain label).
        :param root: where the files with no blob id yet (``""``) are read from; their blob ids are set here. One
            gone since its stat keeps ``""`` and is left out of the segment.
        """
        from mtlgit.cache import BlobCache

        cache = BlobCache(self.repo.state_dir / "cache.sqlite")
        try:
            parts = []
            known = _cache_known(cache, self.vectors_key)
            place = (root, cache.reader_uri(), self.vectors_key)
            # No name holds the work list: each task's contents are freed once its results are taken.
            with _Computing(self._work(cache, files, read), self.model, record_hook, known, place) as computing:
                steps = range(0, len(files), CHUNK)
                show = self.progress and len(files) > CHUNK
                for start in progress_bar(steps, show, "Indexing memories"):
                    made = computing.until(start + min(CHUNK, len(files) - start))
                    for index, blob in computing.found():
                        files[index].blob = blob
                    kept = [i for i in range(start, min(start + CHUNK, len(files))) if files[i].blob]

                    def read_chunk(indexes: list[int], kept: list[int] = kept) -> dict[int, bytes]:
                        contents = read([kept[i] for i in indexes])
                        return {i: contents[kept[i]] for i in indexes}

                    chunk = [files[i] for i in kept]
                    parts.append(self._chunk(cache, chunk, made, read_chunk, record_hook))
        finally:
            cache.close()
        if len(parts) == 1:
            return parts[0]
        return concat(parts, self.model.dim, consume=True)

    def _work(self, cache: BlobCache, files: Sequence[FileInput], read: ReadBlobs) -> list[Work]:
        """The contents never analysed (each once, in file order), read, and the files not read yet."""
        blobs = [f.blob for f in files if not f.problems and f.blob]
        analysed = cache.has_docs(blobs)
        first: dict[str, int] = {}
        unread: list[int] = []
        for index, file in enumerate(files):
            if file.problems:
                continue
            if not file.blob:
                unread.append(index)
            elif file.blob not in analysed:
                first.setdefault(file.blob, index)
        work: list[Work] = [("", files[i].rel, b"", True, i) for i in unread]
        if first:
            embedded = cache.has_vectors(self.vectors_key, list(first))
            contents = read(list(first.values()))
            work += [(blob, files[i].rel, contents[i], blob not in embedded, i) for blob, i in first.items()]
            if unread:
                work.sort(key=lambda item: item[4])
        return work

    def _chunk(
        self,
        cache: BlobCache,
        files: list[FileInput],
        made: dict[str, Made],
        read: ReadBlobs,
        record_hook: RecordHook | None,
    ) -> SegmentData:
        cache.put_made(self.vectors_key, [m for m in made.values()])
        analysed = {blob: m[1] for blob, m in made.items()}
        vectors = {blob: m[4] for blob, m in made.items() if m[4] is not None}
        lines = {blob: m[5] for blob, m in made.items()}
        need = [i for i, f in enumerate(files) if not f.problems]
        analysed.update(cache.docs(files[i].blob for i in need if files[i].blob not in analysed))
        lost = {files[i].blob: i for i in need if files[i].blob not in analysed}
        if lost:  # gone from the cache since it was asked (repaired, moved aside), or never stored (read-only)
            contents = read(list(lost.values()))
            redo = [(blob, files[i].rel, contents[i], False, i) for blob, i in lost.items()]
            done, _found = analyse_and_embed(redo, self.model, record_hook, _cache_known(cache, self.vectors_key))
            cache.put_made(self.vectors_key, done)
            analysed.update((m[0], m[1]) for m in done)
        docs: list[DocInput] = []
        for index in need:
            file = files[index]
            analysis = analysed[file.blob]
            file.problems = [{**p, "path": file.rel} for p in analysis["problems"]]
            if analysis["record"] is not None:
                record = analysis["record"] if record_hook is None else record_hook(analysis["record"])
                doc = DocInput(index, record, analysis["terms"], vectors.get(file.blob), lines.get(file.blob))
                docs.append(doc)
        self._embed(cache, docs, [files[d.file_index].blob for d in docs])
        return from_docs(files, docs, self.model.dim)

    def _embed(self, cache: BlobCache, docs: list[DocInput], blobs: list[str]) -> None:
        """Vectors for the documents that have none yet: from the cache, or computed here (a model changed)."""
        from mtlgit.memory import search_text

        model = self.model
        lacking = [(doc, blob) for doc, blob in zip(docs, blobs, strict=True) if doc.vector is None]
        if not lacking:
            return
        cached = cache.vectors(self.vectors_key, [blob for _doc, blob in lacking])
        todo: dict[str, DocInput] = {}
        for doc, blob in lacking:
            if blob not in cached:
                todo.setdefault(blob, doc)
        if todo:
            vectors = model.encode([search_text(d.record) for d in todo.values()]).astype(np.float16)
            fresh = dict(zip(todo, vectors, strict=True))
            cache.put_vectors(self.vectors_key, fresh)
            cached.update(fresh)
        for doc, blob in lacking:
            doc.vector = cached[blob]


def analyse_and_embed(
    work: Sequence[Work], model: StaticModel, record_hook: RecordHook | None, known: Known, root: Path | None = None
) -> tuple[list[Made], Found]:
    """Parse, analyse and (where wanted) embed contents: what a worker does with a task. The files not read
    yet are read from ``root`` first, and only the contents among them that ``known`` says the cache lacks
    are analysed (each once: the first file holding it)."""
    from mtlgit.cache import analyse_one
    from mtlgit.memory import search_text

    work, found = _resolve(work, known, root)
    analyses = [analyse_one(rel, content) for _blob, rel, content, _vector, _first in work]
    records = [
        None if a["record"] is None else a["record"] if record_hook is None else record_hook(a["record"])
        for a in analyses
    ]
    wanted = [n for n, item in enumerate(work) if item[3] and records[n] is not None]
    texts = [search_text(record) for n in wanted if (record := records[n]) is not None]
    vectors = model.encode(texts).astype(np.float16) if texts else np.zeros((0, model.dim), np.float16)
    vector_of = dict(zip(wanted, vectors, strict=True))
    out: list[Made] = []
    for n, (item, analysis) in enumerate(zip(work, analyses, strict=True)):
        text = json.dumps(analysis)  # ASCII escapes: a path in a problem may hold any byte
        record = records[n]
        line = None if record is None else record_line(record)
        out.append((item[0], analysis, text, zlib.crc32(text.encode()), vector_of.get(n), line))
    return out, found


def _resolve(work: Sequence[Work], known: Known, root: Path | None) -> tuple[list[Work], Found]:
    """``work`` with its files not read yet read: those whose content the cache has, or an earlier file of
    the task holds, are dropped (their blob ids are in what is found)."""
    from mtlgit.ids import blob_id

    if root is None or all(item[0] for item in work):
        return list(work), []
    found: Found = []
    read: dict[str, Work] = {}
    base = os.path.join(root, "")
    for blob, rel, _content, _vector, first in work:
        if blob:
            continue
        try:
            data = read_regular(base + rel)  # plain system calls: a third of Path.read_bytes's cost
        except OSError:
            found.append((first, ""))  # gone, or unreadable, since its stat: left out, as if never listed
            continue
        blob = blob_id(data)
        found.append((first, blob))
        if blob not in read:
            read[blob] = (blob, rel, data, True, first)
    analysed, embedded = known(list(read))
    kept = [item for item in work if item[0]]
    kept += [(b, rel, data, b not in embedded, i) for b, (_, rel, data, _v, i) in read.items() if b not in analysed]
    kept.sort(key=lambda item: item[4])
    return kept, found


def _cache_known(cache: BlobCache, vectors_key: str) -> Known:
    def known(blobs: list[str]) -> tuple[set[str], set[str]]:
        return cache.has_docs(blobs), cache.has_vectors(vectors_key, blobs)

    return known


# A worker's own read-only connection to the cache (a connection must not cross a fork): its process id, it.
_READER: tuple[int, sqlite3.Connection | None] | None = None


def _worker_known(blobs: list[str]) -> tuple[set[str], set[str]]:
    """What the cache holds of ``blobs``, asked from a worker; nothing where the cache cannot be read (the
    contents are then analysed again, which gives the same)."""
    from mtlgit.cache import known_blobs, open_reader

    global _READER
    assert _JOB is not None
    if _READER is None or _READER[0] != os.getpid():
        _READER = (os.getpid(), open_reader(_JOB[2][1]))
    db = _READER[1]
    return known_blobs(db, _JOB[2][2], blobs) if db is not None else (set(), set())


# Where a task reads the files not read yet, how it opens the cache, and the key of the vectors the cache keeps.
Place = tuple[Path | None, str, str]
# What forked workers inherit: the model, the record hook (a closure, which cannot be pickled), and the Place.
_JOB: tuple[StaticModel, RecordHook | None, Place] | None = None


def _task(work: list[Work]) -> tuple[list[Made], Found]:
    assert _JOB is not None
    model, hook, place = _JOB
    return analyse_and_embed(work, model, hook, _worker_known, place[0])


def _end_with(parent: int) -> None:
    """Run first in each worker: have the kernel end it when ``parent`` ends, however that ends. A worker left
    behind by a parent killed by a signal would wait for tasks forever, holding the parent's stdout and stderr
    open (a caller reading them to their end would hang). Linux only; elsewhere nothing. The kernel watches the
    thread that forked the worker, not the process: workers are forked only by a process's one thread."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the request was made
        os._exit(0)


class _Computing:
    """The analyses and vectors of ``work``, computed by forked workers when there is enough of it (in this
    process otherwise), handed out in file order. The workers are forked (a spawned worker would re-run a
    caller's script that lacks a ``__main__`` guard), so they are used only in a process without other threads;
    if a worker dies, or hands back nothing for :data:`STALL` seconds, what it had not handed back is computed
    here instead."""

    def __init__(
        self, work: list[Work], model: StaticModel, record_hook: RecordHook | None, known: Known, place: Place
    ) -> None:
        self.model = model
        self.record_hook = record_hook
        self.known = known
        self.place = place
        self.tasks = [work[start : start + TASK] for start in range(0, len(work), TASK)]
        self.futures: list[Future[tuple[list[Made], Found]] | None] = [None] * len(self.tasks)
        self.taken = 0  # tasks whose results have been taken
        self.kept: dict[str, Made] = {}  # results taken, for files of a later chunk
        # The first file of each content made or to be made: a content found again in a later task (two files
        # with the same bytes) is analysed there too, but what the first file's task made is what is kept.
        self.first = {item[0]: item[4] for item in work if item[0]}
        self.blobs: Found = []  # blob ids found by the tasks taken, not handed out yet
        self.pool: ProcessPoolExecutor | None = None
        workers = min(os.cpu_count() or 1, 4)
        if len(work) >= PARALLEL_FROM and workers > 1 and threading.active_count() == 1:
            self._start(workers)

    def _start(self, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        global _JOB
        _JOB = (self.model, self.record_hook, self.place)
        self.model.prepare()  # tables built once here are shared by every worker
        try:
            self.pool = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("fork"), initializer=_end_with, initargs=(os.getpid(),)
            )
            for number in range(min(AHEAD, len(self.tasks))):
                self.futures[number] = self.pool.submit(_task, self.tasks[number])
        except OSError:
            self._stop()

    def __enter__(self) -> _Computing:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self, kill: bool = False) -> None:
        global _JOB
        if self.pool is not None:
            if kill:  # a hung worker would never end: the executor has no public way to end it before 3.14
                for process in list(getattr(self.pool, "_processes", {}).values()):
                    process.kill()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
            self.futures = [None] * len(self.futures)  # cancelled or broken: their tasks are done here
        _JOB = None

    def until(self, end: int) -> dict[str, Made]:
        """The results for contents first met in a file before ``end`` (a file index) not handed out yet."""
        from concurrent.futures.process import BrokenProcessPool

        while self.taken < len(self.tasks) and self.tasks[self.taken][0][4] < end:
            number = self.taken
            future, self.futures[number] = self.futures[number], None
            results = None
            if future is not None:
                try:
                    results = future.result(timeout=STALL)
                except TimeoutError:  # before OSError, of which it is a kind
                    from mtlgit.index.common import note

                    note(f"a worker process made no progress in {STALL:g} s: this process builds the rest of the index")
                    self._stop(kill=True)
                except (BrokenProcessPool, OSError):
                    self._stop()  # a worker died: the rest is done here
            if results is None:
                results = analyse_and_embed(self.tasks[number], self.model, self.record_hook, self.known, self.place[0])
            made, found = results
            mine = {item[0] for item in self.tasks[number] if item[0]}  # contents of this task read before
            for index, blob in found:
                if blob and blob not in self.first:
                    self.first[blob] = index
                    mine.add(blob)
            self.blobs += found
            self.kept.update((m[0], m) for m in made if m[0] in mine)
            self.tasks[number] = []
            self.taken += 1
            ahead = number + AHEAD
            if self.pool is not None and ahead < len(self.tasks):
                try:
                    self.futures[ahead] = self.pool.submit(_task, self.tasks[ahead])
                except (BrokenProcessPool, RuntimeError, OSError):
                    self._stop()
        out = {blob: made for blob, made in self.kept.items() if self.first[blob] < end}
        for blob in out:
            del self.kept[blob]
        return out

    def found(self) -> Found:
        """The blob ids found for files read where their task ran, since the last call."""
        found, self.blobs = self.blobs, []
        return found
