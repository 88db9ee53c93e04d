"""``mtlgit index --check``: every checksum of every snapshot, the cache and the query tables verified, and what
can be rebuilt here repaired."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mtlgit.embed import check_tables
from mtlgit.index.common import IndexCorrupt
from mtlgit.index.snapshot import Snapshot
from mtlgit.index.worktree import WorktreeIndex

if TYPE_CHECKING:
    from mtlgit.repo import Repo


@dataclass
class CheckReport:
    """What ``mtlgit index --check`` verified, what it found damaged, and what it did about it."""

    checked: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


def check_all(repo: Repo) -> CheckReport:
    """Verify every checksum of every snapshot (working tree, revisions, pools) and their segments, the cache
    database and the models' query tables, and repair what can be rebuilt here: the working tree's snapshot is
    rebuilt, damaged revision snapshots and cache rows are deleted (made again when needed), query tables are
    made again. A damaged pool snapshot needs ``mtlgit pool sync``."""
    from mtlgit.cache import BlobCache

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
