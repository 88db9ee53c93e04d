"""The content-addressed cache: what was computed for a memory file, keyed by the file's git blob id.

One SQLite database under the git common dir, shared by every worktree, branch, revision and pool mirror of
the repository: a memory's parse, terms and vector are computed once for each distinct content. SQLite gives
atomic commits, concurrent readers and a writer lock, and survives ``kill -9``; a corrupted database is
moved aside and started afresh, since everything in it can be computed again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtlgit.analysis import ANALYZER_VERSION

if TYPE_CHECKING:
    import numpy as np

SCHEMA = 3


class BlobCache:
    """Parsed records, BM25 terms and model vectors of memory files, by blob id (hex)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.DatabaseError:
            return self._start_again()

    def _start_again(self) -> sqlite3.Connection:
        """Derived data only: keep the damaged file for inspection and start an empty cache."""
        try:
            self.db.close()
        except AttributeError:
            pass
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        if self.path.exists():
            self.path.replace(self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}"))
        return self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and row[0] != str(SCHEMA):
            db.execute("DROP TABLE IF EXISTS docs")
            db.execute("DROP TABLE IF EXISTS vectors")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
        db.execute(
            "CREATE TABLE IF NOT EXISTS docs"
            " (analyzer TEXT, blob TEXT, doc TEXT, memory_id TEXT, PRIMARY KEY (analyzer, blob))"
        )
        db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, blob TEXT, vec BLOB, PRIMARY KEY (model, blob))")
        return db

    def close(self) -> None:
        self.db.close()

    def docs(self, blobs: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached analysis of each blob that has one: ``{"record":..., "terms":..., "problems":...}``."""
        return {
            blob: json.loads(doc)
            for blob, doc in self._select(
                "SELECT blob, doc FROM docs WHERE analyzer=? AND blob IN ", blobs, ANALYZER_VERSION
            )
        }

    def put_docs(self, items: dict[str, dict[str, Any]]) -> None:
        rows = [
            (ANALYZER_VERSION, blob, json.dumps(doc, ensure_ascii=False), (doc.get("record") or {}).get("id"))
            for blob, doc in items.items()
        ]
        self._put("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)", rows)

    def analyse(
        self,
        items: Sequence[tuple[str, str]],
        read: Callable[[list[int]], dict[int, bytes]],
        progress: bool = False,
    ) -> dict[str, dict[str, Any]]:
        """The analysis (record, terms, problems) of each (path, blob) item: cached, or parsed now and cached.

        :param read: returns the bytes of the given item indexes (called only for contents never analysed).
        """
        from mtlgit.progress import progress_bar

        known = self.docs(blob for _rel, blob in items)
        todo: dict[str, int] = {}
        for i, (_rel, blob) in enumerate(items):
            if blob not in known:
                todo.setdefault(blob, i)
        data = read(list(todo.values())) if todo else {}
        work = [(blob, items[i][0], data[i]) for blob, i in todo.items()]
        new: dict[str, dict[str, Any]] = {}
        workers = min(os.cpu_count() or 1, 4)
        if len(work) >= PARALLEL_FROM and workers > 1 and threading.active_count() == 1:
            new.update(_analyse_in_processes(work, workers))
        else:
            for blob, rel, content in progress_bar(work, progress and len(work) > 2000, "Reading memories"):
                new[blob] = analyse_one(rel, content)
        if new:
            self.put_docs(new)
        return {**known, **new}

    def memory_ids(self, blobs: Iterable[str]) -> dict[str, str | None]:
        """The memory id of each analysed blob (None for a file that is not a valid memory), without decoding
        whole analyses: what a duplicate-id check over a large pool needs."""
        return dict(
            self._select("SELECT blob, memory_id FROM docs WHERE analyzer=? AND blob IN ", blobs, ANALYZER_VERSION)
        )

    def vectors(self, model: str, blobs: Iterable[str]) -> dict[str, np.ndarray]:
        import numpy as np

        return {
            blob: np.frombuffer(vec, dtype=np.float16)
            for blob, vec in self._select("SELECT blob, vec FROM vectors WHERE model=? AND blob IN ", blobs, model)
        }

    def put_vectors(self, model: str, items: dict[str, np.ndarray]) -> None:
        import numpy as np

        rows = [(model, blob, vec.astype(np.float16).tobytes()) for blob, vec in items.items()]
        self._put("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def count(self, table: str) -> int:
        assert table in ("docs", "vectors")
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608

    def _select(self, sql: str, blobs: Iterable[str], first: str) -> list[tuple[Any, ...]]:
        keys = list(dict.fromkeys(blobs))
        out: list[tuple[Any, ...]] = []
        try:
            for start in range(0, len(keys), 900):
                chunk = keys[start : start + 900]
                marks = ",".join("?" * len(chunk))
                out.extend(self.db.execute(f"{sql}({marks})", (first, *chunk)).fetchall())
        except sqlite3.DatabaseError:
            self.db = self._start_again()
            return []  # nothing cached: the caller computes it again
        return out

    def _put(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        for attempt in (1, 2):
            try:
                with self._transaction():
                    self.db.executemany(sql, rows)
                return
            except sqlite3.DatabaseError:
                if attempt == 2:
                    raise
                self.db = self._start_again()

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


PARALLEL_FROM = 3000


def analyse_one(rel: str, content: bytes) -> dict[str, Any]:
    """Parse one memory file and analyse it for the index: its record, its BM25 terms, its problems."""
    from mtlgit.analysis import analyze
    from mtlgit.memory import lexical_text, parse_bytes

    # Errors only, and the cheap warnings: the abstraction score is lint's business, not the index's.
    memory, problems = parse_bytes(content, rel, abstraction=False)
    record = None
    terms: list[str] = []
    if memory is not None:
        record = memory.to_json()
        del record["path"], record["pool"]
        terms = analyze(lexical_text(record))
    return {"record": record, "terms": terms, "problems": [p.to_json() for p in problems]}


def _analyse_chunk(chunk: list[tuple[str, str, bytes]]) -> list[tuple[str, dict[str, Any]]]:
    return [(blob, analyse_one(rel, content)) for blob, rel, content in chunk]


def _analyse_in_processes(work: list[tuple[str, str, bytes]], workers: int) -> dict[str, dict[str, Any]]:
    """Parsing is pure Python: a first build of thousands of memories uses every core. The workers are forked
    (a spawned worker would re-run a caller's script that lacks a ``__main__`` guard), so this runs only in a
    process without other threads; if a worker dies, the work is done here instead."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    size = max(200, len(work) // (workers * 8))
    chunks = [work[start : start + size] for start in range(0, len(work), size)]
    out: dict[str, dict[str, Any]] = {}
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for results in pool.map(_analyse_chunk, chunks):
                out.update(results)
    except (BrokenProcessPool, OSError):
        out = dict(_analyse_chunk(work))
    return out
