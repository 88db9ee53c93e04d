"""The index of a repository's working tree: a generation per worktree, the cache shared by all.

A refresh stats the memory files (all of them, or only those a caller names in ``changed``), reads only those
whose stat changed, and writes them as one new small segment, with the old versions of changed and deleted
files tombstoned, plus a new generation. Parsing and embedding happen only for contents (blob ids) the cache
has never seen.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import posixpath
import time
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mtlgit import rules
from mtlgit.embed import load_model
from mtlgit.index.build import Builder
from mtlgit.index.common import RACY_NS, UNWRITABLE, note, path_key
from mtlgit.index.freshness import (
    check_by,
    is_fresh,
    listing_digest,
    model_unchanged,
    quick_fresh,
    readable_again,
    stat_key,
)
from mtlgit.index.manifest import Manifest
from mtlgit.index.segment import FileInput
from mtlgit.index.snapshot import Snapshot, open_current

if TYPE_CHECKING:
    from mtlgit.repo import Repo


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

    def fresh(
        self, current: Snapshot | None = None, quick: bool = False, progress: bool = False, thorough: bool = False
    ) -> Snapshot:
        """The live snapshot (or ``current``, one the caller holds), refreshed first if anything changed: never
        stale. How changes are found is the configuration's ``recall.freshness`` (freshness.check_by);
        ``quick`` checks only the folders and recent files where the watcher is not used (the MCP server
        between its background checks); ``thorough`` checks every stat even where the configuration says
        ``folders`` (``mtlgit index``: an edit in place is seen)."""
        snapshot = current if current is not None else self.current()
        if snapshot is None:
            built = self.refresh(progress=progress)
            if check_by(built) == "watch":
                from mtlgit import watch

                if watch.ask(self.repo.worktree_state_dir, None, 0) is None:
                    self._start_watcher(built)  # the next recall asks it, instead of a stat of every file
            return built
        how = check_by(snapshot)
        if how == "watch":
            return self._fresh_by_watch(snapshot)
        if (quick_fresh if (quick or how == "folders") and not thorough else is_fresh)(snapshot, self.repo.root):
            return self.settle(snapshot)
        return self.refresh(stale=snapshot)

    def _fresh_by_watch(self, snapshot: Snapshot) -> Snapshot:
        """Ask the worktree's watcher what changed after the number ``snapshot`` recorded, and read only that;
        where no watcher can vouch (none runs, it restarted, its queue overflowed, the configuration or the
        memories folder itself changed), check every file's stat and record the watcher's number."""
        from mtlgit import watch

        state = self.repo.worktree_state_dir
        token, seq = snapshot.manifest.watch or (None, 0)
        changes = watch.ask(state, token, seq)
        if changes is not None and not watch.watches(changes, snapshot.manifest.memories):
            watch.stop(state)  # it watches a folder the configuration no longer names
            changes = None
        if changes is None:
            if is_fresh(snapshot, self.repo.root):
                found = self.settle(snapshot)
            else:
                found = self.refresh(stale=snapshot)
            if check_by(found) == "watch":
                self._start_watcher(found)  # for the folder of the snapshot just checked or built
            return found
        seen = [changes.token, changes.seq]
        model_same = model_unchanged(snapshot.manifest)
        # A file made readable may raise no event the watcher sees (a chmod through a hard link elsewhere).
        again = readable_again(snapshot, self.repo.root)
        if changes.none and model_same and not again:
            return snapshot
        if changes.everything or not model_same:
            if is_fresh(snapshot, self.repo.root):
                return self.settle(snapshot, watch=seen)
            return self.refresh(stale=snapshot, watch=seen)
        return self.refresh(changed=[*changes.paths, *changes.folders, *again], watch=seen)

    def _start_watcher(self, snapshot: Snapshot) -> None:
        """Start the worktree's watcher in the background, unless one was started in the last few seconds (it
        may still be arming) or failed to watch the folders within the hour (inotify's limits)."""
        from mtlgit import watch

        state = self.repo.worktree_state_dir
        marker = state / "watch.started"
        now = time.time()
        try:
            if now - marker.stat().st_mtime < 10 and marker.read_text(encoding="utf-8") == snapshot.manifest.memories:
                return
        except OSError:
            pass
        with contextlib.suppress(OSError, ValueError):
            info = (state / watch.INFO).read_text(encoding="utf-8")
            if '"error"' in info and now - (state / watch.INFO).stat().st_mtime < 3600:
                return
        try:
            marker.write_text(snapshot.manifest.memories, encoding="utf-8")
        except OSError:
            return  # a read-only checkout: every recall checks every stat
        watch.start(self.repo.root, state, snapshot.manifest.memories)

    def settle(self, snapshot: Snapshot, watch: list[Any] | None = None) -> Snapshot:
        """Forget the racy files and folders of a fresh snapshot once they are old enough for their stat to be
        trusted: they have just been compared, and comparing them on every recall would cost a read each; and
        record ``watch``, the watcher's [token, number] it was found fresh at. Skipped, silently, where the
        index cannot be written: it only saves work."""
        manifest = snapshot.manifest
        racy = manifest.racy or manifest.racy_dirs or manifest.config_racy
        old_enough = time.time_ns() - manifest.built_ns >= 2 * RACY_NS
        new_mark = watch is not None and watch != manifest.watch
        if not new_mark and (not racy or not old_enough):
            return snapshot
        if not snapshot.saved or not os.access(snapshot.folder, os.W_OK):
            return snapshot
        from mtlgit.index.writer import rewrite_manifest
        from mtlgit.lock import file_lock

        try:
            with file_lock(self.lock_path, timeout=300):
                current = self.current()
                if current is None or current.folder != snapshot.folder:
                    return current or snapshot  # another process replaced it meanwhile
                settled = current.manifest
                if racy and old_enough:
                    settled = replace(settled, racy=[], racy_dirs=[], config_racy=None, built_ns=time.time_ns())
                if new_mark:
                    settled = replace(settled, watch=watch)
                return rewrite_manifest(current, settled)
        except OSError as exc:
            if exc.errno not in UNWRITABLE:
                raise
            return snapshot

    def refresh(
        self,
        rebuild: bool = False,
        progress: bool = False,
        stale: Snapshot | None = None,
        changed: Collection[str] | None = None,
        watch: list[Any] | None = None,
    ) -> Snapshot:
        """Bring the snapshot up to date under the index lock (``rebuild``: ignore the previous one).

        Where the index cannot be written (a read-only checkout, a full disk), the snapshot is built in memory
        and that is said in one line on stderr.

        :param stale: a snapshot the caller has just found stale. When it is still the current one and no other
            process held the lock meanwhile, every file's stat is not checked again before the build (which
            checks them itself): at 100k memories a pass costs ~0.4 s.
        :param changed: paths (relative to the root) of the files and folders known to have changed; only those
            are statted, listed and read, and everything else is taken from the previous snapshot as it is.
        :param watch: the watcher's [token, number] taken before this refresh read anything: recorded, so the
            next recall asks the watcher only for what changed after it.
        """
        from mtlgit.lock import LockUnwritable, file_lock

        try:
            with file_lock(self.lock_path, timeout=300) as waited:
                old = None if rebuild else self.current()
                known_stale = not waited and stale is not None and old is not None and old.folder == stale.folder
                if old is not None and changed is None and not known_stale and is_fresh(old, self.repo.root):
                    return old  # another process refreshed it while this one waited
                return self._build(old, progress, changed=changed, watch=watch)
        except LockUnwritable as exc:
            note(
                f"could not save the index in {self.dir} ({exc.strerror}): built in memory for this run only",
                if_done=True,
            )
            old = None if rebuild else (stale if stale is not None else self.current())
            snapshot = self._build(old, progress, save=False, changed=changed, watch=watch)
            snapshot.unsaved_reason = (exc.strerror or "cannot write").lower()
            return snapshot

    def _build(
        self,
        old: Snapshot | None,
        progress: bool,
        save: bool = True,
        changed: Collection[str] | None = None,
        watch: list[Any] | None = None,
    ) -> Snapshot:
        from mtlgit.config import load_config, parse_pools
        from mtlgit.ids import blob_id
        from mtlgit.index.writer import commit

        root = self.repo.root
        started = time.time_ns()
        # Every stat is read before what it vouches for (the configuration, a folder's names), and one too
        # recent to rule out a change within the same mtime tick is not trusted alone.
        config_stat = stat_key(root / ".mtlgit.yaml")
        config_racy = None
        if config_stat is not None and config_stat[1] >= started - RACY_NS:
            with contextlib.suppress(OSError):
                config_racy = blob_id((root / ".mtlgit.yaml").read_bytes())
        config = load_config(root)
        model = load_model(config.model, root, self.repo.state_dir)
        if old is not None and (
            old.manifest.model_key != model.key
            or old.manifest.memories != config.memories
            or old.manifest.model_files != model.files_stat()
        ):
            old = None
        if old is None or changed is None:
            scan = _full_scan(root, config.memories, started, old)
        else:
            scan = _hinted_scan(root, config.memories, started, old, changed)
        files, dead, racy, unreadable = _classify(root, scan, old, started)

        def read(indexes: list[int]) -> dict[int, bytes]:
            return {i: rules.read_regular(root / files[i].rel) for i in indexes}

        # The files new or changed are read by the builder's tasks (in its workers on a large build), which set
        # their blob ids: the build's workers start on the first files instead of after every file is read.
        added = Builder(self.repo, model, progress).segment(files, read, root=root) if files else None
        unreadable += [f.rel for f in files if not f.blob and not _gone(root / f.rel)]  # its task could not open it
        racy += [[f.rel, f.blob] for f in files if f.blob and f.stat[1] >= started - RACY_NS and not f.problems_only]
        manifest = Manifest.from_config(
            config,
            "worktree",
            pools=[dict(spec.__dict__) for spec in parse_pools(config)],
            model_key=model.key,
            model_files=model.files_stat(),
            dim=model.dim,
            config_stat=config_stat,
            config_racy=config_racy,
            dirs=scan.dirs or [[config.memories, 0]],
            racy_dirs=scan.racy_dirs,
            racy=sorted(racy, key=lambda item: path_key(item[0])),
            built_ns=started,
            unreadable=sorted(set(unreadable), key=path_key),
            watch=watch,
        )
        return commit(self.dir, manifest, old, dead, added, save=save)


class _Scan:
    """What a scan of the working tree found: the files to consider with their stats, the folders."""

    def __init__(self) -> None:
        self.stats: dict[str, list[int] | None] = {}  # None: gone
        self.links: set[str] = set()
        self.unlisted: list[tuple[str, str]] = []  # folders there that could not be listed, with why
        self.dirs: list[list[Any]] = []
        self.racy_dirs: list[list[Any]] = []
        self.gone_below: list[str] = []  # folders listed again: a live file below them not listed is gone
        # Files a caller named as changed: compared by content even when their stat is the same (an edit
        # within the same mtime tick, or one that put the mtime back, which the watcher still sees).
        self.named: set[str] = set()


def _full_scan(root: Path, memories: str, started: int, old: Snapshot | None) -> _Scan:
    scan = _Scan()
    listings: list[tuple[int, list[str]]] = []
    paths, folders, links = rules.scan_memories(root / memories, root, listings, unlisted=scan.unlisted)
    scan.links = set(links)
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        scan.stats = {rel: stat_key(rel, fd) for rel in paths}
    finally:
        os.close(fd)
    scan.dirs = [[f, mtime_ns] for f, (mtime_ns, _names) in zip(folders, listings, strict=True)]
    scan.racy_dirs = [
        [f, listing_digest(names)]
        for f, (mtime_ns, names) in zip(folders, listings, strict=True)
        if mtime_ns >= started - RACY_NS
    ]
    scan.gone_below = [""]
    return scan


def _hinted_scan(root: Path, memories: str, started: int, old: Snapshot, changed: Collection[str]) -> _Scan:
    """Stat, list and read only what ``changed`` names; the folders above each path are statted again."""
    scan = _Scan()
    dirs = {rel: mtime for rel, mtime in old.manifest.dirs}
    racy_dirs = {rel: digest for rel, digest in old.manifest.racy_dirs}
    base = posixpath.normpath(memories)

    def restat_folder(rel: str) -> None:
        try:
            mtime = os.stat(root / rel).st_mtime_ns
            names = os.listdir(root / rel) if mtime >= started - RACY_NS else None
        except OSError:
            dirs.pop(rel, None)
            racy_dirs.pop(rel, None)
            return
        dirs[rel] = mtime
        racy_dirs.pop(rel, None)
        if names is not None:
            racy_dirs[rel] = listing_digest(names)

    for raw in changed:
        rel = posixpath.normpath(raw.replace(os.sep, "/")).strip("/")
        if base != "." and rel != base and not rel.startswith(base + "/"):
            continue
        below = rel[len(base) + 1 :] if base != "." else rel
        if os.path.islink(root / rel) and os.path.isdir(root / rel) and not _inside_root(root, root / rel):
            continue  # a symlinked folder or file leading out of the repository is never followed
        if any(part.startswith(".") for part in below.split("/")[:-1]) or (
            below.rsplit("/", 1)[-1].startswith(".") and (os.path.isdir(root / rel) or rel in dirs)
        ):
            continue  # in or of a hidden folder: never read (mtlgit.rules.scan_memories skips them)
        if os.path.isdir(root / rel) or rel in dirs:
            for gone in [d for d in dirs if d == rel or d.startswith(rel + "/")]:
                dirs.pop(gone)
                racy_dirs.pop(gone, None)
            listings: list[tuple[int, list[str]]] = []
            paths, folders, links = rules.scan_memories(root / rel, root, listings, unlisted=scan.unlisted)
            scan.links.update(links)
            for path in paths:
                scan.stats[path] = stat_key(root / path)
            for folder, (mtime_ns, names) in zip(folders, listings, strict=True):
                dirs[folder] = mtime_ns
                if mtime_ns >= started - RACY_NS:
                    racy_dirs[folder] = listing_digest(names)
            scan.gone_below.append(rel)
        elif rules.is_memory_path(rel, memories):
            scan.stats[rel] = stat_key(root / rel)
            scan.named.add(rel)
            if os.path.islink(root / rel):
                scan.links.add(rel)
        else:
            continue
        parent = posixpath.dirname(rel)
        while parent and (parent == base or parent.startswith(base + "/")):
            restat_folder(parent)
            parent = posixpath.dirname(parent)
    scan.dirs = sorted(([rel, mtime] for rel, mtime in dirs.items()), key=lambda item: path_key(item[0]))
    scan.racy_dirs = sorted(([rel, d] for rel, d in racy_dirs.items()), key=lambda item: path_key(item[0]))
    return scan


def _inside_root(root: Path, path: Path) -> bool:
    """Whether ``path``, symlinks resolved, is inside ``root``."""
    real = os.path.realpath(path)
    return (real + os.sep).startswith(os.path.join(os.path.realpath(root), ""))


class _Input(FileInput):
    problems_only: bool = False  # a stand-in (symlink out of the repository, too large): never racy


def _classify(
    root: Path, scan: _Scan, old: Snapshot | None, started: int
) -> tuple[list[_Input], dict[int, list[int]], list[list[str]], list[str]]:
    """The files to write into a new segment, the files of ``old`` to tombstone (segment -> file indexes), the
    racy files kept from ``old``, and the files listed that cannot be statted (a broken symlink) and the folders
    that cannot be listed, with those of ``old``'s unreadable ones this scan did not look at."""
    from mtlgit.ids import blob_id
    from mtlgit.memory import MAX_FILE_BYTES, symlink_problem, too_large

    old_racy = {rel: blob for rel, blob in old.manifest.racy} if old is not None else {}
    known: dict[str, tuple[int, int, list[int], bytes]] = {}
    dead: dict[int, list[int]] = {}
    if old is not None:
        everything = "" in scan.gone_below
        for number, (paths, stats, blobs, live) in enumerate(old.file_tables()):
            if everything:
                indexes = np.flatnonzero(live)
            else:  # only the files named and those below the folders listed again: a refresh costs the change
                at = _positions(paths, scan.stats, [d for d in scan.gone_below if d])
                indexes = at[live[at]]
            # Plain lists: one element read of a memory map costs microseconds, and this runs once per file.
            stat_list, blob_list = stats[indexes].tolist(), blobs[indexes].tolist()
            for i, stat, blob in zip(indexes.tolist(), stat_list, blob_list, strict=True):
                rel = paths[i]
                if rel in scan.stats:
                    known[rel] = (number, i, stat, blob)
                else:
                    dead.setdefault(number, []).append(i)
    files: list[_Input] = []
    racy: list[list[str]] = []
    unreadable: list[str] = []
    if old is not None:
        # Those this scan looked at again are decided again below ("": the whole tree was listed).
        below = [d + "/" if d else "" for d in scan.gone_below]
        unreadable = [
            rel
            for rel in old.manifest.unreadable
            if rel not in scan.stats and rel not in scan.gone_below and not any(map(rel.startswith, below))
        ]
    unreadable += [rel for rel, _why in scan.unlisted]
    for rel, key in scan.stats.items():
        previous = known.get(rel)
        if key is None:  # gone, or a broken symlink (lint reports it)
            if previous is not None:
                dead.setdefault(previous[0], []).append(previous[1])
            if not _gone(root / rel):
                unreadable.append(rel)
            continue
        if previous is not None and previous[2] == key:
            if rel not in old_racy and rel not in scan.named:
                continue  # unchanged
            content = _read(root, rel)
            if content is not None and blob_id(content) == previous[3].decode():
                if key[1] >= started - RACY_NS:
                    racy.append([rel, previous[3].decode()])
                continue
        if previous is not None:
            dead.setdefault(previous[0], []).append(previous[1])
        if rel in scan.links:  # a symlink must stay inside the repository
            problem = symlink_problem(root / rel, rel, root)
            if problem is not None:
                files.append(_stand_in(rel, key, f"symlink:{key}", problem.to_json()))
                continue
        if key[0] > MAX_FILE_BYTES:  # never read whole: reported by size, with a stand-in blob id
            files.append(_stand_in(rel, key, f"too-large:{key}", too_large(rel, key[0]).to_json()))
            continue
        files.append(_Input(rel, key, ""))  # read, and its blob id set, by the builder (build.py)
    for number in dead:
        dead[number] = sorted(set(dead[number]))
    files.sort(key=lambda f: path_key(f.rel))
    return files, dead, racy, unreadable


def _gone(path: Path) -> bool:
    """Whether nothing is at ``path``, not even a broken symlink or a file this process may not stat."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def _positions(paths: list[str], names: Collection[str], folders: list[str]) -> np.ndarray:
    """The indexes in ``paths`` of ``names`` and of every path below ``folders``, ascending.

    ``paths`` are a working-tree segment's files, which are always in the working tree's order (a refresh
    sorts the files it writes, a merge sorts what it joins): a lookup is a bisection, not a pass over the
    file table. Everything below a folder is one run in that order.
    """
    found: set[int] = set()
    for rel in names:
        at = bisect.bisect_left(paths, path_key(rel), key=path_key)
        if at < len(paths) and paths[at] == rel:
            found.add(at)
    for folder in folders:
        prefix = folder + "/"
        at = bisect.bisect_left(paths, path_key(folder), key=path_key)
        while at < len(paths) and (paths[at] == folder or paths[at].startswith(prefix)):
            if paths[at] != folder:
                found.add(at)
            at += 1
    return np.array(sorted(found), dtype=np.int64)


def _stand_in(rel: str, key: list[int], what: str, problem: dict[str, Any]) -> _Input:
    from mtlgit.ids import blob_id

    made = _Input(rel, key, blob_id(what.encode()), problems=[problem])
    made.problems_only = True
    return made


def _read(root: Path, rel: str) -> bytes | None:
    try:
        return rules.read_regular(root / rel)
    except OSError:
        return None
