"""Git hooks: install, uninstall and status, and what each hook does when git runs it.

Installation works like pre-commit's: a hook that is already there is moved to ``<hook>.legacy`` and still
runs first (its exit code counts); uninstall puts it back; mtlgit's own scripts, current or older, are
recognised by their first lines and replaced in place. The script records the interpreter that installed
it, so it works with ``PATH`` stripped, and falls back to ``mtlgit`` on ``PATH``.

pre-commit lints the staged memory files and blocks the commit on errors. post-commit, post-merge,
post-checkout and post-rewrite refresh the index in a detached background process: a git command never
waits for it, and its errors go to ``.git/mtlgit/hooks.log``.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from mtlgit.cache import BlobCache
from mtlgit.citations import warm
from mtlgit.config import load_config
from mtlgit.errors import MtlgitError, Problem
from mtlgit.gitobjects import read_blobs
from mtlgit.memory import duplicate_problem, parse_bytes
from mtlgit.repo import Repo
from mtlgit.resources import hooks_dir
from mtlgit.rules import MEMORY_FILE_MODES, first_of_each_id, is_memory_path

# Imported where used: the index (numpy, ~100 ms) by the refresh alone; the configuration and memory parsers
# (YAML) and the blob cache (sqlite3) by pre-commit alone. Git runs a hook, which imports this module, on every
# commit and checkout.

REFRESH_HOOKS = ("post-commit", "post-merge", "post-checkout", "post-rewrite")
HOOK_TYPES = ("pre-commit", *REFRESH_HOOKS)
MARKER = "# mtlgit-hook v"
VERSION = 3
LOG_LIMIT = 1024 * 1024


@dataclass
class HookState:
    name: str
    state: str  # "installed" | "outdated" | "foreign" | "absent"
    legacy: bool
    python: str | None = None

    def describe(self) -> str:
        legacy = " (runs the earlier hook first: .legacy)" if self.legacy else ""
        if self.state == "installed":
            broken = "" if self.python and os.access(self.python, os.X_OK) else f" -- {self.python} is gone!"
            return f"{self.name}: mtlgit{legacy}{broken}"
        if self.state == "outdated":
            return f"{self.name}: an older mtlgit hook: run `mtlgit hooks install` to upgrade"
        if self.state == "foreign":
            return f"{self.name}: another tool's hook (mtlgit install keeps it and runs it first)"
        return f"{self.name}: not installed"


def hook_folder(repo: Repo) -> Path:
    """Where git looks for this repository's hooks (shared by all worktrees).

    :raises MtlgitError: when ``core.hooksPath`` sends git elsewhere.
    """
    configured = repo.git("config", "--get", "core.hooksPath", check=False).strip()
    if configured:
        raise MtlgitError(
            f"core.hooksPath is set to '{configured}', so git runs the hooks there (another hook manager?). "
            "mtlgit does not write into a shared hooks folder: call `mtlgit hook-run <hook>` from those hooks "
            "(pre-commit, post-commit, post-merge, post-checkout, post-rewrite), or "
            "`git config --unset core.hooksPath` and run `mtlgit hooks install` again"
        )
    return repo.common_dir / "hooks"


def _version(path: Path) -> int | None:
    """mtlgit's script version in ``path``, or None when it is not mtlgit's."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(512)
    except OSError:
        return None
    for line in head.splitlines()[:3]:
        if line.startswith(MARKER):
            digits = line[len(MARKER) :].split()[0] if line[len(MARKER) :].split() else ""
            return int(digits) if digits.isdigit() else 0
    return None


def render_hook(hook_type: str, python: str) -> str:
    template = (hooks_dir() / "hook.sh").read_text(encoding="utf-8")
    return (
        template.replace("@HOOK_TYPE@", hook_type)
        .replace("@INSTALL_PYTHON@", python.replace("'", ""))
        .replace("@REFRESH@", "1" if hook_type in REFRESH_HOOKS else "0")
    )


def install(repo: Repo, python: str | None = None) -> list[str]:
    """Install every mtlgit hook; return one line per hook saying what was done."""
    folder = hook_folder(repo)
    folder.mkdir(parents=True, exist_ok=True)
    python = python or sys.executable
    done = []
    for hook_type in HOOK_TYPES:
        path = folder / hook_type
        legacy = folder / f"{hook_type}.legacy"
        script = render_hook(hook_type, python)
        version = _version(path) if path.exists() else None
        if path.exists() and version is None:
            if legacy.exists():
                raise MtlgitError(
                    f"both {path} and {legacy} exist and neither is mtlgit's: merge them into one, then run "
                    "`mtlgit hooks install` again"
                )
            os.replace(path, legacy)
            note = f"installed; the existing hook is kept as {legacy.name} and runs first"
        elif version is not None and path.read_text(encoding="utf-8", errors="replace") == script:
            note = "already installed"
        elif version is not None:
            note = "upgraded" if version < VERSION else "reinstalled"
        else:
            note = "installed"
        tmp = folder / f".{hook_type}.mtlgit-tmp"
        tmp.write_text(script, encoding="utf-8")
        os.chmod(tmp, 0o755)  # noqa: S103 - git runs hooks only when they are executable
        os.replace(tmp, path)
        done.append(f"{hook_type}: {note}")
    return done


def uninstall(repo: Repo) -> list[str]:
    """Remove mtlgit's hooks and put back the hooks they replaced."""
    folder = hook_folder(repo)
    done = []
    for hook_type in HOOK_TYPES:
        path = folder / hook_type
        legacy = folder / f"{hook_type}.legacy"
        if path.exists() and _version(path) is not None:
            path.unlink()
            if legacy.exists():
                os.replace(legacy, path)
                done.append(f"{hook_type}: removed; the earlier hook is back")
            else:
                done.append(f"{hook_type}: removed")
        elif path.exists():
            done.append(f"{hook_type}: not mtlgit's, left alone")
    return done


def status(repo: Repo) -> list[HookState]:
    folder = hook_folder(repo)
    states = []
    for hook_type in HOOK_TYPES:
        path = folder / hook_type
        legacy = (folder / f"{hook_type}.legacy").exists()
        if not path.exists():
            states.append(HookState(hook_type, "absent", legacy))
            continue
        version = _version(path)
        if version is None:
            states.append(HookState(hook_type, "foreign", legacy))
            continue
        python = None
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("INSTALL_PYTHON="):
                python = line.split("=", 1)[1].strip("'")
        states.append(HookState(hook_type, "installed" if version >= VERSION else "outdated", legacy, python))
    return states


# --- running --------------------------------------------------------------------------------------------


def log(repo: Repo, message: str) -> None:
    """Append to ``.git/mtlgit/hooks.log`` (started afresh past 1 MiB)."""
    path = repo.state_dir / "hooks.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = "w" if path.exists() and path.stat().st_size > LOG_LIMIT else "a"
        with open(path, mode, encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message.rstrip()}\n")
    except OSError:
        pass


def refresh(repo: Repo, hook_type: str) -> None:
    """The refresh hooks' work: bring the working-tree index up to date. Never raises."""
    from mtlgit.index import WorktreeIndex

    started = time.perf_counter()
    try:
        snapshot = WorktreeIndex(repo).refresh()
        log(repo, f"{hook_type}: index of {snapshot.n_docs} memories fresh in {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        checked = warm(repo, snapshot)
        if checked:
            log(
                repo,
                f"{hook_type}: code citations of {checked} memories checked in {time.perf_counter() - started:.2f} s",
            )
    except MtlgitError as exc:
        log(repo, f"{hook_type}: index not refreshed: {exc}")
    except Exception:  # noqa: BLE001 - a hook must never break a git command
        log(repo, f"{hook_type}: index not refreshed, internal error:\n{traceback.format_exc()}")


def staged_problems(repo: Repo) -> tuple[int, list[Problem]]:
    """Lint the memory files as staged (the index, not the working tree): (files checked, problems)."""
    config = load_config(repo.root)
    folder = config.memories
    # T too: a symlink replaced by a file with the same name is a new memory.
    changed = repo.git("diff", "--cached", "--name-only", "-z", "--diff-filter=ACMRT", "--", folder)
    staged = set(changed.split("\0")) - {""}
    entries: list[tuple[str, str, str]] = []  # (path, blob, stage)
    for item in repo.git("ls-files", "-s", "-z", "--", folder).split("\0"):
        if not item:
            continue
        info, path = item.split("\t", 1)
        mode, blob, stage = info.split()
        if mode in MEMORY_FILE_MODES and is_memory_path(path, folder):
            entries.append((path, blob, stage))
    problems: list[Problem] = []
    unmerged = sorted({path for path, _blob, stage in entries if stage != "0"})
    for path in unmerged:
        problems.append(Problem(path, 0, "error", "conflict", "unmerged (a merge conflict): resolve it, then git add"))
    merged = [(path, blob) for path, blob, stage in entries if stage == "0"]
    ids: list[tuple[str, str]] = []
    cache = BlobCache(repo.state_dir / "cache.sqlite")
    try:
        # Staged files are parsed in full (their problems are the point); for the rest of the pool only the
        # ids matter, read from the cache without decoding analyses, and analysed only when never seen.
        mine = [(path, blob) for path, blob in merged if path in staged]
        contents = _read(repo, mine, list(range(len(mine))))
        for number, (path, _blob) in enumerate(mine):
            memory, found = parse_bytes(contents[number], path)
            problems.extend(found)
            if memory is not None:
                ids.append((memory.id, path))
        known = cache.memory_ids(blob for _path, blob in merged)
        unseen = [(path, blob) for path, blob in merged if blob not in known and path not in staged]
        if unseen:
            more = cache.analyse(unseen, lambda wanted: _read(repo, unseen, wanted))
            known.update({blob: (a["record"] or {}).get("id") for blob, a in more.items()})
    finally:
        cache.close()
    for path, blob in merged:
        memory_id = known.get(blob)
        if memory_id and path not in staged:
            ids.append((memory_id, path))
    ids.sort(key=lambda item: item[1])
    _kept, duplicates = first_of_each_id(ids)
    for index, first in duplicates:
        path = ids[index][1]
        if path in staged or first in staged:
            problems.append(duplicate_problem(path, ids[index][0], first))
    return len(staged), problems


def _read(repo: Repo, items: list[tuple[str, str]], wanted: list[int]) -> dict[int, bytes]:
    contents = read_blobs(repo, [items[i][1] for i in wanted])
    return {i: contents[items[i][1]] for i in wanted}
