"""The index: immutable snapshots of a set of memories, kept fresh by file stats, rebuilt from git.

A snapshot is a folder of named numpy arrays plus ``manifest.json``; ``CURRENT`` names the live one. A
refresh writes a new folder under a lock, then replaces ``CURRENT`` atomically, so a reader never sees
half an index and a crash leaves the last good one. Arrays are memory-mapped on read.

The working-tree snapshot records every memory file's (size, mtime_ns, inode), like git's own index;
:func:`is_fresh` re-checks them on every recall, and a refresh re-reads only the files whose stat changed,
and re-parses or re-embeds only contents (blob ids) the cache has never seen.

Integrity: the manifest carries its own CRC-32 and, for every other file, its size, CRC-32 and the mtime
and ctime it had once written. Opening a snapshot (every recall) checks the manifest and stats each file: a
changed size is damage, changed times mean the file was written since and its checksum must still match
(about 20 stats; a checksum of the whole folder would cost more than the recall). ``mtlgit index --check``
reads every checksum, which also finds damage that left the times alone. A damaged snapshot is never
served: it is ignored with a note on stderr and rebuilt. Where the folder cannot be written (read-only,
full), a snapshot is built in memory and the note says the index could not be saved.

This module is on the recall path: reading and checking a snapshot imports only numpy and the standard
library. Building one imports the parser, the cache and the model.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mtlgit.errors import MtlgitError
from mtlgit.progress import progress_bar
from mtlgit.schema import FORMATS, OUTCOMES, SCOPES, STATUSES

if TYPE_CHECKING:
    from mtlgit.cache import BlobCache
    from mtlgit.embed import StaticModel
    from mtlgit.repo import Repo

INDEX_VERSION = 6
K1, B = 1.5, 0.75  # BM25 parameters (Lucene's defaults; bm25s uses the same)
RACY_NS = 3_000_000_000  # a file changed this close to its stat may change again unseen: hash it
ATTRS = (("format", FORMATS), ("status", STATUSES), ("scope", SCOPES), ("outcome", OUTCOMES))
PATHS = "files.paths"  # every file's path, NUL-separated: the one byte a path cannot hold
# Errors that mean "this disk cannot take the index now", not "the index is damaged".
UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


class IndexCorrupt(Exception):
    """A snapshot folder is missing a file, has a truncated or altered one, or was written by another version."""


_NOTED: set[str] = set()


def note(message: str, if_done: bool = False) -> None:
    """One line on stderr for the user, once per process (through logging, which prints the bare message when
    nothing is set up). ``if_done``: only worth saying if the command succeeds (see errors.DEFERRED_NOTES)."""
    if message in _NOTED:
        return
    _NOTED.add(message)
    from mtlgit import errors

    if if_done and errors.DEFERRED_NOTES is not None:
        errors.DEFERRED_NOTES.append(f"mtlgit: {message}")
        return
    import logging

    logging.getLogger("mtlgit").warning("mtlgit: %s", message)


def file_crc(path: Path | str) -> int:
    """CRC-32 of a file's bytes, read in blocks."""
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """A manifest as written: JSON ending with the CRC-32 of all the text before it, so a changed digit is
    noticed without serialising the manifest again on every read."""
    head = json.dumps({key: value for key, value in manifest.items() if key != "check"}).encode()[:-1]
    return head + b', "check": %d}' % zlib.crc32(head)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        raw = (folder / "manifest.json").read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"{folder.name}/manifest.json is unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("version") != INDEX_VERSION:
        version = manifest.get("version") if isinstance(manifest, dict) else None
        raise IndexCorrupt(f"{folder.name}: written by index version {version}")
    head, _sep, _tail = raw.rpartition(b', "check": ')
    if manifest.pop("check", None) != zlib.crc32(head):
        raise IndexCorrupt(f"{folder.name}/manifest.json fails its checksum")
    return manifest


class Snapshot:
    """One immutable index folder, read through memory maps; or, when it could not be saved, held in memory.

    Every file of the folder is listed in the manifest's ``parts`` with its size, CRC-32 and the mtime and
    ctime it had once written. Opening a snapshot stats its files: a file whose size differs is damaged, and a
    file whose times differ was written since (a same-size overwrite) and must match its checksum.
    :meth:`verify` checks every checksum, which also finds damage that left the times alone.
    """

    def __init__(
        self,
        folder: Path,
        arrays: dict[str, np.ndarray] | None = None,
        blobs: dict[str, bytes] | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        """Open the snapshot in ``folder``; or, given its ``arrays``, other files (``blobs``) and ``manifest``,
        hold one in memory.

        :raises IndexCorrupt: when a file is missing, or fails its size or (if its times changed) checksum.
        """
        self.folder = folder
        self._arrays: dict[str, np.ndarray] = arrays or {}
        self._files: list[str] | None = None
        self._blobs = blobs
        self.unsaved_reason = ""  # why a snapshot held in memory could not be saved ("no space left on device")
        if blobs is not None and manifest is not None:
            self.manifest: dict[str, Any] = manifest
            return
        self.manifest = _read_manifest(folder)
        self._check_parts(full=False)

    @property
    def saved(self) -> bool:
        """False for a snapshot held in memory only (the index could not be written)."""
        return self._blobs is None

    def _check_parts(self, full: bool) -> None:
        parts = self.manifest.get("parts")
        if not isinstance(parts, dict):
            raise IndexCorrupt(f"{self.folder.name}/manifest.json lists no files")
        for name, (size, crc, mtime_ns, ctime_ns) in parts.items():
            path = self.folder / name
            try:
                st = os.stat(path)
            except OSError:
                raise IndexCorrupt(f"{self.folder.name}/{name} is missing") from None
            if st.st_size != size:
                raise IndexCorrupt(f"{self.folder.name}/{name} is {st.st_size} bytes, not {size}")
            if (full or st.st_mtime_ns != mtime_ns or st.st_ctime_ns != ctime_ns) and file_crc(path) != crc:
                raise IndexCorrupt(f"{self.folder.name}/{name} fails its checksum (it was altered)")

    def verify(self) -> None:
        """Check every file against its checksum, and the list of paths against the file count.

        :raises IndexCorrupt: naming the first file that fails.
        """
        if not self.saved:
            return
        self._check_parts(full=True)
        if len(self.files) != self.n_files:
            raise IndexCorrupt(f"{self.folder.name}/{PATHS} holds {len(self.files)} paths, not {self.n_files}")

    @property
    def n_docs(self) -> int:
        return int(self.manifest["docs"])

    @property
    def n_files(self) -> int:
        return int(self.manifest["files"])

    def _blob(self, name: str) -> bytes:
        if self._blobs is not None:
            return self._blobs[name]
        return (self.folder / name).read_bytes()

    def array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            try:
                self._arrays[name] = np.load(self.folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise IndexCorrupt(f"{self.folder.name}/{name}.npy unreadable ({exc})") from None
        return self._arrays[name]

    @property
    def files(self) -> list[str]:
        if self._files is None:
            data = self._blob(PATHS)
            self._files = data.decode("utf-8", "surrogateescape").split("\0") if data else []
        return self._files

    def record_lines(self, rows: Iterable[int]) -> list[bytes]:
        wanted = list(rows)
        offsets = self.array("records.off")
        if self._blobs is not None or len(wanted) > 64:  # many rows (a refresh): one read and slices
            data = self._blob("records.jsonl")
            bounds = offsets.tolist()
            return [data[bounds[row] : bounds[row + 1]] for row in wanted]
        out = []
        with open(self.folder / "records.jsonl", "rb") as handle:
            for row in wanted:
                start, end = int(offsets[row]), int(offsets[row + 1])
                handle.seek(start)
                out.append(handle.read(end - start))
        return out

    def records(self, rows: Iterable[int]) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.record_lines(rows)]

    def doc_paths(self, rows: Iterable[int]) -> list[str]:
        doc_file = self.array("docs.file")
        return [self.files[int(doc_file[row])] for row in rows]

    def problems(self) -> list[dict[str, Any]]:
        return json.loads(self._blob("problems.json"))  # type: ignore[no-any-return]


# --- where snapshots live ---------------------------------------------------------------------------------


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


def _stat_key(path: Path | str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def model_unchanged(manifest: dict[str, Any]) -> bool:
    """Whether the model files a snapshot was built with still have the same size and mtime."""
    for path, size, mtime_ns in manifest.get("model_files") or []:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if st.st_size != size or st.st_mtime_ns != mtime_ns:
            return False
    return True


def quick_fresh(snapshot: Snapshot, root: Path) -> bool:
    """The cheap part of :func:`is_fresh`: the configuration, every folder's mtime (files added, deleted or
    renamed) and the files written last. An edit in place of an older file is not seen."""
    return _config_and_folders_unchanged(snapshot, root) and _racy_unchanged(snapshot, root)


def _config_and_folders_unchanged(snapshot: Snapshot, root: Path) -> bool:
    manifest = snapshot.manifest
    if _stat_key(root / ".mtlgit.yaml") != manifest["config_stat"]:
        return False
    if manifest.get("config_racy"):  # written too close to the build for its stat to prove anything
        from mtlgit.ids import blob_id

        try:
            if blob_id((root / ".mtlgit.yaml").read_bytes()) != manifest["config_racy"]:
                return False
        except OSError:
            return False
    if not model_unchanged(manifest):
        return False
    for rel, mtime_ns in manifest["dirs"]:
        try:
            if os.stat(os.path.join(root, rel)).st_mtime_ns != mtime_ns:
                return False
        except OSError:
            return False
    # A folder changed too close to its listing may change again within the same mtime tick: its names must
    # still be those listed.
    for number, digest in manifest.get("racy_dirs") or []:
        try:
            names = os.listdir(os.path.join(root, manifest["dirs"][number][0]))
        except OSError:
            return False
        if listing_digest(names) != digest:
            return False
    return True


def listing_digest(names: Iterable[str]) -> str:
    """What a folder holds, as far as the index cares: its names, hidden ones (writers' temporary files) aside."""
    import hashlib

    listed = "\0".join(sorted(name for name in names if not name.startswith(".")))
    return hashlib.sha1(listed.encode("utf-8", "surrogateescape")).hexdigest()  # noqa: S324 - not security


def _stat_key_at(rel: str, fd: int) -> list[int] | None:
    try:
        st = os.stat(rel, dir_fd=fd)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def is_fresh(snapshot: Snapshot, root: Path) -> bool:
    """True when no memory file, folder or the configuration changed since ``snapshot`` was written."""
    if not _config_and_folders_unchanged(snapshot, root):
        return False
    files = snapshot.files
    if files:
        expected = snapshot.array("files.stat").tolist()
        stat = os.stat
        # Paths relative to an open folder: the kernel walks fewer components (~25% of this loop).
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            for rel, want in zip(files, expected, strict=True):
                st = stat(rel, dir_fd=fd)
                if st.st_mtime_ns != want[1] or st.st_size != want[0] or st.st_ino != want[2]:
                    return False
        except OSError:
            return False
        finally:
            os.close(fd)
    return _racy_unchanged(snapshot, root)


def _racy_unchanged(snapshot: Snapshot, root: Path) -> bool:
    """Files written too close to the snapshot for their stat to prove anything: compare their content."""
    racy = snapshot.manifest.get("racy") or []
    if not racy:
        return True
    from mtlgit.ids import blob_id

    files = snapshot.files
    blobs = snapshot.array("files.blob")
    for index in racy:
        try:
            data = (root / files[index]).read_bytes()
        except OSError:
            return False
        if blob_id(data).encode() != blobs[index]:
            return False
    return True


# --- building ---------------------------------------------------------------------------------------------


@dataclass
class DocInput:
    """One memory to put in a snapshot: from the previous snapshot (``old_row``) or freshly analysed."""

    file_index: int
    blob: str
    old_row: int | None = None
    record: dict[str, Any] | None = None
    terms: list[str] | None = None
    vector: np.ndarray | None = None


@dataclass
class FileInput:
    rel: str
    stat: list[int]
    blob: str
    doc: int = -1  # row in the snapshot's docs, -1 for a file that is not a memory
    problems: list[dict[str, Any]] = field(default_factory=list)


def write_snapshot(
    index_dir: Path,
    files: Sequence[FileInput],
    docs: Sequence[DocInput],
    old: Snapshot | None,
    manifest: dict[str, Any],
    dim: int,
    save: bool = True,
) -> Snapshot:
    """Write a new snapshot folder from its files and docs, make it CURRENT, and drop stale folders.

    When the disk cannot take it (read-only, full, not permitted) or ``save`` is false, the snapshot is
    returned in memory instead, and only the first case is said on stderr.
    """
    arrays = _doc_arrays(docs, old, dim)
    arrays["files.stat"] = np.array([f.stat for f in files], dtype=np.int64).reshape(len(files), 3)
    # Hex, not raw bytes: numpy's fixed-width bytes drop trailing NULs, which raw ids may end with.
    arrays["files.blob"] = np.array([f.blob.encode() for f in files], dtype="S40")
    arrays["files.doc"] = np.array([f.doc for f in files], dtype=np.int32)
    arrays["docs.file"] = np.array([d.file_index for d in docs], dtype=np.int32)
    records = arrays.pop("records")
    labels = arrays.pop("labels")
    problems = [p for f in files for p in f.problems]
    blobs = {
        PATHS: "\0".join(f.rel for f in files).encode("utf-8", "surrogateescape"),
        "records.jsonl": b"".join(records),
        "problems.json": json.dumps(problems).encode(),  # ASCII escapes: a path may hold any byte
    }
    manifest = {
        **manifest,
        "version": INDEX_VERSION,
        "docs": len(docs),
        "files": len(files),
        "problem_files": sum(1 for f in files if f.problems and f.doc < 0),
        "labels": labels.tolist(),
        "dim": dim,
    }
    reason = ""
    if save:
        try:
            return _save(index_dir, arrays, blobs, manifest, old)
        except OSError as exc:
            if exc.errno not in UNWRITABLE:
                raise
            reason = (exc.strerror or "cannot write").lower()
            note(
                f"could not save the index in {index_dir} ({exc.strerror}): built in memory for this run only",
                if_done=True,
            )
    snapshot = Snapshot(index_dir / "unsaved", arrays, blobs=blobs, manifest=manifest)
    snapshot.unsaved_reason = reason
    return snapshot


def _save(
    index_dir: Path,
    arrays: dict[str, np.ndarray],
    blobs: dict[str, bytes],
    manifest: dict[str, Any],
    old: Snapshot | None,
) -> Snapshot:
    """Write a snapshot folder and make it CURRENT; on any failure, leave nothing of it behind."""
    import shutil

    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = index_dir / f".tmp-{os.getpid()}-{os.urandom(4).hex()}"
    name = f"snap-{time.time_ns():x}-{os.urandom(2).hex()}"
    pointer = index_dir / f".CURRENT.{os.getpid()}"
    try:
        tmp.mkdir()
        for part, array in arrays.items():
            np.save(tmp / f"{part}.npy", array, allow_pickle=False)
        for part, data in blobs.items():
            (tmp / part).write_bytes(data)
        parts = {}
        for entry in sorted(os.scandir(tmp), key=lambda e: e.name):
            st = entry.stat()
            parts[entry.name] = [st.st_size, file_crc(entry.path), st.st_mtime_ns, st.st_ctime_ns]
        (tmp / "manifest.json").write_bytes(manifest_bytes({**manifest, "parts": parts}))
        os.rename(tmp, index_dir / name)
        pointer.write_text(name, encoding="utf-8")
        os.replace(pointer, index_dir / "CURRENT")
    except BaseException:
        pointer.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(index_dir / name, ignore_errors=True)
        raise
    _drop_old_snapshots(index_dir, keep={name, old.folder.name if old else ""})
    return Snapshot(index_dir / name)


def _drop_old_snapshots(index_dir: Path, keep: set[str]) -> None:
    """Remove snapshot folders other than the live one and its predecessor (a reader may still use it),
    and temporary folders of writers that died."""
    import shutil

    now = time.time()
    for entry in index_dir.iterdir():
        if entry.name in keep or not entry.is_dir():
            continue
        if entry.name.startswith(".tmp-") and now - entry.stat().st_mtime < 3600:
            continue  # perhaps a live writer
        shutil.rmtree(entry, ignore_errors=True)


def _gather_rows(ptr: np.ndarray, rows: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The given rows of a CSR structure: their lengths, and each values array's entries, row after row."""
    ptr = np.asarray(ptr)
    starts = ptr[rows]
    lengths = ptr[rows + 1] - starts
    index = np.repeat(starts - _exclusive_cumsum(lengths), lengths) + np.arange(int(lengths.sum()))
    return lengths, [np.asarray(v)[index] for v in values]


def _exclusive_cumsum(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=out[1:])
    return out


def _merge_rows(
    n: int, parts: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One CSR structure of ``n`` rows from parts (row positions, their lengths, their values arrays)."""
    lengths = np.zeros(n, dtype=np.int64)
    for positions, part_lengths, _values in parts:
        lengths[positions] = part_lengths
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    kinds = len(parts[0][2]) if parts else 0
    out = [np.zeros(int(ptr[-1]), dtype=np.int64) for _ in range(kinds)]
    for positions, part_lengths, values in parts:
        if not len(positions):
            continue
        index = np.repeat(ptr[positions] - _exclusive_cumsum(part_lengths), part_lengths)
        index += np.arange(int(part_lengths.sum()))
        for target, value in zip(out, values, strict=True):
            target[index] = value
    return ptr, out


def _doc_arrays(docs: Sequence[DocInput], old: Snapshot | None, dim: int) -> dict[str, Any]:
    """Every per-memory array of a snapshot. Rows kept from ``old`` are copied and remapped with whole-array
    operations, so a refresh after one change does not pay per-memory Python work for the others."""
    n = len(docs)
    old_at = np.array([i for i, d in enumerate(docs) if d.old_row is not None], dtype=np.int64)
    old_rows = np.array([d.old_row for d in docs if d.old_row is not None], dtype=np.int64)
    fresh = [d for d in docs if d.old_row is None]
    new_at = np.array([i for i, d in enumerate(docs) if d.old_row is None], dtype=np.int64)
    if len(old_rows) and old is None:
        raise ValueError("docs refer to an old snapshot that was not given")

    # Terms: old rows are remapped into the new vocabulary, new rows counted in one pass.
    flat = [t.encode("utf-8") for d in fresh for t in d.terms or ()]
    flat_doc = np.repeat(np.arange(len(fresh)), [len(d.terms or ()) for d in fresh])
    old_vocab = old.array("vocab") if old is not None and len(old_rows) else np.array([], dtype="S1")
    new_words = np.unique(np.array(flat, dtype=bytes)) if flat else np.array([], dtype="S1")
    vocab = np.union1d(old_vocab, new_words)
    parts = []
    if len(old_rows):
        assert old is not None
        lengths, (terms, counts) = _gather_rows(
            old.array("tf.ptr"), old_rows, old.array("tf.term"), old.array("tf.count")
        )
        parts.append((old_at, lengths, [np.searchsorted(vocab, old_vocab)[terms], counts]))
    if flat:
        term_of = np.searchsorted(vocab, np.array(flat, dtype=bytes))
        keys, counts = np.unique(flat_doc * len(vocab) + term_of, return_counts=True)
        lengths = np.bincount(keys // len(vocab), minlength=len(fresh))
        parts.append((new_at, lengths, [keys % len(vocab), counts]))
    else:
        parts.append((new_at, np.zeros(len(fresh), dtype=np.int64), [np.zeros(0, np.int64)] * 2))
    tf_ptr, (term_ids, counts) = _merge_rows(n, parts)
    used = np.zeros(len(vocab), dtype=bool)
    used[term_ids] = True
    vocab = vocab[used]
    term_ids = (np.cumsum(used) - 1)[term_ids]
    arrays: dict[str, Any] = {
        "vocab": vocab if len(vocab) else np.array([], dtype="S1"),
        "tf.ptr": tf_ptr,
        "tf.term": term_ids.astype(np.int32),
        "tf.count": counts.astype(np.uint32),
    }
    arrays.update(_bm25(tf_ptr, term_ids, counts.astype(np.uint32), len(vocab), n))

    # float32 here (float16 in the cache): recall multiplies these directly, with no conversion per query.
    vectors = np.zeros((n, dim), dtype=np.float32)
    if len(old_rows):
        assert old is not None
        vectors[old_at] = old.array("vectors")[old_rows]
    for i, d in zip(new_at.tolist(), fresh, strict=True):
        if d.vector is not None:
            vectors[i] = d.vector
    arrays["vectors"] = vectors

    # Records, ids, attributes and labels (domains and tags).
    records: list[bytes] = [b""] * n
    ids = np.zeros(n, dtype="S64")
    attrs = np.zeros((n, len(ATTRS)), dtype=np.uint8)
    labels: list[str] = list(old.manifest["labels"]) if old is not None and len(old_rows) else []
    label_index = {name: i for i, name in enumerate(labels)}
    label_parts = []
    if len(old_rows):
        assert old is not None
        for i, line in zip(old_at.tolist(), old.record_lines(old_rows.tolist()), strict=True):
            records[i] = line
        ids[old_at] = old.array("docs.id")[old_rows]
        attrs[old_at] = old.array("attrs")[old_rows]
        lengths, (label_ids,) = _gather_rows(old.array("labels.ptr"), old_rows, old.array("labels.ids"))
        label_parts.append((old_at, lengths, [label_ids]))
    new_labels: list[list[int]] = []
    for i, d in zip(new_at.tolist(), fresh, strict=True):
        record = d.record or {}
        records[i] = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
        ids[i] = str(record.get("id", "")).encode("utf-8")[:64]
        for column, (key, values) in enumerate(ATTRS):
            value = record.get(key)
            attrs[i, column] = values.index(value) if value in values else 0
        names = [f"d:{v.lower()}" for v in record.get("domains", ())] + [
            f"t:{v.lower()}" for v in record.get("tags", ())
        ]
        new_labels.append([label_index.setdefault(name, len(label_index)) for name in dict.fromkeys(names)])
    label_parts.append(
        (
            new_at,
            np.array([len(r) for r in new_labels], dtype=np.int64),
            [np.array([j for r in new_labels for j in r], dtype=np.int64)],
        )
    )
    labels_ptr, (label_ids,) = _merge_rows(n, label_parts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(r) for r in records], out=offsets[1:])
    arrays.update(
        {
            "records": records,
            "records.off": offsets,
            "docs.id": ids,
            "attrs": attrs,
            "labels.ptr": labels_ptr,
            "labels.ids": label_ids.astype(np.int32),
            "labels": np.array(list(label_index), dtype=object),
        }
    )
    return arrays


def _bm25(tf_ptr: np.ndarray, term_ids: np.ndarray, counts: np.ndarray, n_terms: int, n_docs: int) -> dict[str, Any]:
    """BM25 (Lucene's variant, as bm25s computes it) of every (term, doc) pair, stored term by term.

    A query's scores are then the sum of its terms' columns: numpy only, no per-document work.
    """
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int32), np.diff(tf_ptr))
    doc_len = np.zeros(n_docs, dtype=np.float64)
    np.add.at(doc_len, doc_of, counts)
    avgdl = float(doc_len.mean()) if n_docs else 1.0
    df = np.bincount(term_ids, minlength=n_terms).astype(np.float64)
    idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
    tf = counts.astype(np.float64)
    norm = K1 * (1.0 - B + B * doc_len[doc_of] / max(avgdl, 1e-9))
    score = idf[term_ids] * tf / (tf + norm)  # Lucene 8+ drops the constant (k1 + 1) factor
    order = np.argsort(term_ids, kind="stable")
    ptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.bincount(term_ids, minlength=n_terms), out=ptr[1:])
    return {
        "bm25.data": score[order].astype(np.float32),
        "bm25.doc": doc_of[order],
        "bm25.ptr": ptr,
    }


# --- building from a source -------------------------------------------------------------------------------


ReadBlobs = Callable[[list[int]], dict[int, bytes]]


class Builder:
    """Turns a list of files (with blob ids) into a snapshot, analysing only contents the cache lacks."""

    def __init__(self, repo: Repo, model: StaticModel, progress: bool = False) -> None:
        self.repo = repo
        self.model = model
        self.progress = progress

    def build(
        self,
        index_dir: Path,
        files: list[FileInput],
        read: ReadBlobs,
        manifest: dict[str, Any],
        old: Snapshot | None = None,
        reuse_row: dict[int, int] | None = None,
        record_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        save: bool = True,
    ) -> Snapshot:
        """Write a snapshot of ``files``.

        :param read: returns the bytes of the given file indexes (called only for contents never analysed).
        :param reuse_row: file index -> row of ``old`` for files known unchanged (nothing is recomputed).
        :param record_hook: rewrites each record before it is stored (a pool's domain label).
        :param save: false to build in memory only (the index folder cannot be written).
        """
        from mtlgit.cache import BlobCache

        reuse_row = reuse_row or {}
        cache = BlobCache(self.repo.state_dir / "cache.sqlite")
        try:
            need = [i for i, f in enumerate(files) if i not in reuse_row and not f.problems]
            items = [(files[i].rel, files[i].blob) for i in need]

            def read_items(wanted: list[int]) -> dict[int, bytes]:
                contents = read([need[j] for j in wanted])
                return {j: contents[need[j]] for j in wanted}

            analysed = cache.analyse(items, read_items, self.progress)
            docs = self._docs(files, reuse_row, analysed, old)
            self._embed(cache, docs)
            if record_hook is not None:
                for doc in docs:
                    if doc.record is not None:
                        doc.record = record_hook(doc.record)
        finally:
            cache.close()
        manifest = {**manifest, "model_key": self.model.key, "model_files": self.model.files_stat()}
        return write_snapshot(index_dir, files, docs, old, manifest, self.model.dim, save)

    def _docs(
        self,
        files: list[FileInput],
        reuse_row: dict[int, int],
        analysed: dict[str, dict[str, Any]],
        old: Snapshot | None,
    ) -> list[DocInput]:
        """The memories of the new snapshot: one per id, the first in path order; repeats are reported."""
        from mtlgit.store import duplicate_problem, first_of_each_id

        candidates: list[DocInput] = []
        for index, file in enumerate(files):
            if index in reuse_row:
                candidates.append(DocInput(index, file.blob, old_row=reuse_row[index]))
                continue
            if file.blob in analysed and not file.problems:
                analysis = analysed[file.blob]
                file.problems = [{**p, "path": file.rel} for p in analysis["problems"]]
                if analysis["record"] is not None:
                    candidates.append(DocInput(index, file.blob, record=analysis["record"], terms=analysis["terms"]))
        old_ids = old.array("docs.id").tolist() if old is not None else []
        ids = [
            (
                (d.record or {}).get("id", "") if d.old_row is None else old_ids[d.old_row].decode("utf-8"),
                files[d.file_index].rel,
            )
            for d in candidates
        ]
        kept, duplicates = first_of_each_id(ids)
        for index, first in duplicates:
            file = files[candidates[index].file_index]
            file.problems = [*file.problems, duplicate_problem(file.rel, ids[index][0], first).to_json()]
        out = [candidates[i] for i in kept]
        for row, doc in enumerate(out):
            files[doc.file_index].doc = row
        return out

    def _embed(self, cache: BlobCache, docs: list[DocInput]) -> None:
        from mtlgit.memory import search_text

        model = self.model
        need = [d for d in docs if d.old_row is None]
        if not need:
            return
        cached = cache.vectors(model.key, (d.blob for d in need))
        todo: dict[str, DocInput] = {}
        for d in need:
            if d.blob in cached:
                d.vector = cached[d.blob]
            else:
                todo.setdefault(d.blob, d)
        if todo:
            texts = [search_text(d.record or {}) for d in todo.values()]
            vectors = np.zeros((len(texts), model.dim), dtype=np.float32)
            batch = 512
            steps = range(0, len(texts), batch)
            for start in progress_bar(steps, self.progress and len(texts) > 2000, "Embedding memories"):
                vectors[start : start + batch] = model.encode(texts[start : start + batch])
            fresh = {blob: vectors[i].astype(np.float16) for i, blob in enumerate(todo)}
            cache.put_vectors(model.key, fresh)
            cached.update(fresh)
        for d in need:
            if d.vector is None:
                d.vector = cached[d.blob]


# --- the working tree ---------------------------------------------------------------------------------------


class WorktreeIndex:
    """The index of a repository's working tree: snapshot per worktree, cache shared by all."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.dir = repo.worktree_state_dir / "index"

    @property
    def lock_path(self) -> Path:
        return self.repo.worktree_state_dir / "index.lock"

    def current(self) -> Snapshot | None:
        return open_current(self.dir)

    def fresh(self) -> Snapshot:
        """The live snapshot, refreshed first if anything changed: never stale."""
        snapshot = self.current()
        if snapshot is not None and is_fresh(snapshot, self.repo.root):
            return self.settle(snapshot)
        return self.refresh(stale=snapshot)

    def settle(self, snapshot: Snapshot) -> Snapshot:
        """Forget the racy files and folders of a fresh snapshot once they are old enough for their stat to be
        trusted: they have just been compared, and comparing them on every recall would cost a read each.
        Skipped, silently, where the index cannot be written: it only saves work."""
        manifest = snapshot.manifest
        racy = manifest.get("racy") or manifest.get("racy_dirs") or manifest.get("config_racy")
        if not racy or time.time_ns() - int(manifest.get("built_ns", 0)) < 2 * RACY_NS:
            return snapshot
        if not snapshot.saved or not os.access(snapshot.folder, os.W_OK):
            return snapshot
        from mtlgit.lock import file_lock

        try:
            with file_lock(self.lock_path, timeout=300):
                current = self.current()
                if current is None or current.folder != snapshot.folder:
                    return current or snapshot  # another process replaced it meanwhile
                settled = {**current.manifest, "racy": [], "racy_dirs": [], "config_racy": None}
                settled["built_ns"] = time.time_ns()
                tmp = current.folder / f".manifest.{os.getpid()}.tmp"
                try:
                    tmp.write_bytes(manifest_bytes(settled))
                    os.replace(tmp, current.folder / "manifest.json")
                finally:
                    tmp.unlink(missing_ok=True)
                return Snapshot(current.folder)
        except OSError as exc:
            if exc.errno not in UNWRITABLE:
                raise
            return snapshot

    def refresh(self, rebuild: bool = False, progress: bool = False, stale: Snapshot | None = None) -> Snapshot:
        """Bring the snapshot up to date under the index lock (``rebuild``: ignore the previous one).

        Where the index cannot be written (a read-only checkout, a full disk), the snapshot is built in memory
        and that is said in one line on stderr.

        :param stale: a snapshot the caller has just found stale. When it is still the current one and no other
            process held the lock meanwhile, every file's stat is not checked again before the build (which
            checks them itself): at 100k memories a pass costs ~0.4 s.
        """
        from mtlgit.lock import LockUnwritable, file_lock

        try:
            with file_lock(self.lock_path, timeout=300) as waited:
                old = None if rebuild else self.current()
                known_stale = not waited and stale is not None and old is not None and old.folder == stale.folder
                if old is not None and not rebuild and not known_stale and is_fresh(old, self.repo.root):
                    return old  # another process refreshed it while this one waited
                return self._build(old, progress)
        except LockUnwritable as exc:
            note(
                f"could not save the index in {self.dir} ({exc.strerror}): built in memory for this run only",
                if_done=True,
            )
            old = None if rebuild else (stale if stale is not None else self.current())
            snapshot = self._build(old, progress, save=False)
            snapshot.unsaved_reason = (exc.strerror or "cannot write").lower()
            return snapshot

    def _build(self, old: Snapshot | None, progress: bool, save: bool = True) -> Snapshot:
        from mtlgit.config import load_config
        from mtlgit.embed import load_model
        from mtlgit.ids import blob_id
        from mtlgit.memory import MAX_FILE_BYTES, symlink_problem, too_large
        from mtlgit.pools import parse_pools
        from mtlgit.store import scan_memories

        root = self.repo.root
        started = time.time_ns()
        # Every stat is read before what it vouches for (the configuration, a folder's names), and one too
        # recent to rule out a change within the same mtime tick is not trusted alone.
        config_stat = _stat_key(root / ".mtlgit.yaml")
        config_racy = None
        if config_stat is not None and config_stat[1] >= started - RACY_NS:
            with contextlib.suppress(OSError):
                config_racy = blob_id((root / ".mtlgit.yaml").read_bytes())
        config = load_config(root)
        model = load_model(config.model, root, self.repo.state_dir)
        if old is not None and (
            old.manifest.get("model_key") != model.key or old.manifest.get("memories") != config.memories
        ):
            old = None
        listings: list[tuple[int, list[str]]] = []
        paths, folders, links = scan_memories(root / config.memories, root, listings)
        symlinks = set(links)
        old_problems: dict[str, list[dict[str, Any]]] = {}
        if old is not None:
            for found in old.problems():
                if found.get("code") != "duplicate-id":  # depends on the other files: found again below
                    old_problems.setdefault(found["path"], []).append(found)
        old_index = {rel: i for i, rel in enumerate(old.files)} if old is not None else {}
        old_racy = set(old.manifest.get("racy") or []) if old is not None else set()
        # Plain lists: one element read of a memory map costs microseconds, a refresh makes one per file.
        old_stats = old.array("files.stat").tolist() if old is not None else []
        old_blobs = old.array("files.blob").tolist() if old is not None else []
        old_docs = old.array("files.doc").tolist() if old is not None else []

        files: list[FileInput] = []
        data: dict[int, bytes] = {}
        reuse_row: dict[int, int] = {}
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            stats = [_stat_key_at(rel, fd) for rel in paths]
        finally:
            os.close(fd)
        for rel, key in zip(paths, stats, strict=True):
            if key is None:
                continue  # gone, or a broken symlink (lint reports it)
            if rel in symlinks:  # a symlink must stay inside the repository
                problem = symlink_problem(root / rel, rel, root)
                if problem is not None:
                    stand_in = blob_id(f"symlink:{key}".encode())
                    files.append(FileInput(rel, key, stand_in, problems=[problem.to_json()]))
                    continue
            if key[0] > MAX_FILE_BYTES:
                # Never read whole: reported by size, with a stand-in blob id.
                stand_in = blob_id(f"too-large:{key}".encode())
                files.append(FileInput(rel, key, stand_in, problems=[too_large(rel, key[0]).to_json()]))
                continue
            i = old_index.get(rel)
            if i is not None and old_stats[i] == key and i not in old_racy:
                if old_docs[i] >= 0:  # a memory kept as it was, with its warnings
                    files.append(FileInput(rel, key, old_blobs[i].decode(), problems=old_problems.get(rel, [])))
                    reuse_row[len(files) - 1] = old_docs[i]
                else:  # not a memory: its problems come again from the cache, by blob id
                    files.append(FileInput(rel, key, old_blobs[i].decode()))
                continue
            content = (root / rel).read_bytes()
            files.append(FileInput(rel, key, blob_id(content)))
            data[len(files) - 1] = content

        def read(indexes: list[int]) -> dict[int, bytes]:
            return {i: data[i] if i in data else (root / files[i].rel).read_bytes() for i in indexes}

        manifest = {
            "kind": "worktree",
            "memories": config.memories,
            "model": config.model,
            "k": config.k,
            "mode": config.mode,
            "min_confidence": config.min_confidence,
            "budget": config.budget,
            "freshness": config.freshness,
            "reviewed_ref": config.reviewed_ref,
            "pools": [spec.__dict__ for spec in parse_pools(config)],
            "config_stat": config_stat,
            "config_racy": config_racy,
            "dirs": [[f, mtime_ns] for f, (mtime_ns, _names) in zip(folders, listings, strict=True)]
            or [[config.memories, 0]],
            "racy_dirs": [
                [number, listing_digest(names)]
                for number, (mtime_ns, names) in enumerate(listings)
                if mtime_ns >= started - RACY_NS
            ],
            "racy": [i for i, f in enumerate(files) if f.stat[1] >= started - RACY_NS],
            "built_ns": started,
        }
        builder = Builder(self.repo, model, progress)
        return builder.build(self.dir, files, read, manifest, old, reuse_row, save=save)


# --- a git revision -------------------------------------------------------------------------------------------


def rev_snapshot(repo: Repo, rev: str, progress: bool = False) -> Snapshot:
    """The pool exactly as it was at ``rev``, read from git objects (no checkout), cached by tree id.

    The memories folder and model are those of the configuration at ``rev`` (or the defaults).
    :raises MtlgitError: when ``rev`` is not a commit of the repository.
    """
    from mtlgit import gitobjects
    from mtlgit.config import CONFIG_NAME, Config, parse_config
    from mtlgit.embed import load_model
    from mtlgit.frontmatter import FrontMatterError, load_yaml

    commit = gitobjects.resolve_commit(repo, rev)
    config_text = gitobjects.read_path(repo, commit, CONFIG_NAME)
    config = Config()
    if config_text is not None:
        try:
            config = parse_config(load_yaml(config_text, 1), config_text, repo.root, repo.root / CONFIG_NAME)
        except FrontMatterError as exc:
            raise MtlgitError(f"{CONFIG_NAME} at {rev}:{exc.line}: {exc.message}") from None
    model = load_model(config.model, repo.root, repo.state_dir)
    entries = gitobjects.memory_entries(repo, commit, config.memories)
    tree = gitobjects.tree_id(repo, commit, config.memories)
    # The configuration at that commit is part of the key: its recall defaults are in the manifest.
    settings = hashlib.sha1((config_text or "").encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    index_dir = repo.state_dir / "revs" / f"{tree}-{model.key}-{settings}"
    snapshot = open_current(index_dir)
    if snapshot is not None:
        return snapshot
    files = [FileInput(rel, [size, 0, 0], blob) for rel, blob, size in entries]
    for file in files:
        if file.stat[0] > 1024 * 1024:
            from mtlgit.memory import too_large

            file.problems = [too_large(file.rel, file.stat[0]).to_json()]

    def read(indexes: list[int]) -> dict[int, bytes]:
        contents = gitobjects.read_blobs(repo, [files[i].blob for i in indexes])
        return {i: contents[files[i].blob] for i in indexes}

    from mtlgit.lock import LockUnwritable, file_lock

    manifest = {
        "kind": "rev",
        "rev": rev,
        "commit": commit,
        "memories": config.memories,
        "model": config.model,
        "k": config.k,
        "mode": config.mode,
        "min_confidence": config.min_confidence,
        "budget": config.budget,
        "reviewed_ref": config.reviewed_ref,
    }
    try:
        with file_lock(repo.state_dir / "revs.lock", timeout=300):
            snapshot = open_current(index_dir)
            if snapshot is not None:
                return snapshot
            return Builder(repo, model, progress).build(index_dir, files, read, manifest)
    except LockUnwritable as exc:
        note(f"could not save the index of {rev} ({exc.strerror}): built in memory for this run only", if_done=True)
        return Builder(repo, model, progress).build(index_dir, files, read, manifest, save=False)


# --- checking everything ------------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """What ``mtlgit index --check`` verified, what it found damaged, and what it did about it."""

    checked: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


def check_all(repo: Repo) -> CheckReport:
    """Verify every checksum of every snapshot (working tree, revisions, pools), the cache database and the
    models' query tables, and repair what can be rebuilt here: the working tree's snapshot is rebuilt, damaged
    revision snapshots and cache rows are deleted (made again when needed), query tables are made again. A
    damaged pool snapshot needs ``mtlgit pool sync``."""
    import shutil

    from mtlgit.cache import BlobCache
    from mtlgit.embed import check_tables

    report = CheckReport()
    index = WorktreeIndex(repo)
    folders = [("worktree", index.dir)]
    folders += [("revision", d) for d in sorted((repo.state_dir / "revs").glob("*")) if d.is_dir()]
    folders += [("pool", d) for d in sorted((repo.state_dir / "pools").glob("*/index-*")) if d.is_dir()]
    rebuild = False
    for kind, folder in folders:
        problem = _check_folder(folder)
        report.checked.append(f"{kind} snapshot {folder}")
        if problem is None:
            continue
        report.damaged.append(f"{kind} snapshot {folder}: {problem}")
        if kind == "worktree":
            rebuild = True
        elif kind == "revision":
            shutil.rmtree(folder, ignore_errors=True)
            report.repaired.append(f"deleted {folder} (made again when that revision is recalled)")
        else:
            report.repaired.append(f"nothing done for {folder}: run `mtlgit pool sync` to index that pool again")
    cache_path = repo.state_dir / "cache.sqlite"
    if cache_path.exists():
        cache = BlobCache(cache_path)
        try:
            found = cache.check(repair=True)
        finally:
            cache.close()
        report.checked.append(f"cache {cache_path}")
        report.damaged += [f"cache {cache_path}: {line}" for line in found]
        if found:
            report.repaired.append(f"deleted the damaged rows of {cache_path} (computed again when needed)")
    for settings in sorted((repo.state_dir / "models").glob("*.json")):
        key = settings.name[: -len(".json")]
        report.checked.append(f"query tables {settings.parent / key}.*")
        problem = check_tables(settings.parent, key, full=True)
        if problem is not None:
            report.damaged.append(f"query tables: {problem}")
            for part in settings.parent.glob(f"{key}.*"):
                part.unlink(missing_ok=True)
            report.repaired.append(f"deleted the query tables {key}.* (made again at the next recall)")
    if rebuild:
        index.refresh(rebuild=True)
        report.repaired.append(f"rebuilt the working tree's snapshot in {index.dir}")
    return report


def _check_folder(index_dir: Path) -> str | None:
    """What is wrong with the live snapshot of ``index_dir`` (None: nothing, or no snapshot at all)."""
    try:
        name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return f"CURRENT is unreadable ({exc})"
    try:
        Snapshot(index_dir / name).verify()
    except IndexCorrupt as exc:
        return str(exc)
    return None
