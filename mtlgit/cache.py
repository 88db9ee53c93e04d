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
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtlgit.analysis import ANALYZER_VERSION

if TYPE_CHECKING:
    import numpy as np

SCHEMA = 4
KEEP_CORRUPT = 1  # damaged copies kept for inspection: the newest only


def is_corruption(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the database file is damaged. A full disk, a read-only folder or a busy lock are
    not damage: the file must then be left as it is."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    if name:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    return type(exc) is sqlite3.DatabaseError


class BlobCache:
    """Parsed records, BM25 terms and model vectors of memory files, by blob id (hex).

    Each row carries the CRC-32 of its value: a row that fails it is treated as missing (computed again).
    Where the database cannot be written (a read-only checkout, a full disk) it is read as it is, and what
    would have been added is computed again next time: the cache only saves work.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writable = True
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # a read-only or full disk: opened read-only below
        self.db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.Error as exc:
            if is_corruption(exc):
                return self._start_again()
            return self._read_only()

    def _read_only(self) -> sqlite3.Connection:
        """The database as it is on disk, without locks or writes; an empty one when even that fails."""
        self.writable = False
        try:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True, isolation_level=None)
            db.execute("SELECT 1 FROM docs LIMIT 1").fetchall()
            db.execute("SELECT 1 FROM vectors LIMIT 1").fetchall()
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is not None and row[0] == str(SCHEMA):
                return db
            db.close()
        except sqlite3.Error:
            pass
        db = sqlite3.connect(":memory:", isolation_level=None)
        _create_tables(db)
        return db

    def _start_again(self) -> sqlite3.Connection:
        """Derived data only: keep the damaged file for inspection (older damaged copies go) and start empty."""
        try:
            self.db.close()
        except AttributeError:
            pass
        try:
            for suffix in ("-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            if self.path.exists():
                self.path.replace(self.path.with_name(f"{self.path.name}.corrupt-{time.time_ns()}"))
            copies = sorted(self.path.parent.glob(f"{self.path.name}.corrupt-*"), key=lambda p: p.stat().st_mtime)
            for old in copies[:-KEEP_CORRUPT]:
                old.unlink(missing_ok=True)
            return self._open()
        except (OSError, sqlite3.Error):
            return self._read_only()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is not None and row[0] != str(SCHEMA):
                db.execute("DROP TABLE IF EXISTS docs")
                db.execute("DROP TABLE IF EXISTS vectors")
            if row is None or row[0] != str(SCHEMA):
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
            _create_tables(db)
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        self.db.close()

    def reader_uri(self) -> str:
        """How another process opens this database to read it: as it is on disk, without locks, where this one
        could not be written (a read-only checkout)."""
        return f"{self.path.resolve().as_uri()}?{'mode=ro' if self.writable else 'immutable=1'}"

    def docs(self, blobs: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached analysis of each blob that has one: ``{"record":..., "terms":..., "problems":...}``."""
        return {
            blob: json.loads(doc)
            for blob, doc, crc in self._select(
                "SELECT blob, doc, sum FROM docs WHERE analyzer=? AND blob IN ", blobs, ANALYZER_VERSION
            )
            if isinstance(doc, str) and zlib.crc32(doc.encode("utf-8", "surrogatepass")) == crc
        }

    def has_docs(self, blobs: Iterable[str]) -> set[str]:
        """The blobs among ``blobs`` that have an analysis (not checked against their checksum)."""
        found = self._select("SELECT blob FROM docs WHERE analyzer=? AND blob IN ", blobs, ANALYZER_VERSION)
        return {row[0] for row in found}

    def has_vectors(self, model: str, blobs: Iterable[str]) -> set[str]:
        """The blobs among ``blobs`` that have a vector of ``model`` (not checked against their checksum)."""
        return {row[0] for row in self._select("SELECT blob FROM vectors WHERE model=? AND blob IN ", blobs, model)}

    def put_made(
        self, model: str, made: Sequence[tuple[str, dict[str, Any], str, int, np.ndarray | None, bytes | None]]
    ) -> None:
        """Store analyses already encoded (blob, analysis, its JSON, the JSON's CRC-32, vector or None, and a
        last item not stored), as workers hand them back, and their vectors, in one transaction."""
        import numpy as np

        if not made:
            return
        vectors = []
        for blob, _analysis, _text, _crc, vector, _line in made:
            if vector is not None:
                data = np.asarray(vector, dtype=np.float16).tobytes()
                vectors.append((model, blob, data, zlib.crc32(data)))
        self._put_many(
            [
                (
                    "INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?, ?)",
                    [
                        (ANALYZER_VERSION, blob, text, (analysis.get("record") or {}).get("id"), crc)
                        for blob, analysis, text, crc, _vector, _line in made
                    ],
                ),
                ("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", vectors),
            ]
        )

    def put_docs(self, items: dict[str, dict[str, Any]]) -> None:
        rows = []
        for blob, doc in items.items():
            text = json.dumps(doc)  # ASCII escapes: a path in a problem may hold any byte
            rows.append((ANALYZER_VERSION, blob, text, (doc.get("record") or {}).get("id"), zlib.crc32(text.encode())))
        self._put("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?, ?)", rows)

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
            for blob, vec, crc in self._select(
                "SELECT blob, vec, sum FROM vectors WHERE model=? AND blob IN ", blobs, model
            )
            if isinstance(vec, bytes) and zlib.crc32(vec) == crc
        }

    def put_vectors(self, model: str, items: dict[str, np.ndarray]) -> None:
        import numpy as np

        rows = []
        for blob, vec in items.items():
            data = vec.astype(np.float16).tobytes()
            rows.append((model, blob, data, zlib.crc32(data)))
        self._put("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)

    def check(self, repair: bool = False) -> list[str]:
        """What is wrong with the database: SQLite's own integrity check, then every row's checksum.
        ``repair`` deletes the rows that fail (they are computed again when needed)."""
        try:
            found = [row[0] for row in self.db.execute("PRAGMA integrity_check").fetchall() if row[0] != "ok"]
            bad_docs = [
                blob
                for blob, doc, crc in self.db.execute("SELECT blob, doc, sum FROM docs")
                if not isinstance(doc, str) or zlib.crc32(doc.encode("utf-8", "surrogatepass")) != crc
            ]
            bad_vectors = [
                (model, blob)
                for model, blob, vec, crc in self.db.execute("SELECT model, blob, vec, sum FROM vectors")
                if not isinstance(vec, bytes) or zlib.crc32(vec) != crc
            ]
        except sqlite3.Error as exc:
            return [f"{self.path}: {exc}"]
        if bad_docs:
            found.append(f"{len(bad_docs)} parsed memories fail their checksum")
        if bad_vectors:
            found.append(f"{len(bad_vectors)} vectors fail their checksum")
        if repair and self.writable and (bad_docs or bad_vectors):
            self._put("DELETE FROM docs WHERE blob=?", [(blob,) for blob in bad_docs])
            self._put("DELETE FROM vectors WHERE model=? AND blob=?", bad_vectors)
        return found

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
        except sqlite3.Error as exc:
            if is_corruption(exc) and self.writable:
                self.db = self._start_again()
            return []  # nothing cached: the caller computes it again
        return out

    def _put(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._put_many([(sql, rows)])

    def _put_many(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        """Store rows in one transaction; where the disk cannot take them (full, read-only), they are not
        stored."""
        if not self.writable:
            return
        for attempt in (1, 2):
            try:
                with self._transaction():
                    for sql, rows in statements:
                        if rows:
                            self.db.executemany(sql, rows)
                return
            except sqlite3.Error as exc:
                if attempt == 2 or not is_corruption(exc):
                    return
                self.db = self._start_again()

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


def open_reader(uri: str) -> sqlite3.Connection | None:
    """A read-only connection to the cache at ``uri`` (:meth:`BlobCache.reader_uri`: for a forked worker, which
    must not use its parent's connection), or None where it cannot be opened."""
    try:
        return sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
    except sqlite3.Error:
        return None


def known_blobs(db: sqlite3.Connection, model: str, blobs: list[str]) -> tuple[set[str], set[str]]:
    """Which of ``blobs`` have an analysis, and which a vector of ``model``, in the cache ``db`` (nothing where it
    cannot be read: the contents are then computed again)."""
    docs: set[str] = set()
    vectors: set[str] = set()
    try:
        for start in range(0, len(blobs), 900):
            chunk = blobs[start : start + 900]
            marks = ",".join("?" * len(chunk))
            docs_sql = f"SELECT blob FROM docs WHERE analyzer=? AND blob IN ({marks})"  # noqa: S608
            docs.update(row[0] for row in db.execute(docs_sql, (ANALYZER_VERSION, *chunk)))
            vectors_sql = f"SELECT blob FROM vectors WHERE model=? AND blob IN ({marks})"  # noqa: S608
            vectors.update(row[0] for row in db.execute(vectors_sql, (model, *chunk)))
    except sqlite3.Error:
        return set(), set()
    return docs, vectors


def _create_tables(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS docs"
        " (analyzer TEXT, blob TEXT, doc TEXT, memory_id TEXT, sum INTEGER, PRIMARY KEY (analyzer, blob))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS vectors (model TEXT, blob TEXT, vec BLOB, sum INTEGER, PRIMARY KEY (model, blob))"
    )


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
