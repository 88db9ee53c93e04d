"""The rules every layer of mtlgit shares, each written once: which files are memories, what an id looks like,
and the closed sets of values (formats, statuses, scopes, outcomes, recall modes, freshness, pool trust).

It imports nothing from mtlgit, so that any module may use it without an import cycle; nor YAML or numpy,
so that ``mtlgit recall`` pays nothing for it.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from pathlib import Path

# --- the vocabulary of format v1 (docs/format.md) ------------------------------------------------------------

FORMATS = ("insight", "workflow", "summary", "trajectory")
SCOPES = ("task-agnostic", "task-specific")
OUTCOMES = ("success", "failure", "unknown")
STATUSES = ("active", "retired", "superseded")
SOURCE_TEXT_KEYS = ("task", "agent", "model", "commit")
KEY_ORDER = (
    "id",
    "title",
    "description",
    "goal",
    "format",
    "scope",
    "domains",
    "tags",
    "outcome",
    "source",
    "created",
    "status",
    "superseded_by",
)
KNOWN_KEYS = frozenset(KEY_ORDER)
DEFAULT_SCOPE = {
    "insight": "task-agnostic",
    "workflow": "task-agnostic",
    "summary": "task-specific",
    "trajectory": "task-specific",
}

# --- the configuration's closed choices (.mtlgit.yaml) ------------------------------------------------------

MODES = ("hybrid", "bm25", "dense")
# How a recall learns what changed since the index was built (README, "Never stale"). auto: stat below
# mtlgit.index.freshness.AUTO_WATCH_FILES files, the watcher from there (Linux). stat: every memory file's
# stat on every recall. watch: ask the worktree's inotify watcher at any size (stat when none runs). folders:
# only the folders and recently written files (an edit in place of an older file waits for the git hooks or
# `mtlgit index`).
FRESHNESS = ("auto", "stat", "watch", "folders")
TRUST = ("reviewed", "untrusted")

# --- ids ---------------------------------------------------------------------------------------------------

# ULIDs: 48 bits of milliseconds then 80 random bits, in Crockford base32; compared without regard to case.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# The patterns are compiled on first use (re keeps them), not on import: recall imports this module and
# checks no id.
_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_POOL_NAME = r"[a-z0-9][a-z0-9_-]{0,39}"


def is_ulid(text: str) -> bool:
    """Whether ``text`` is a ULID, in either case: what `mtlgit add` writes."""
    return re.fullmatch(_ULID, text, re.IGNORECASE) is not None


def is_valid_id(text: str) -> bool:
    """Whether ``text`` may be a memory's id: a ULID or any id written by hand or imported, 64 characters at
    most, of letters, digits, '.', '_' and '-'."""
    return re.fullmatch(_ID, text) is not None


def is_pool_name(name: str) -> bool:
    """Whether ``name`` may name a pool (``local`` names the repository's own memories)."""
    return name != "local" and re.fullmatch(_POOL_NAME, name) is not None


def first_of_each_id(items: list[tuple[str, str]]) -> tuple[list[int], list[tuple[int, str]]]:
    """Given (id, path) pairs in path order: the indexes kept, and (index, path of the first) of each repeat."""
    first: dict[str, str] = {}
    kept: list[int] = []
    duplicates: list[tuple[int, str]] = []
    for index, (memory_id, path) in enumerate(items):
        key = memory_id.upper()
        if key in first:
            duplicates.append((index, first[key]))
        else:
            first[key] = path
            kept.append(index)
    return kept, duplicates


# --- which files are memories --------------------------------------------------------------------------------

SKIPPED_NAMES = frozenset({"readme.md"})
# A symlink (120000) or a submodule (160000) in a git tree is not a memory.
MEMORY_FILE_MODES = ("100644", "100755")


def is_memory_name(name: str) -> bool:
    """Whether a file named ``name`` can be a memory: ``.md`` in any case, not README.md, not hidden (the
    temporary files of writers are hidden)."""
    lower = name.lower()
    return lower.endswith(".md") and lower not in SKIPPED_NAMES and not name.startswith(".")


def is_memory_path(path: str, folder: str) -> bool:
    """Whether the repository path ``path`` names a memory file of the memories folder ``folder``, by the
    rule the working tree is read with (:func:`scan_memories`): below the folder, a memory's name, no hidden
    folder below the folder (the folder's own name may start with a dot). Commits, commit hooks and reviews
    use it on paths git lists, so that they read every file the index reads."""
    folder = posixpath.normpath(folder)
    prefix = "" if folder == "." else folder + "/"
    if not path.startswith(prefix):
        return False
    parts = path[len(prefix) :].split("/")
    return is_memory_name(parts[-1]) and not any(part.startswith(".") for part in parts[:-1])


def scan_memories(
    folder: Path,
    root: Path,
    listings: list[tuple[int, list[str]]] | None = None,
    others: list[tuple[str, str]] | None = None,
    unlisted: list[tuple[str, str]] | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """Every memory file below ``folder`` in a stable order, every folder visited (``folder`` first), and the
    files that are symlinks, as paths relative to ``root`` with forward slashes. ``listings``, when given,
    receives for each folder visited its mtime read just before it was listed, and the names listed;
    ``others`` receives each entry with a memory's name that is no regular file (path, what it is: see
    :func:`not_regular`), which is not among the memory files; ``unlisted`` each folder that is there but could
    not be listed (path, why: no permission), whose memories are not among them either.

    Hidden folders are skipped. Symlinked folders are followed only when they stay inside ``root``, each real
    folder once, so a symlink loop ends. Strings, not Path objects: an index refresh walks every file on each
    run.
    """
    root_real = os.path.realpath(root)
    base = os.path.join(os.path.abspath(root), "")
    seen: set[str] = set()
    files: list[str] = []
    folders: list[str] = []
    links: list[str] = []
    slash = os.sep != "/"

    def rel(path: str) -> str:
        relative = path[len(base) :] if path.startswith(base) else os.path.relpath(path, root)
        return relative.replace(os.sep, "/") if slash else relative

    def walk(path: str) -> None:
        real = os.path.realpath(path)
        if real in seen:
            return
        seen.add(real)
        try:
            before = os.stat(path).st_mtime_ns if listings is not None else 0
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if unlisted is not None and not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                unlisted.append((rel(path), exc.strerror or str(exc)))
            return
        folders.append(rel(path))
        if listings is not None:
            listings.append((before, [entry.name for entry in entries]))
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                walk(entry.path)
            elif entry.is_symlink() and os.path.isdir(entry.path):
                target = os.path.realpath(entry.path)
                if target == root_real or target.startswith(os.path.join(root_real, "")):
                    walk(entry.path)
            elif is_memory_name(name) and (entry.is_file() or (entry.is_symlink() and not os.path.exists(entry.path))):
                # A regular file, or a broken symlink (lint reports it); a named pipe, socket or device is no
                # memory, and reading one would wait for a writer for ever.
                files.append(rel(entry.path))
                if entry.is_symlink():
                    links.append(files[-1])
            elif others is not None and is_memory_name(name) and (kind := not_regular(entry.path)):
                others.append((rel(entry.path), kind))

    start = os.path.join(os.path.abspath(root), os.path.relpath(folder, root)) if folder.is_absolute() else str(folder)
    if os.path.isdir(start):
        walk(os.path.normpath(start))
    return files, folders, links


def not_regular(path: str) -> str:
    """What ``path`` is when it is no regular file ("a named pipe", "a symlink to a socket"...), from its stat
    alone (opening a pipe waits for a writer); "" for a regular file or one gone."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISFIFO(mode):
        kind = "named pipe"
    elif stat.S_ISSOCK(mode):
        kind = "socket"
    else:
        kind = "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file"
    return f"a symlink to a {kind}" if os.path.islink(path) else f"a {kind}"


def read_regular(path: str | Path) -> bytes:
    """The bytes of the regular file ``path``.

    :raises OSError: when it is gone or unreadable, or is no regular file (a named pipe swapped in for a memory
        would make a plain read wait for a writer for ever: it is opened without waiting, then refused).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(22, "not a regular file (a named pipe, socket or device)", str(path))
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
