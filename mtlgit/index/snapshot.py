"""The snapshot reader: one generation of an index, its segments seen through their live masks.

A generation is a folder holding ``manifest.json`` (a :class:`Manifest`), a live mask of each segment's files
(``live<n>.npy``) and the problems that depend on several files (duplicate ids, ``problems.json``). ``CURRENT``
in the index folder names the live generation. Segments are sibling folders shared by generations.

Rows: a snapshot numbers its live memories 0..n_docs-1, segment after segment. Callers use the typed accessors
below and never see segments, tombstones or column positions.

This module is on the recall path: it imports only numpy and the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtlgit.index.common import ATTRS, IndexCorrupt, check_parts, note, path_key, read_manifest
from mtlgit.index.manifest import Manifest
from mtlgit.index.segment import Segment, vector_moments

# The problem of a memory file the index could not read, or a memory folder it could not list (Manifest.unreadable).
UNREAD = "could not be read (no permission, a broken symlink): tried again at every recall; `mtlgit lint` says why"
_COLUMNS = {name: (column, values) for column, (name, values) in enumerate(ATTRS)}


class Snapshot:
    """One immutable generation, read through memory maps; or, when it could not be saved, held in memory."""

    def __init__(
        self,
        folder: Path,
        manifest: Manifest | None = None,
        segments: Sequence[Segment] | None = None,
        live: Sequence[np.ndarray] | None = None,
        problems: list[dict[str, Any]] | None = None,
    ) -> None:
        """Open the generation in ``folder`` and its segments; or hold one given in full in memory.

        :raises IndexCorrupt: when a file of the generation or of a segment is missing or damaged.
        """
        self.folder = folder
        self.unsaved_reason = ""  # why a snapshot held in memory could not be saved ("no space left on device")
        self._saved = manifest is None
        if manifest is not None and segments is not None and live is not None:
            self.manifest = manifest
            self.segments = list(segments)
            self._live = [np.asarray(mask, dtype=bool) for mask in live]
            self._dup_problems = problems or []
        else:
            raw = read_manifest(folder)
            check_parts(folder, raw.get("parts"), full=False)
            self.manifest = Manifest.from_json(raw, folder.name)
            self.segments = [Segment(folder.parent / name) for name in self.manifest.segments]
            self._live = []
            for number, segment in enumerate(self.segments):
                try:
                    mask = np.load(folder / f"live{number}.npy", allow_pickle=False)
                except (OSError, ValueError) as exc:
                    raise IndexCorrupt(f"{folder.name}/live{number}.npy unreadable ({exc})") from None
                if mask.shape != (segment.n_files,):
                    raise IndexCorrupt(f"{folder.name}/live{number}.npy does not fit {segment.name}")
                self._live.append(mask.astype(bool))
            self._dup_problems = []
        self._rows: list[np.ndarray] | None = None
        self._offsets: list[int] = []
        self._files: list[str] | None = None
        self._codes: dict[str, np.ndarray] = {}
        self._memo: dict[Any, Any] = {}

    # --- the generation -------------------------------------------------------------------------------------

    @property
    def saved(self) -> bool:
        """False for a snapshot held in memory only (the index could not be written)."""
        return self._saved

    @property
    def n_docs(self) -> int:
        return int(self.manifest.docs)

    @property
    def n_files(self) -> int:
        return int(self.manifest.files)

    def file_live(self, number: int) -> np.ndarray:
        """The live mask of segment ``number``'s files (a tombstone is a false)."""
        return self._live[number]

    def verify(self) -> None:
        """Check every file of the generation and its segments against its checksum.

        :raises IndexCorrupt: naming the first file that fails.
        """
        if not self.saved:
            return
        check_parts(self.folder, self.manifest.parts, full=True)
        for segment in self.segments:
            segment.verify()

    def segment_rows(self) -> list[np.ndarray]:
        """For each segment, its rows that are live memories of this snapshot (ascending)."""
        if self._rows is None:
            dead: dict[int, list[int]] = {}
            for number, row in self.manifest.dead_docs:
                dead.setdefault(number, []).append(row)
            rows = []
            for number, segment in enumerate(self.segments):
                live = (
                    self._live[number][np.asarray(segment.array("docs.file"))] if segment.n_docs else np.zeros(0, bool)
                )
                if number in dead:
                    live[dead[number]] = False
                rows.append(np.flatnonzero(live))
            self._rows = rows
            self._offsets = np.cumsum([0] + [len(r) for r in rows]).tolist()
        return self._rows

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, kept under ``key`` for the snapshot's life (a snapshot never changes): what every recall
        derives alike, such as the candidates of the default filters."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def row_places(self) -> list[np.ndarray | None]:
        """For each segment, the snapshot row of each of its rows (-1 when tombstoned); None for a segment with
        no tombstone, whose row r is the snapshot row r + its offset."""

        def places() -> list[np.ndarray | None]:
            out: list[np.ndarray | None] = []
            for number, (seg, rows) in enumerate(zip(self.segments, self.segment_rows(), strict=True)):
                if len(rows) == seg.n_docs:
                    out.append(None)
                    continue
                place = np.full(seg.n_docs, -1, dtype=np.int64)
                place[rows] = np.arange(len(rows), dtype=np.int64) + self._offsets[number]
                out.append(place)
            return out

        return self.memo("row places", places)  # type: ignore[no-any-return]

    def segment_offsets(self) -> list[int]:
        """The snapshot row of each segment's first live memory, and the number of memories last."""
        self.segment_rows()
        return self._offsets

    def doc_lengths(self) -> np.ndarray:
        """Every memory's length in terms (float64, as BM25 weighs it)."""
        return self.memo("lengths", lambda: self._per_row("docs.len").astype(np.float64))  # type: ignore[no-any-return]

    def _locate(self, rows: Iterable[int]) -> list[tuple[int, int]]:
        """(segment, row in it) of each snapshot row."""
        import bisect

        per_segment = self.segment_rows()
        offsets = self._offsets
        out = []
        for row in rows:
            number = bisect.bisect_right(offsets, row) - 1
            if row < 0 or number >= len(per_segment):
                raise IndexError(f"row {row} of a snapshot of {self.n_docs} memories")
            out.append((number, int(per_segment[number][row - offsets[number]])))
        return out

    def _gather(self, rows: Iterable[int], read: Any) -> list[Any]:
        """``read(segment, its rows)`` for the rows of each segment, put back in the order asked."""
        located = self._locate(rows)
        by_segment: dict[int, list[int]] = {}
        for number, local in located:
            by_segment.setdefault(number, []).append(local)
        answers = {
            number: dict(zip(local, read(self.segments[number], local), strict=True))
            for number, local in by_segment.items()
        }
        return [answers[number][local] for number, local in located]

    def _per_row(self, name: str) -> np.ndarray:
        """A per-memory array of every segment, its live rows laid end to end."""
        parts = [
            _take(np.asarray(seg.array(name)), rows, seg.n_docs)
            for seg, rows in zip(self.segments, self.segment_rows(), strict=True)
        ]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros(0)

    # --- memories -------------------------------------------------------------------------------------------

    def record_lines(self, rows: Iterable[int]) -> list[bytes]:
        return self._gather(rows, lambda segment, local: segment.record_lines(local))

    def records(self, rows: Iterable[int]) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.record_lines(rows)]

    def doc_paths(self, rows: Iterable[int]) -> list[str]:
        def read(segment: Segment, local: list[int]) -> list[str]:
            doc_file = segment.array("docs.file")
            return [segment.paths[int(doc_file[row])] for row in local]

        return self._gather(rows, read)

    def doc_blob_ids(self, rows: Iterable[int]) -> list[str]:
        """The blob id (hex) of the file of each memory ``rows``."""

        def read(segment: Segment, local: list[int]) -> list[str]:
            doc_file, blob = segment.array("docs.file"), segment.array("files.blob")
            return [bytes(blob[int(doc_file[row])]).decode("ascii") for row in local]

        return self._gather(rows, read)

    def doc_blobs(self) -> np.ndarray:
        """The blob id (hex, S40) of every memory."""
        parts = [
            np.asarray(seg.array("files.blob"))[np.asarray(seg.array("docs.file"))[rows]]
            for seg, rows in zip(self.segments, self.segment_rows(), strict=True)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype="S40")

    def ids(self) -> list[str]:
        return [raw.decode("utf-8", "replace") for raw in self._per_row("docs.id").tolist()]

    def id_bytes(self) -> np.ndarray:
        """Every memory's id as fixed-width bytes (``S64``), for whole-array lookups (the ledger's prior)."""
        return self._per_row("docs.id")

    def codes(self, name: str) -> np.ndarray:
        """Each memory's ``name`` attribute (format, status, scope, outcome) as its index in the schema's tuple
        (kept: every recall's filters read them, and a snapshot never changes)."""
        if name not in self._codes:
            column, _values = _COLUMNS[name]
            parts = [
                np.asarray(seg.array("attrs"))[rows, column]
                for seg, rows in zip(self.segments, self.segment_rows(), strict=True)
            ]
            self._codes[name] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
        return self._codes[name]

    def attr_in(self, name: str, values: Iterable[str]) -> np.ndarray:
        """Whether each memory's ``name`` attribute is one of ``values``."""
        _column, known = _COLUMNS[name]
        table = np.zeros(256, dtype=bool)  # codes are uint8: a lookup, ~10x faster than np.isin
        table[[known.index(v) for v in values if v in known]] = True
        found: np.ndarray = table[self.codes(name)]
        return found

    def label_mask(self, names: Iterable[str]) -> np.ndarray:
        """Whether each memory has one of the labels ``names`` ("d:<domain>", "t:<tag>", lower case)."""
        wanted_names = set(names)
        parts = []
        for seg, rows in zip(self.segments, self.segment_rows(), strict=True):
            wanted = [i for i, name in enumerate(seg.labels) if name in wanted_names]
            has = np.zeros(seg.n_docs, dtype=bool)
            if wanted:
                ptr, ids = np.asarray(seg.array("labels.ptr")), np.asarray(seg.array("labels.ids"))
                doc_of = np.repeat(np.arange(seg.n_docs), np.diff(ptr))
                has[doc_of[np.isin(ids, wanted)]] = True
            parts.append(has[rows])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)

    def labels_of(self, row: int) -> list[str]:
        ((number, local),) = self._locate([row])
        seg = self.segments[number]
        ptr, ids = seg.array("labels.ptr"), seg.array("labels.ids")
        return [seg.labels[int(i)] for i in ids[int(ptr[local]) : int(ptr[local + 1])]]

    def terms_of(self, row: int) -> set[bytes]:
        """The distinct terms (UTF-8) of a memory."""
        ((number, local),) = self._locate([row])
        return self.segments[number].terms_of(local)

    def vector_blocks(self, block: int = 32768) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, float32 vectors) of every memory, a block at a time."""
        start = 0
        for seg, rows in zip(self.segments, self.segment_rows(), strict=True):
            for begin in range(0, len(rows), block):
                yield start + begin, seg.vectors(rows[begin : begin + block])
            start += len(rows)

    def dense_scores(
        self, vector: np.ndarray, rows: np.ndarray | None = None, heads: np.ndarray | None = None
    ) -> np.ndarray:
        """Cosine of every memory (or of the memories ``rows``, in that order) with ``vector``. Every memory: a
        product over each segment's whole map (a tombstoned row costs less than gathering the live ones first).
        ``heads``: the head products of ``rows`` from :meth:`dense_stage`, so that only their tails are read."""
        per_segment = self.segment_rows()
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            if len(per_segment) == 1:  # most snapshots: no search for each row's segment
                return self.segments[0].dense(vector, per_segment[0][rows], heads)
            out = np.empty(len(rows), dtype=np.float32)
            number = np.searchsorted(self._offsets, rows, side="right") - 1
            for n in np.unique(number).tolist():
                mine = number == n
                local = per_segment[n][rows[mine] - self._offsets[n]]
                out[mine] = self.segments[n].dense(vector, local, None if heads is None else heads[mine])
            return out
        out = np.empty(self.n_docs, dtype=np.float32)
        start = 0
        for seg, live in zip(self.segments, per_segment, strict=True):
            scores = seg.dense(vector)
            out[start : start + len(live)] = scores[live] if len(live) < seg.n_docs else scores
            start += len(live)
        return out

    def dense_stage(self, vector: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first stage of a two-stage dense score over the memories ``mask`` (a boolean mask over rows):
        the cosine of each of them with the head of ``vector`` only, and the exact sums over them of the head
        cosine h and the full cosine d: ``[n, sum h, sum h^2, sum d, sum d^2, sum h d]`` (float64).

        A segment with moments gets the sums from them in a few small products, less the exact part of its rows
        left out (tombstoned or not in ``mask``); one with no moments, or with more than a quarter of its rows
        left out, is scored in full (cheaper then).
        """
        vector = np.asarray(vector, dtype=np.float32)
        heads, sums = [], np.zeros(6, dtype=np.float64)
        start = 0
        for seg, live in zip(self.segments, self.segment_rows(), strict=True):
            split = seg.head_dims
            q64 = vector.astype(np.float64)
            chosen = mask[start : start + len(live)]
            wanted = live if chosen.all() else live[chosen]  # all: no filter (a gather of 100k rows: 0.2 ms)
            start += len(live)
            head = seg.head_scores(vector)
            heads.append(head if len(wanted) == seg.n_docs else head[wanted])
            moments = seg.moments()
            left_out = seg.n_docs - len(wanted)
            if moments is not None and left_out <= seg.n_docs // 4:
                sums += _moment_sums(*moments, q64, split, seg.n_docs)
                if left_out:
                    sums -= _moment_sums(*self._left_out(seg, wanted, chosen), q64, split, left_out)
            else:
                sums += _sums(head[wanted], seg.dense(vector)[wanted])
        if len(heads) == 1:  # most snapshots: no copy
            return heads[0], sums
        return (np.concatenate(heads) if heads else np.zeros(0, dtype=np.float32)), sums

    def _left_out(self, seg: Segment, wanted: np.ndarray, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The moments of the rows of ``seg`` not in ``wanted`` (tombstoned or filtered out), kept for the last
        few sets of rows: the same filters leave out the same rows at every recall, and gathering their whole
        vectors each time cost more than the rest of the first stage."""
        kept: dict[tuple[str, bytes], tuple[np.ndarray, np.ndarray]] = self.memo("left out", dict)
        key = (seg.name, chosen.tobytes())  # which live rows are wanted: a bit each, not a row number
        if key not in kept:
            out = np.ones(seg.n_docs, dtype=bool)
            out[wanted] = False
            if len(kept) >= 4:
                del kept[next(iter(kept))]
            kept[key] = vector_moments(seg.vectors(np.flatnonzero(out)))
        return kept[key]

    # --- files ----------------------------------------------------------------------------------------------

    @property
    def files(self) -> list[str]:
        """Every live file's path (memories or not), in the working tree's order."""
        if self._files is None:
            paths = [
                seg.paths[i]
                for number, seg in enumerate(self.segments)
                for i in np.flatnonzero(self._live[number]).tolist()
            ]
            self._files = sorted(paths, key=path_key)
        return self._files

    def blob_of(self, path: str) -> str | None:
        """The blob id of a live file, None when the snapshot has no such file."""
        for number, seg in enumerate(self.segments):
            live = self._live[number]
            for i, rel in enumerate(seg.paths):
                if rel == path and live[i]:
                    return bytes(seg.array("files.blob")[i]).decode()
        return None

    def file_tables(self) -> Iterator[tuple[list[str], np.ndarray, np.ndarray, np.ndarray]]:
        """(paths, stats, blob ids, live mask) of each segment's files."""
        for number, seg in enumerate(self.segments):
            yield seg.paths, seg.array("files.stat"), seg.array("files.blob"), self._live[number]

    def problems(self) -> list[dict[str, Any]]:
        """Every problem of the live files, file by file in the working tree's order."""
        found = [p for number, seg in enumerate(self.segments) for i, p in seg.problems() if self._live[number][i]]
        found += self.dup_problems()
        named = {str(p.get("path", "")) for p in found}
        found += [  # listed but not read (a broken symlink, no permission), or a folder not listed: no row holds them
            {"path": rel, "line": 0, "severity": "error", "code": "unreadable", "message": UNREAD}
            for rel in self.manifest.unreadable
            if rel not in named
        ]
        return sorted(found, key=lambda p: path_key(str(p.get("path", ""))))

    def dup_problems(self) -> list[dict[str, Any]]:
        """The problems that depend on several files: ids used twice."""
        if self.saved:
            return json.loads((self.folder / "problems.json").read_bytes())  # type: ignore[no-any-return]
        return self._dup_problems


def _take(array: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """``array[rows]``, without the copy when ``rows`` are all of its rows."""
    return array if len(rows) == n_rows else array[rows]


def _moment_sums(total: np.ndarray, gram: np.ndarray, q64: np.ndarray, split: int, count: int) -> np.ndarray:
    """``[n, sum h, sum h^2, sum d, sum d^2, sum h d]`` of rows with these moments, for the query ``q64``."""
    full_gram = gram @ q64
    return np.array(
        [
            count,
            total[:split] @ q64[:split],
            q64[:split] @ gram[:split, :split] @ q64[:split],
            total @ q64,
            q64 @ full_gram,
            q64[:split] @ full_gram[:split],
        ]
    )


def _sums(head: np.ndarray, dense: np.ndarray) -> np.ndarray:
    h, d = head.astype(np.float64), dense.astype(np.float64)
    return np.array([len(h), h.sum(), h @ h, d.sum(), d @ d, h @ d])


def open_current(index_dir: Path) -> Snapshot | None:
    """The live snapshot of ``index_dir``, or None when there is none or it is damaged (said on stderr: the
    caller builds a new one)."""
    try:
        name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        note(f"ignoring a damaged index in {index_dir} (CURRENT names no snapshot)")
        return None
    try:
        return Snapshot(index_dir / name)
    except IndexCorrupt as exc:
        if (index_dir / name / "manifest.json").exists() and "written by index version" not in str(exc):
            note(f"ignoring a damaged index in {index_dir} ({exc})")
        return None
