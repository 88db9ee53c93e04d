"""``mtlgit log``: one memory's history from git, across renames, with its status at each commit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mtlgit import git
from mtlgit.errors import MemoryNotFoundError, MtlgitError
from mtlgit.gitobjects import object_ids, read_blobs
from mtlgit.memory import parse_bytes
from mtlgit.store import Pool


@dataclass
class Entry:
    commit: str
    author: str
    date: str
    subject: str
    change: str
    path: str
    status: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def memory_log(pool: Pool, ref: str) -> tuple[str, list[Entry]]:
    """(memory id, history newest first) of the memory ``ref`` names: a current memory, or by its full id
    one that was deleted."""
    repo = pool.repo
    try:
        memory = pool.get(ref)
        memory_id = memory.id
        args = ["--follow", "--", memory.path]
    except MemoryNotFoundError:
        if len(ref) < 10:
            raise
        memory_id = ref
        args = [f"-S{ref}", "--", pool.config.memories]
    log = git.run(
        repo.root, "log", "-M", "--format=%x1e%H%x1f%an%x1f%as%x1f%s", "--name-status", "-z", *args, check=False
    )
    # A branch without commits has no history; any other failure (a damaged object) is told, not half-read.
    if not log.ok and repo.git("rev-parse", "--verify", "--quiet", "HEAD", check=False).strip():
        log.check()
    out = log.text
    entries: list[Entry] = []
    for record in out.split("\x1e"):
        if not record.strip("\0\n"):
            continue
        # With -z the format line ends in NUL (or a newline before the name-status fields).
        parts = re.split(r"[\n\0]", record.lstrip("\0\n"), maxsplit=1)
        header, rest = parts[0], parts[1] if len(parts) > 1 else ""
        commit, author, date, subject = header.split("\x1f", 3)
        fields = [f for f in rest.strip("\0\n").split("\0") if f]
        change, path = _change(fields)
        entries.append(Entry(commit, author, date, subject, change, path))
    if not entries:
        raise MtlgitError(f"memory {memory_id} has no history yet: commit it first")
    _fill_status(pool, entries)
    previous: str | None = None
    for entry in reversed(entries):
        if entry.status and previous == "active" and entry.status != "active":
            entry.change = entry.status if entry.status != "superseded" else "superseded"
        previous = entry.status or previous
    return memory_id, entries


def _change(fields: list[str]) -> tuple[str, str]:
    if not fields:
        return "changed", ""
    status = fields[0]
    if status.startswith("R") and len(fields) >= 3:
        return f"renamed from {fields[1]}", fields[2]
    names = {"A": "added", "M": "modified", "D": "deleted", "C": "copied"}
    return names.get(status[:1], status), fields[1] if len(fields) > 1 else ""


def _fill_status(pool: Pool, entries: list[Entry]) -> None:
    """The memory's ``status`` field as of each commit (batched through one cat-file)."""
    names = [f"{e.commit}:{e.path}" for e in entries if e.change != "deleted"]
    blobs = dict(zip(names, object_ids(pool.repo, names), strict=True))
    contents = read_blobs(pool.repo, [b for b in blobs.values() if b])
    for entry in entries:
        blob = blobs.get(f"{entry.commit}:{entry.path}")
        if blob:
            memory, _problems = parse_bytes(contents[blob], entry.path)
            entry.status = memory.status if memory is not None else None
