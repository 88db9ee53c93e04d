"""The index: generations of immutable segments holding a set of memories, kept fresh by file stats, rebuilt
from git.

Layout (each module's concern; an arrow is "uses"):

    worktree.py (WorktreeIndex: refresh by stats)  sources.py (git revision, pool mirror)
            |            \\                          /
            |             build.py (Builder: cache, model -> SegmentData)
            v                        |
    freshness.py (is_fresh, stats)   writer.py (tombstones, merge policy, CURRENT swap)
            \\                         |
             snapshot.py (Snapshot: typed reader)  <-  segment.py (Segment, SegmentData)  <-  arrays.py
                           |
                   manifest.py, common.py

    check.py (index --check) uses worktree.py to rebuild what it finds damaged.

Reading (snapshot, segment, arrays, freshness, common, manifest) imports only numpy and the standard library:
it is on the recall path. Building imports the parser, the cache and the model.
"""

from __future__ import annotations

from mtlgit.index.check import CheckReport, check_all
from mtlgit.index.common import ATTRS, INDEX_VERSION, PATHS, RACY_NS, IndexCorrupt, manifest_bytes, note
from mtlgit.index.freshness import is_fresh, listing_digest, model_unchanged, quick_fresh
from mtlgit.index.manifest import Manifest
from mtlgit.index.segment import DocInput, FileInput, Segment, SegmentData
from mtlgit.index.snapshot import Snapshot, open_current
from mtlgit.index.sources import GitTree, build_tree, rev_snapshot
from mtlgit.index.worktree import WorktreeIndex

__all__ = [
    "ATTRS",
    "INDEX_VERSION",
    "PATHS",
    "RACY_NS",
    "CheckReport",
    "DocInput",
    "FileInput",
    "GitTree",
    "IndexCorrupt",
    "Manifest",
    "Segment",
    "SegmentData",
    "Snapshot",
    "WorktreeIndex",
    "build_tree",
    "check_all",
    "is_fresh",
    "listing_digest",
    "manifest_bytes",
    "model_unchanged",
    "note",
    "open_current",
    "quick_fresh",
    "rev_snapshot",
]
