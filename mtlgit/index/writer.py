"""The generation writer: add a segment, tombstone what changed, merge by policy, swap ``CURRENT``.

Merge policy (tiered, as Lucene's and tantivy's): the first segment is the base, the others deltas.
- the deltas' live files exceed ``MERGE_RATIO`` of the base's, or more than ``DEAD_RATIO`` of the base's files
  are tombstoned: everything is merged into a new base (what a build from nothing would write);
- else, more than ``MAX_DELTAS`` deltas: the deltas are merged into one.
So a refresh after a small change writes one small segment and a generation (a few kilobytes plus a live mask
of one byte per file), and the cost of merging is spread over many refreshes. Merging copies arrays: nothing is
parsed or embedded again.

A new generation is written beside the live one, then ``CURRENT`` is replaced atomically; folders no longer
named by the live or the previous generation (a reader may still hold it) are removed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mtlgit.index.common import UNWRITABLE, manifest_bytes, note, path_key
from mtlgit.index.manifest import Manifest
from mtlgit.index.segment import Segment, SegmentData, concat, new_name, segment_parts, take, write_folder
from mtlgit.index.snapshot import Snapshot

MERGE_RATIO = 0.25
DEAD_RATIO = 0.25
MAX_DELTAS = 3  # each segment costs a recall ~8 file maps and ~20 stats
# Past this many ids to look for one by one (a pass over the ids each), every id is sorted instead.
MAX_SUSPECTS = 64


def plan_merge(live_files: Sequence[int], all_files: Sequence[int]) -> list[int]:
    """The segments to merge into one (none: keep them all), by the policy above."""
    if not live_files:
        return []
    base_live, base_all = live_files[0], all_files[0]
    deltas = list(range(1, len(live_files)))
    if base_all - base_live > DEAD_RATIO * base_all:
        return list(range(len(live_files)))
    if deltas and sum(live_files[i] for i in deltas) > MERGE_RATIO * base_live:
        return list(range(len(live_files)))
    if len(deltas) > MAX_DELTAS:
        return deltas
    return []


def commit(
    index_dir: Path,
    manifest: Manifest,
    old: Snapshot | None,
    dead: dict[int, list[int]],
    added: SegmentData | None,
    save: bool = True,
) -> Snapshot:
    """The generation of ``old``'s segments with the files ``dead`` (segment -> file indexes) tombstoned, plus
    the segment ``added``, merged by policy; written and made ``CURRENT`` (unless ``save`` is false or the disk
    cannot take it: then held in memory, and the latter said on stderr).

    :param manifest: the new generation's settings; its statistics and segments are filled in here.
    """
    segments: list[Segment | SegmentData] = []
    live: list[np.ndarray] = []
    if old is not None:
        for number, segment in enumerate(old.segments):
            mask = old.file_live(number).copy()
            mask[dead.get(number, [])] = False
            if mask.any():
                segments.append(segment)
                live.append(mask)
    if added is not None and added.paths:
        segments.append(added)
        live.append(np.ones(len(added.paths), dtype=bool))
    counts = [int(mask.sum()) for mask in live]
    merge = plan_merge(counts, [len(mask) for mask in live])
    if len(merge) > 1 or (merge and counts[merge[0]] < len(live[merge[0]])):
        parts = [_live_part(segments[i], live[i]) for i in merge]
        merged = concat(parts, manifest.dim)
        at = merge[0]
        segments = [s for i, s in enumerate(segments) if i not in merge]
        live = [m for i, m in enumerate(live) if i not in merge]
        segments.insert(at, merged)
        live.insert(at, np.ones(len(merged.paths), dtype=bool))
    suspects = _suspects(old, added)
    reason = ""
    if save:
        try:
            return _save(index_dir, manifest, segments, live, old, suspects)
        except OSError as exc:
            if exc.errno not in UNWRITABLE:
                raise
            reason = (exc.strerror or "cannot write").lower()
            note(
                f"could not save the index in {index_dir} ({exc.strerror}): built in memory for this run only",
                if_done=True,
            )
    opened = [s if isinstance(s, Segment) else Segment(index_dir / f"unsaved-{n}", s) for n, s in enumerate(segments)]
    snapshot = _generation(index_dir / "unsaved", manifest, opened, live, suspects)
    snapshot.unsaved_reason = reason
    return snapshot


def _live_part(segment: Segment | SegmentData, live: np.ndarray) -> SegmentData:
    data = segment.load() if isinstance(segment, Segment) else segment
    return take(data, np.flatnonzero(live)) if not live.all() else data


def _suspects(old: Snapshot | None, added: SegmentData | None) -> set[bytes] | None:
    """The ids (upper-cased) that may be used twice in the generation of ``old`` plus ``added``: those of the
    memories ``added``, and those used twice in ``old`` (its ``dead_docs``). Any other id has only memories
    that were live in ``old`` already, where it was used once. None (look at every id) when there is no
    ``old``, or too many ids to pick out one by one."""
    if old is None:
        return None
    found = {bytes(old.segments[number].array("docs.key")[row]) for number, row in old.manifest.dead_docs}
    if added is not None:
        found.update(added.keys.tolist())
    return found if len(found) <= MAX_SUSPECTS else None


def _generation(
    folder: Path,
    manifest: Manifest,
    segments: list[Segment],
    live: list[np.ndarray],
    suspects: set[bytes] | None = None,
) -> Snapshot:
    """A generation in memory with its statistics computed: live memories (one per id), files, problems.

    :param suspects: the only ids that may be used twice (see :func:`_suspects`); None: any.
    """
    manifest = replace(manifest, segments=[s.name for s in segments], dead_docs=[], parts={})
    dead, problems = _duplicates(segments, live, suspects)
    manifest.dead_docs = dead
    snapshot = Snapshot(folder, manifest, segments, live, problems)
    rows = snapshot.segment_rows()
    manifest.docs = sum(len(r) for r in rows)
    manifest.files = sum(int(mask.sum()) for mask in live)
    manifest.total_len = sum(int(np.asarray(s.array("docs.len"))[r].sum()) for s, r in zip(segments, rows, strict=True))
    not_memories = 0
    for number, segment in enumerate(segments):
        with_problems = {i for i, _p in segment.problems()}
        file_doc = np.asarray(segment.array("files.doc"))
        not_memories += sum(1 for i in with_problems if live[number][i] and file_doc[i] < 0)
    manifest.problem_files = not_memories + len(dead) + len(manifest.unreadable)
    return snapshot


def _duplicates(
    segments: list[Segment], live: list[np.ndarray], suspects: set[bytes] | None = None
) -> tuple[list[list[int]], list[dict[str, Any]]]:
    """The memories whose id an earlier path (in the working tree's order) already has, as [segment, row], and
    the problem reported for each; only among the ids ``suspects`` when given (the same answer, without
    sorting every id of the pool)."""
    keys, owners = [], []
    for number, segment in enumerate(segments):
        if not segment.n_docs:
            continue
        is_live = live[number][np.asarray(segment.array("docs.file"))]
        segment_keys = np.asarray(segment.array("docs.key"))
        if suspects is not None:
            wanted = np.zeros(len(segment_keys), dtype=bool)
            for suspect in suspects:
                wanted |= segment_keys == suspect
            is_live &= wanted
        rows = np.flatnonzero(is_live)
        keys.append(segment_keys[rows])
        owners.append(np.stack([np.full(len(rows), number), rows], axis=1))
    if not keys:
        return [], []
    key = np.concatenate(keys)
    owner = np.concatenate(owners)
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not len(repeated):
        return [], []
    from mtlgit.memory import duplicate_problem

    groups: dict[bytes, list[tuple[int, int]]] = {}
    for at in sorted(set(repeated.tolist()) | set((repeated + 1).tolist())):
        number, row = owner[order[at]].tolist()
        groups.setdefault(bytes(ordered[at]), []).append((number, row))
    dead: list[list[int]] = []
    problems: list[dict[str, Any]] = []
    for members in groups.values():
        named = []
        for number, row in members:
            segment = segments[number]
            path = segment.paths[int(segment.array("docs.file")[row])]
            named.append((path_key(path), path, number, row))
        named.sort()
        first = named[0][1]
        for _key, path, number, row in named[1:]:
            memory_id = bytes(segments[number].array("docs.id")[row]).decode("utf-8", "replace")
            dead.append([number, row])
            problems.append(duplicate_problem(path, memory_id, first).to_json())
    dead.sort()
    return dead, problems


def _save(
    index_dir: Path,
    manifest: Manifest,
    segments: list[Segment | SegmentData],
    live: list[np.ndarray],
    old: Snapshot | None,
    suspects: set[bytes] | None,
) -> Snapshot:
    """Write the new segments and the generation, make it CURRENT; on any failure, leave nothing of it behind."""
    index_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    gen = index_dir / new_name("gen")
    pointer = index_dir / f".CURRENT.{os.getpid()}"
    try:
        opened: list[Segment] = []
        for segment in segments:
            if isinstance(segment, SegmentData):
                folder = index_dir / new_name("seg")
                arrays, blobs, seg_manifest = segment_parts(segment)
                write_folder(folder, arrays, blobs, seg_manifest)
                written.append(folder)
                segment = Segment(folder)
            opened.append(segment)
        snapshot = _generation(gen, manifest, opened, live, suspects)
        arrays = {f"live{n}": mask for n, mask in enumerate(live)}
        blobs = {"problems.json": json.dumps(snapshot.dup_problems()).encode()}
        write_folder(gen, arrays, blobs, snapshot.manifest.to_json())
        written.append(gen)
        previous = _current_name(index_dir)
        pointer.write_text(gen.name, encoding="utf-8")
        os.replace(pointer, index_dir / "CURRENT")
    except BaseException:
        pointer.unlink(missing_ok=True)
        for folder in written:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    keep = {gen.name, *snapshot.manifest.segments}
    for name in {previous, old.folder.name if old is not None and old.saved else ""} - {""}:
        keep.add(name)
        keep.update(_segments_of(index_dir / name))
    drop_unused(index_dir, keep)
    written_now = Snapshot(gen)
    # The segments kept are open already, their maps and paths read: the recall that follows uses them as they are.
    opened_by_name = {segment.name: segment for segment in opened}
    written_now.segments = [opened_by_name.get(segment.name, segment) for segment in written_now.segments]
    return written_now


def _current_name(index_dir: Path) -> str:
    try:
        return (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _segments_of(gen: Path) -> list[str]:
    try:
        names = json.loads((gen / "manifest.json").read_bytes()).get("segments") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [str(name) for name in names]


def drop_unused(index_dir: Path, keep: set[str]) -> None:
    """Remove folders other than ``keep`` (the live and the previous generation and their segments), and
    temporary folders of writers that died."""
    now = time.time()
    for entry in index_dir.iterdir():
        if entry.name in keep or not entry.is_dir():
            continue
        if entry.name.startswith(".tmp-") and now - entry.stat().st_mtime < 3600:
            continue  # perhaps a live writer
        shutil.rmtree(entry, ignore_errors=True)


def rewrite_manifest(snapshot: Snapshot, manifest: Manifest) -> Snapshot:
    """Replace a saved generation's manifest in place (its files unchanged), atomically."""
    tmp = snapshot.folder / f".manifest.{os.getpid()}.tmp"
    try:
        tmp.write_bytes(manifest_bytes(manifest.to_json()))
        os.replace(tmp, snapshot.folder / "manifest.json")
    finally:
        tmp.unlink(missing_ok=True)
    return Snapshot(snapshot.folder)
