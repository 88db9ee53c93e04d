"""Freshness: whether a working-tree snapshot still describes the files, and ``mtlgit index --check``.

The working-tree snapshot records every memory file's (size, mtime_ns, inode), like git's own index, every
folder's mtime and the configuration's stat. :func:`is_fresh` checks them all (``recall.freshness: stat``, and
``auto`` below :data:`AUTO_WATCH_FILES` files); :func:`quick_fresh` checks the configuration, the folders
(files added, deleted or renamed) and the files written last (``recall.freshness: folders``). From
:data:`AUTO_WATCH_FILES` files (``auto``) or at any size (``watch``), a recall asks the worktree's inotify
watcher (mtlgit/watch.py) what changed after the number the snapshot recorded, and checks every stat only
when no watcher can vouch (see :meth:`WorktreeIndex.fresh`).

Unreadable files: a memory file the build could not read (no permission, a broken symlink), or a folder it could
not list, is in no file table, and what makes it readable (a chmod, the symlink's target made) changes no stat
recorded, so every check tries to open each of them again (:func:`readable_again`): they are few, and a failed
open costs microseconds.

Racy window: a file, folder or configuration whose mtime is within ``RACY_NS`` of the build may change again
within the same mtime tick unseen, so its content (or a folder's names) is compared instead, until the snapshot
is settled (see WorktreeIndex.settle).

The policy lives here alone. Reading needs only numpy and the standard library (this is on the recall path).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import TYPE_CHECKING, Any

import numpy as np

from mtlgit.index.snapshot import Snapshot
from mtlgit.rules import read_regular

if TYPE_CHECKING:
    pass


# From this many memory files, ``recall.freshness: auto`` asks the worktree's watcher what changed instead of
# checking every file's stat (~4.5 µs a file here: 22 ms at 5,000 files, 0.45 s at 100k).
AUTO_WATCH_FILES = 5000


def check_by(snapshot: Snapshot) -> str:
    """How to learn whether ``snapshot`` is fresh: "stat", "folders" or "watch" (the configuration's
    ``recall.freshness``; ``auto`` is "watch" from :data:`AUTO_WATCH_FILES` files where inotify exists)."""
    mode = snapshot.manifest.freshness
    if mode in ("auto", "watch"):
        if not sys.platform.startswith("linux"):
            return "stat"
        return "watch" if mode == "watch" or snapshot.manifest.files >= AUTO_WATCH_FILES else "stat"
    return "folders" if mode == "folders" else "stat"


def stat_key(path: Path | str, fd: int | None = None) -> list[int] | None:
    """(size, mtime_ns, inode) of a file, None when it cannot be statted; relative to the folder ``fd``."""
    try:
        st = os.stat(path, dir_fd=fd)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def listing_digest(names: Iterable[str]) -> str:
    """What a folder holds, as far as the index cares: its names, hidden ones (writers' temporary files) aside."""
    listed = "\0".join(sorted(name for name in names if not name.startswith(".")))
    return hashlib.sha1(listed.encode("utf-8", "surrogateescape")).hexdigest()  # noqa: S324 - not security


def model_unchanged(manifest: Any) -> bool:
    """Whether the model files a snapshot was built with still have the same size and mtime."""
    for path, size, mtime_ns in manifest.model_files or []:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if st.st_size != size or st.st_mtime_ns != mtime_ns:
            return False
    return True


def quick_fresh(snapshot: Snapshot, root: Path) -> bool:
    """The cheap part of :func:`is_fresh`: the configuration, every folder's mtime (files added, deleted or
    renamed), the files written last and the files that could not be read. An edit in place of an older file
    is not seen."""
    return (
        _config_and_folders_unchanged(snapshot, root)
        and not readable_again(snapshot, root)
        and _racy_unchanged(snapshot, root)
    )


def readable_again(snapshot: Snapshot, root: Path) -> list[str]:
    """The files (and folders) ``snapshot`` could not read (list) that open now as regular files (folders).
    Opened without waiting and never read; one that still fails to open, or is something else (a pipe the build
    refused), stays unread, and no recall refreshes for it."""
    found = []
    for rel in snapshot.manifest.unreadable:
        try:
            fd = os.open(os.path.join(root, rel), os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            mode = os.fstat(fd).st_mode
            if S_ISREG(mode) or S_ISDIR(mode):
                found.append(rel)
        finally:
            os.close(fd)
    return found


def is_fresh(snapshot: Snapshot, root: Path) -> bool:
    """True when no memory file, folder or the configuration changed since ``snapshot`` was written."""
    if not _config_and_folders_unchanged(snapshot, root) or readable_again(snapshot, root):
        return False
    stat = os.stat
    # Paths relative to an open folder: the kernel walks fewer components (~25% of this loop).
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for paths, stats, _blobs, live in snapshot.file_tables():
            if live.all():
                pairs = zip(paths, stats.tolist(), strict=True)
            else:  # tombstoned files are not looked at
                kept = np.flatnonzero(live)
                pairs = zip([paths[i] for i in kept.tolist()], stats[kept].tolist(), strict=True)
            for rel, want in pairs:
                st = stat(rel, dir_fd=fd)
                if st.st_mtime_ns != want[1] or st.st_size != want[0] or st.st_ino != want[2]:
                    return False
    except OSError:
        return False
    finally:
        os.close(fd)
    return _racy_unchanged(snapshot, root)


def _config_and_folders_unchanged(snapshot: Snapshot, root: Path) -> bool:
    manifest = snapshot.manifest
    if stat_key(root / ".mtlgit.yaml") != manifest.config_stat:
        return False
    if manifest.config_racy:  # written too close to the build for its stat to prove anything
        from mtlgit.ids import blob_id

        try:
            if blob_id((root / ".mtlgit.yaml").read_bytes()) != manifest.config_racy:
                return False
        except OSError:
            return False
    if not model_unchanged(manifest):
        return False
    for rel, mtime_ns in manifest.dirs:
        try:
            if os.stat(os.path.join(root, rel)).st_mtime_ns != mtime_ns:
                return False
        except OSError:
            return False
    # A folder changed too close to its listing may change again within the same mtime tick: its names must
    # still be those listed.
    for rel, digest in manifest.racy_dirs:
        try:
            names = os.listdir(os.path.join(root, rel))
        except OSError:
            return False
        if listing_digest(names) != digest:
            return False
    return True


def _racy_unchanged(snapshot: Snapshot, root: Path) -> bool:
    """Files written too close to the snapshot for their stat to prove anything: compare their content."""
    if not snapshot.manifest.racy:
        return True
    from mtlgit.ids import blob_id

    for rel, blob in snapshot.manifest.racy:
        try:
            data = read_regular(root / rel)
        except OSError:
            return False
        if blob_id(data) != blob:
            return False
    return True
