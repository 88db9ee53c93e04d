"""The content-addressed cache: what was computed for a memory file, keyed by the file's git blob id.

One SQLite database under the git common dir, shared by every worktree, branch, revision and pool mirror of
the repository: a memory's parse, terms and vector are computed once for each distinct content. SQLite gives
atomic commits, concurrent readers and a writer lock, and survives ``kill -9``; a corrupted database is
moved aside and started afresh, since everything in it can be computed again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mtlgit.analysis import ANALYZER_VERSION

SCHEMA = 1


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
            # Derived data only: keep the damaged file for inspection and start again.
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
        db.execute("CREATE TABLE IF NOT EXISTS docs (analyzer TEXT, blob TEXT, doc TEXT, PRIMARY KEY (analyzer, blob))")
        db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, blob TEXT, vec BLOB, PRIMARY KEY (model, blob))")
        db.execute("PRAGMA quick_check").fetchone()
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
        rows = [(ANALYZER_VERSION, blob, json.dumps(doc, ensure_ascii=False)) for blob, doc in items.items()]
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", rows)

    def vectors(self, model: str, blobs: Iterable[str]) -> dict[str, np.ndarray]:
        return {
            blob: np.frombuffer(vec, dtype=np.float16)
            for blob, vec in self._select("SELECT blob, vec FROM vectors WHERE model=? AND blob IN ", blobs, model)
        }

    def put_vectors(self, model: str, items: dict[str, np.ndarray]) -> None:
        rows = [(model, blob, vec.astype(np.float16).tobytes()) for blob, vec in items.items()]
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def count(self, table: str) -> int:
        assert table in ("docs", "vectors")
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608

    def _select(self, sql: str, blobs: Iterable[str], first: str) -> list[tuple[Any, ...]]:
        keys = list(dict.fromkeys(blobs))
        out: list[tuple[Any, ...]] = []
        for start in range(0, len(keys), 900):
            chunk = keys[start : start + 900]
            marks = ",".join("?" * len(chunk))
            out.extend(self.db.execute(f"{sql}({marks})", (first, *chunk)).fetchall())
        return out

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
