"""Segments: immutable folders of numpy arrays holding a set of files and the memories among them.

A segment holds its own file table (paths, stats, blob ids, the memory of each file), the memories' records,
ids, attributes, labels, term counts (by document and by term), lengths and vectors, and the problems of its
files. Segments never change once written: a generation (see snapshot.py) says which of their files are live.

Every file of a segment folder is listed in its ``manifest.json`` with its size, CRC-32 and the mtime and ctime
it had once written, and the manifest carries its own CRC-32 (see common.py).

Vectors are stored as a contiguous head (the first :data:`HEAD_DIMS` dimensions: a PCA-ordered model puts the
most energy first) and the tail, so that recall's first stage reads a twelfth of the bytes; a segment of at least
:data:`MOMENTS_MIN_DOCS` memories also stores the sum of its vectors and their second moment (``X^T X``), from
which recall gets the mean and spread of every query's dense scores without the full product (recall.py).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mtlgit.index.arrays import concat_ptrs, count_terms, doc_lengths, gather_rows, postings
from mtlgit.index.common import (
    ATTRS,
    INDEX_VERSION,
    PATHS,
    IndexCorrupt,
    check_parts,
    file_crc,
    manifest_bytes,
    path_key,
    read_manifest,
)

# The dimensions of the stored head of each vector: recall's first stage scores every memory on these only.
# 32 of the default model's 376 hold 28% of the vectors' energy at 100k; with the best 300 + k rescored, the
# top 10 equalled the exhaustive ones for every query of benchmarks/bench_two_stage.py, and a call took ~15%
# less CPU than with 64 (46%).
HEAD_DIMS = 32
# Below this many memories a segment stores no moments: recall scores it in full (cheaper than 1 MB of moments).
MOMENTS_MIN_DOCS = 4096


@dataclass
class FileInput:
    """One file of a source: its path, stat (size, mtime_ns, inode), blob id and problems."""

    rel: str
    stat: list[int]
    blob: str
    problems: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DocInput:
    """One memory freshly analysed: the file it is in, its record, terms and vector, and its line of
    ``records.jsonl`` when a worker encoded it already."""

    file_index: int
    record: dict[str, Any]
    terms: list[str]
    vector: np.ndarray | None = None
    line: bytes | None = None


@dataclass
class SegmentData:
    """A segment in memory, before it is written (or when it cannot be)."""

    paths: list[str]
    stat: np.ndarray  # int64 (files, 3)
    blob: np.ndarray  # S40 hex: numpy's fixed-width bytes drop trailing NULs, which raw ids may end with
    file_doc: np.ndarray  # int32: the file's memory, -1 for a file that is not one
    problems: list[tuple[int, dict[str, Any]]]  # (file, problem)
    doc_file: np.ndarray  # int32
    ids: np.ndarray  # S64
    keys: np.ndarray  # S64: the id upper-cased, which duplicates are found by
    attrs: np.ndarray  # uint8 (docs, len(ATTRS)): index of each value in its schema tuple
    labels: list[str]  # "d:<domain>", "t:<tag>"
    labels_ptr: np.ndarray
    labels_ids: np.ndarray
    vocab: np.ndarray  # sorted UTF-8 bytes
    tf_ptr: np.ndarray
    tf_term: np.ndarray
    tf_count: np.ndarray
    vectors: np.ndarray  # float32 (docs, dim): recall multiplies them with no conversion per query
    records: list[bytes]

    @property
    def n_docs(self) -> int:
        return len(self.doc_file)


def record_line(record: dict[str, Any]) -> bytes:
    """A record's line of ``records.jsonl``."""
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def from_docs(files: Sequence[FileInput], docs: Sequence[DocInput], dim: int) -> SegmentData:
    """A segment of ``files``, the memories among them being ``docs`` (in file order)."""
    file_doc = np.full(len(files), -1, dtype=np.int32)
    for row, doc in enumerate(docs):
        file_doc[doc.file_index] = row
    vocab, tf_ptr, tf_term, tf_count = count_terms([d.terms for d in docs])
    n = len(docs)
    # Built as lists and converted once: a numpy element write costs as much as the rest of a row's work.
    vectors = np.zeros((n, dim), dtype=np.float32)
    given = [(row, doc.vector) for row, doc in enumerate(docs) if doc.vector is not None]
    if given:
        vectors[[row for row, _vector in given]] = np.stack([vector for _row, vector in given])
    records = [doc.line or record_line(doc.record) for doc in docs]
    raw_ids = [str(doc.record.get("id", "")) for doc in docs]
    ids = np.array([i.encode("utf-8")[:64] for i in raw_ids], dtype="S64")
    keys = np.array([i.upper().encode("utf-8")[:64] for i in raw_ids], dtype="S64")
    attrs = np.array(
        [
            [values.index(value) if (value := doc.record.get(key)) in values else 0 for key, values in ATTRS]
            for doc in docs
        ],
        dtype=np.uint8,
    ).reshape(n, len(ATTRS))
    label_index: dict[str, int] = {}
    label_rows: list[list[int]] = []
    for doc in docs:
        record = doc.record
        names = [f"d:{v.lower()}" for v in record.get("domains", ())] + [
            f"t:{v.lower()}" for v in record.get("tags", ())
        ]
        label_rows.append([label_index.setdefault(name, len(label_index)) for name in dict.fromkeys(names)])
    labels_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(r) for r in label_rows], out=labels_ptr[1:])
    return SegmentData(
        paths=[f.rel for f in files],
        stat=np.array([f.stat for f in files], dtype=np.int64).reshape(len(files), 3),
        blob=np.array([f.blob.encode() for f in files], dtype="S40"),
        file_doc=file_doc,
        problems=[(i, p) for i, f in enumerate(files) for p in f.problems],
        doc_file=np.array([d.file_index for d in docs], dtype=np.int32),
        ids=ids,
        keys=keys,
        attrs=attrs,
        labels=list(label_index),
        labels_ptr=labels_ptr,
        labels_ids=np.array([j for r in label_rows for j in r], dtype=np.int32),
        vocab=vocab,
        tf_ptr=tf_ptr,
        tf_term=tf_term,
        tf_count=tf_count,
        vectors=vectors,
        records=records,
    )


def take(data: SegmentData, keep: np.ndarray) -> SegmentData:
    """The files ``keep`` (file indexes, in the order given) and their memories, as a new segment."""
    keep = np.asarray(keep, dtype=np.int64)
    docs_of = data.file_doc[keep]
    is_doc = docs_of >= 0
    rows = docs_of[is_doc].astype(np.int64)
    file_doc = np.full(len(keep), -1, dtype=np.int32)
    file_doc[is_doc] = np.arange(len(rows), dtype=np.int32)
    new_file = np.full(len(data.paths), -1, dtype=np.int64)
    new_file[keep] = np.arange(len(keep))
    tf_ptr, (tf_term, tf_count) = gather_rows(data.tf_ptr, rows, data.tf_term, data.tf_count)
    labels_ptr, (labels_ids,) = gather_rows(data.labels_ptr, rows, data.labels_ids)
    problems = sorted(((int(new_file[i]), p) for i, p in data.problems if new_file[i] >= 0), key=lambda item: item[0])
    return SegmentData(
        paths=[data.paths[i] for i in keep.tolist()],
        stat=data.stat[keep],
        blob=data.blob[keep],
        file_doc=file_doc,
        problems=problems,
        doc_file=np.flatnonzero(is_doc).astype(np.int32),
        ids=data.ids[rows],
        keys=data.keys[rows],
        attrs=data.attrs[rows],
        labels=data.labels,
        labels_ptr=labels_ptr,
        labels_ids=labels_ids,
        vocab=data.vocab,
        tf_ptr=tf_ptr,
        tf_term=tf_term,
        tf_count=tf_count,
        vectors=data.vectors[rows],
        records=[data.records[r] for r in rows.tolist()],
    )


def concat(parts: Sequence[SegmentData], dim: int, consume: bool = False) -> SegmentData:
    """One segment of the files of ``parts``, in path order (the order a build from nothing gives), with one
    vocabulary and one label table; terms and labels no memory uses are dropped.

    :param consume: the parts are not used afterwards: each part's vectors are dropped once copied, so that the
        join never holds two copies of them (150 MB at 100k memories).
    """
    vocabs = [p.vocab for p in parts if len(p.vocab)]
    vocab = np.unique(np.concatenate(vocabs)) if vocabs else np.array([], dtype="S1")
    tf_term = [np.searchsorted(vocab, p.vocab)[p.tf_term] if len(p.tf_term) else p.tf_term for p in parts]
    label_index: dict[str, int] = {}
    labels_ids = []
    for p in parts:
        mapping = np.array([label_index.setdefault(name, len(label_index)) for name in p.labels], dtype=np.int32)
        labels_ids.append(mapping[p.labels_ids] if len(p.labels_ids) else p.labels_ids)
    file_base = np.cumsum([0] + [len(p.paths) for p in parts])
    doc_base = np.cumsum([0] + [p.n_docs for p in parts])
    file_doc = [np.where(p.file_doc >= 0, p.file_doc + doc_base[i], -1) for i, p in enumerate(parts)]
    whole = SegmentData(
        paths=[path for p in parts for path in p.paths],
        stat=np.concatenate([p.stat for p in parts]) if parts else np.zeros((0, 3), np.int64),
        blob=np.concatenate([p.blob for p in parts]) if parts else np.zeros(0, "S40"),
        file_doc=np.concatenate(file_doc).astype(np.int32) if parts else np.zeros(0, np.int32),
        problems=[(i + int(file_base[n]), prob) for n, p in enumerate(parts) for i, prob in p.problems],
        doc_file=np.concatenate([p.doc_file + file_base[n] for n, p in enumerate(parts)]).astype(np.int32)
        if parts
        else np.zeros(0, np.int32),
        ids=np.concatenate([p.ids for p in parts]) if parts else np.zeros(0, "S64"),
        keys=np.concatenate([p.keys for p in parts]) if parts else np.zeros(0, "S64"),
        attrs=np.concatenate([p.attrs for p in parts]) if parts else np.zeros((0, len(ATTRS)), np.uint8),
        labels=list(label_index),
        labels_ptr=concat_ptrs([p.labels_ptr for p in parts]),
        labels_ids=np.concatenate(labels_ids).astype(np.int32) if parts else np.zeros(0, np.int32),
        vocab=vocab,
        tf_ptr=concat_ptrs([p.tf_ptr for p in parts]),
        tf_term=np.concatenate(tf_term).astype(np.int32) if parts else np.zeros(0, np.int32),
        tf_count=np.concatenate([p.tf_count for p in parts]).astype(np.uint32) if parts else np.zeros(0, np.uint32),
        vectors=_joined_vectors(parts, dim, consume),
        records=[r for p in parts for r in p.records],
    )
    order = sorted(range(len(whole.paths)), key=lambda i: path_key(whole.paths[i]))
    # Chunks of a build come in path order already: no second copy of every array then.
    out = whole if order == list(range(len(order))) else take(whole, np.array(order, dtype=np.int64))
    used = np.zeros(len(out.vocab), dtype=bool)
    used[out.tf_term] = True
    if not used.all():
        out.tf_term = ((np.cumsum(used) - 1)[out.tf_term]).astype(np.int32)
        out.vocab = out.vocab[used]
    return out


def _joined_vectors(parts: Sequence[SegmentData], dim: int, consume: bool) -> np.ndarray:
    if not consume:
        return np.concatenate([p.vectors for p in parts]) if parts else np.zeros((0, dim), np.float32)
    out = np.empty((sum(len(p.vectors) for p in parts), dim), dtype=np.float32)
    at = 0
    for part in parts:
        out[at : at + len(part.vectors)] = part.vectors
        at += len(part.vectors)
        part.vectors = np.zeros((0, dim), np.float32)
    return out


def segment_parts(data: SegmentData) -> tuple[dict[str, np.ndarray], dict[str, bytes | list[bytes]], dict[str, Any]]:
    """The arrays, other files and manifest fields of a segment as written. The vectors' head and tail are views
    and the records a list of lines, written as they are: a copy of each would add ~220 MB at 100k memories."""
    post_ptr, post_doc, post_tf = postings(data.tf_ptr, data.tf_term, data.tf_count, len(data.vocab))
    offsets = np.zeros(data.n_docs + 1, dtype=np.int64)
    np.cumsum([len(r) for r in data.records], out=offsets[1:])
    arrays = {
        "files.stat": data.stat,
        "files.blob": data.blob,
        "files.doc": data.file_doc,
        "docs.file": data.doc_file,
        "docs.id": data.ids,
        "docs.key": data.keys,
        "docs.len": doc_lengths(data.tf_ptr, data.tf_count),
        "attrs": data.attrs,
        "labels.ptr": data.labels_ptr,
        "labels.ids": np.asarray(data.labels_ids, dtype=np.int32),
        "vocab": data.vocab if len(data.vocab) else np.array([], dtype="S1"),
        "tf.ptr": data.tf_ptr,
        "tf.term": np.asarray(data.tf_term, dtype=np.int32),
        "tf.count": np.asarray(data.tf_count, dtype=np.uint32),
        "post.ptr": post_ptr,
        "post.doc": post_doc,
        "post.tf": post_tf,
        "records.off": offsets,
    }
    head = min(HEAD_DIMS, int(data.vectors.shape[1]))
    arrays["vectors.head"] = data.vectors[:, :head]
    arrays["vectors.tail"] = data.vectors[:, head:]
    if data.n_docs >= MOMENTS_MIN_DOCS:
        arrays["vectors.sum"], arrays["vectors.gram"] = vector_moments(data.vectors)
    blobs: dict[str, bytes | list[bytes]] = {
        PATHS: "\0".join(data.paths).encode("utf-8", "surrogateescape"),
        "records.jsonl": data.records,
        "problems.json": json.dumps([[i, p] for i, p in data.problems]).encode(),  # ASCII: a path holds any byte
    }
    manifest = {
        "version": INDEX_VERSION,
        "docs": data.n_docs,
        "files": len(data.paths),
        "labels": data.labels,
        "dim": int(data.vectors.shape[1]),
        "head": head,
        "moments": data.n_docs >= MOMENTS_MIN_DOCS,
    }
    return arrays, blobs, manifest


def vector_moments(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sum of the rows (float64) and their second moment ``X^T X`` (float64, accumulated over float32 blocks:
    half the time of float64 products, and ~1e-7 relative error, far below what reorders a top k)."""
    dim = int(vectors.shape[1])
    total = np.zeros(dim, dtype=np.float64)
    gram = np.zeros((dim, dim), dtype=np.float64)
    for begin in range(0, len(vectors), 8192):
        block = np.asarray(vectors[begin : begin + 8192], dtype=np.float32)
        total += block.sum(axis=0, dtype=np.float64)
        gram += block.T @ block
    return total, gram


def write_folder(
    folder: Path, arrays: dict[str, np.ndarray], blobs: Mapping[str, bytes | list[bytes]], manifest: dict[str, Any]
) -> None:
    """Write the files of a folder through a temporary twin renamed into place: a crash leaves no half folder.

    The manifest lists every file with its size, CRC-32 and times.
    """
    tmp = folder.parent / f".tmp-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        tmp.mkdir()
        for part, array in arrays.items():
            if array.flags.f_contiguous and not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)  # readers map every array in C order
            with open(tmp / f"{part}.npy", "wb") as handle:
                # numpy writes a view (a vectors' head) through a 16 MB buffer when handed a plain writer, and
                # element by element when handed a file
                np.save(handle if array.flags.c_contiguous else _Writer(handle), array, allow_pickle=False)
        for part, data in blobs.items():
            with open(tmp / part, "wb") as handle:
                handle.writelines([data] if isinstance(data, bytes) else data)
        parts = {}
        for entry in sorted(os.scandir(tmp), key=lambda e: e.name):
            st = entry.stat()
            parts[entry.name] = [st.st_size, file_crc(entry.path), st.st_mtime_ns, st.st_ctime_ns]
        (tmp / "manifest.json").write_bytes(manifest_bytes({**manifest, "parts": parts}))
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class _Writer:
    """A file seen only through ``write``."""

    def __init__(self, handle: BinaryIO) -> None:
        self.write = handle.write


class _Derived:
    """What a long-lived process derives from one segment folder, shared by every object open on it: how often
    its head was asked for and the transposed head (Segment.head_scores)."""

    __slots__ = ("__weakref__", "head_asks", "head_t", "parts")

    def __init__(self, parts: Any) -> None:
        self.parts = parts  # the folder's files as its manifest records them
        self.head_asks = 0
        self.head_t: np.ndarray | None = None


# By folder, while a Segment open on it lives (see Segment.__init__).
_DERIVED: weakref.WeakValueDictionary[str, _Derived] = weakref.WeakValueDictionary()


def new_name(prefix: str) -> str:
    return f"{prefix}-{time.time_ns():x}-{os.urandom(2).hex()}"


class Segment:
    """A segment folder read through memory maps; or, when it could not be saved, held in memory."""

    def __init__(self, folder: Path, data: SegmentData | None = None) -> None:
        """Open the segment in ``folder`` (its parts are stat-checked), or hold ``data`` in memory.

        :raises IndexCorrupt: when a file is missing, or fails its size or (if its times changed) checksum.
        """
        self.folder = folder
        self._arrays: dict[str, np.ndarray] = {}
        self._blobs: dict[str, bytes] | None = None
        self._paths: list[str] | None = None
        self._derived = _Derived(None)
        if data is not None:
            arrays, blobs, self.manifest = segment_parts(data)
            self._arrays = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
            self._blobs = {name: blob if isinstance(blob, bytes) else b"".join(blob) for name, blob in blobs.items()}
            return
        self.manifest = read_manifest(folder)
        check_parts(folder, self.manifest.get("parts"), full=False)
        # A segment folder never changes: a refresh opens the segments it keeps as new objects, which share the
        # transposed head a long-lived process made of them (~10 ms at 100k), not make it again.
        derived = _DERIVED.get(str(folder))
        if derived is None or derived.parts != self.manifest.get("parts"):
            derived = _Derived(self.manifest.get("parts"))
            _DERIVED[str(folder)] = derived
        self._derived = derived

    @property
    def _head_asks(self) -> int:
        return self._derived.head_asks

    @_head_asks.setter
    def _head_asks(self, value: int) -> None:
        self._derived.head_asks = value

    @property
    def _head_t(self) -> np.ndarray | None:
        return self._derived.head_t

    @_head_t.setter
    def _head_t(self, value: np.ndarray | None) -> None:
        self._derived.head_t = value

    @property
    def saved(self) -> bool:
        return self._blobs is None

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def n_docs(self) -> int:
        return int(self.manifest["docs"])

    @property
    def n_files(self) -> int:
        return int(self.manifest["files"])

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    def verify(self) -> None:
        """Check every file against its checksum, and the list of paths against the file count.

        :raises IndexCorrupt: naming the first file that fails.
        """
        if not self.saved:
            return
        check_parts(self.folder, self.manifest.get("parts"), full=True)
        if len(self.paths) != self.n_files:
            raise IndexCorrupt(f"{self.folder.name}/{PATHS} holds {len(self.paths)} paths, not {self.n_files}")

    def blob(self, name: str) -> bytes:
        if self._blobs is not None:
            return self._blobs[name]
        return (self.folder / name).read_bytes()

    def array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            try:
                # A plain view of the map: slicing a numpy.memmap costs ~10x more (each slice is a memmap too).
                mapped = np.load(os.path.join(self.folder, f"{name}.npy"), mmap_mode="r", allow_pickle=False)
                self._arrays[name] = np.asarray(mapped)
            except (OSError, ValueError) as exc:
                raise IndexCorrupt(f"{self.folder.name}/{name}.npy unreadable ({exc})") from None
        return self._arrays[name]

    @property
    def paths(self) -> list[str]:
        if self._paths is None:
            data = self.blob(PATHS)
            self._paths = data.decode("utf-8", "surrogateescape").split("\0") if data else []
        return self._paths

    def record_lines(self, rows: Iterable[int]) -> list[bytes]:
        wanted = list(rows)
        offsets = self.array("records.off")
        if self._blobs is not None or len(wanted) > 64:  # many rows: one read and slices
            data = self.blob("records.jsonl")
            bounds = offsets.tolist()
            return [data[bounds[row] : bounds[row + 1]] for row in wanted]
        out = []
        with open(self.folder / "records.jsonl", "rb") as handle:
            for row in wanted:
                start, end = int(offsets[row]), int(offsets[row + 1])
                handle.seek(start)
                out.append(handle.read(end - start))
        return out

    def problems(self) -> list[tuple[int, dict[str, Any]]]:
        """(file, problem) of every file of the segment that has one."""
        return [(int(i), p) for i, p in json.loads(self.blob("problems.json"))]

    def postings_of(self, terms: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(position in ``terms``, documents, counts) of each of the sorted ``terms`` that a document of the
        segment holds: the vocabulary searched once for all of them (a search per term cost ~0.1 ms)."""
        vocab = self.array("vocab")
        if not len(vocab) or not len(terms):
            return []
        at = np.minimum(np.searchsorted(vocab, terms), len(vocab) - 1)
        held = np.flatnonzero(vocab[at] == terms)
        ptr, docs, counts = self.array("post.ptr"), self.array("post.doc"), self.array("post.tf")
        starts, ends = ptr[at[held]].tolist(), ptr[at[held] + 1].tolist()
        return [
            (i, docs[start:end], counts[start:end]) for i, start, end in zip(held.tolist(), starts, ends, strict=True)
        ]

    @property
    def head_dims(self) -> int:
        return int(self.manifest["head"])

    def vectors(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The float32 vectors of ``rows`` (default: all), head and tail joined."""
        head, tail = self.array("vectors.head"), self.array("vectors.tail")
        if rows is not None:
            head, tail = head[rows], tail[rows]
        return np.hstack([head, tail]) if tail.shape[1] else np.array(head)

    def head_scores(self, vector: np.ndarray) -> np.ndarray:
        """Every row's dot product with the head of the float32 ``vector`` (the first stage of two-stage recall).

        The stored head is row-major (n x 32), and BLAS computes that product ~4x slower than the same product
        over its transpose (32 x n: 1.3 ms against 0.3 ms at 100k rows). A one-shot recall asks once, and the
        transpose (~10 ms at 100k) would cost more than it saves; a long-lived process (the MCP server) asks
        again, so the segment keeps a transposed copy from its second first stage on (4 bytes x 32 a row).
        """
        q_head = np.ascontiguousarray(vector[: self.head_dims], dtype=np.float32)
        if self._head_t is None:
            self._head_asks += 1
            if self._head_asks < 2:
                head = self.array("vectors.head")
                out = np.empty(self.n_docs, dtype=np.float32)
                for begin in range(0, self.n_docs, 32768):
                    out[begin : begin + 32768] = head[begin : begin + 32768] @ q_head
                return out
            self._head_t = np.ascontiguousarray(self.array("vectors.head").T)
        scores: np.ndarray = q_head @ self._head_t
        return scores

    def dense(self, vector: np.ndarray, rows: np.ndarray | None = None, heads: np.ndarray | None = None) -> np.ndarray:
        """Cosine of ``rows`` (default: all) with the float32 unit ``vector``, in blocks of 32768 rows. ``heads``,
        the products of those rows' heads already taken (:meth:`head_scores`), spares gathering the heads: a
        row's head and tail live in two files, so that is one more cache miss a row."""
        head, tail = self.array("vectors.head"), self.array("vectors.tail")
        split = self.head_dims
        if rows is not None:
            # np.take gathers rows ~25% faster than fancy indexing.
            tails: np.ndarray = np.take(tail, rows, axis=0) @ vector[split:]
            if heads is None:
                heads = np.take(head, rows, axis=0) @ vector[:split]
            return heads + tails  # type: ignore[no-any-return]
        out = np.empty(self.n_docs, dtype=np.float32)
        for begin in range(0, self.n_docs, 32768):
            end = begin + 32768
            out[begin:end] = head[begin:end] @ vector[:split] + tail[begin:end] @ vector[split:]
        return out

    def moments(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(sum of the vectors, ``X^T X``) over every row of the segment, tombstoned or not; None when not stored."""
        if not self.manifest.get("moments"):
            return None
        return self.array("vectors.sum"), self.array("vectors.gram")

    def terms_of(self, row: int) -> set[bytes]:
        ptr, term, vocab = self.array("tf.ptr"), self.array("tf.term"), self.array("vocab")
        return {bytes(vocab[t]) for t in term[int(ptr[row]) : int(ptr[row + 1])].tolist()}

    def load(self) -> SegmentData:
        """The whole segment in memory (for a merge)."""
        return SegmentData(
            paths=list(self.paths),
            stat=np.asarray(self.array("files.stat")),
            blob=np.asarray(self.array("files.blob")),
            file_doc=np.asarray(self.array("files.doc")),
            problems=self.problems(),
            doc_file=np.asarray(self.array("docs.file")),
            ids=np.asarray(self.array("docs.id")),
            keys=np.asarray(self.array("docs.key")),
            attrs=np.asarray(self.array("attrs")),
            labels=self.labels,
            labels_ptr=np.asarray(self.array("labels.ptr")),
            labels_ids=np.asarray(self.array("labels.ids")),
            vocab=np.asarray(self.array("vocab")),
            tf_ptr=np.asarray(self.array("tf.ptr")),
            tf_term=np.asarray(self.array("tf.term")),
            tf_count=np.asarray(self.array("tf.count")),
            vectors=self.vectors(),
            records=self.record_lines(range(self.n_docs)),
        )
