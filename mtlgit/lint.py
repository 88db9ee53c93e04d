"""Lint: every problem of every memory file, and the pool-wide ones (duplicate ids, ``superseded_by`` links)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from mtlgit import frontmatter
from mtlgit.citations import Report, cite_line, verify
from mtlgit.errors import MtlgitError, Problem
from mtlgit.ids import new_ulid
from mtlgit.ledger import harm_problems
from mtlgit.memory import Memory, key_line
from mtlgit.rules import scan_memories
from mtlgit.staleness import code_notes
from mtlgit.store import Pool, replace_file
from mtlgit.supersede import cycles, dangling


class LintJson(TypedDict):
    """A lint report as ``mtlgit lint --json`` prints it and MCP's ``lint`` tool returns it (its output schema)."""

    files: int
    errors: int
    warnings: int
    problems: list[dict[str, Any]]  # each Problem.to_json(): path, line, severity, code, message
    skipped: list[str]


@dataclass
class LintReport:
    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def to_json(self) -> LintJson:
        return {
            "files": self.files,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [p.to_json() for p in self.problems],
            "skipped": self.skipped,
        }


def lint_pool(pool: Pool, paths: Iterable[Path] | None = None, stale: bool = False) -> LintReport:
    """Lint the whole pool, or only the memory files ``paths`` name (files, or folders searched recursively),
    still checked against the whole pool for duplicate ids and ``superseded_by`` links.

    :param stale: report only the memories whose cited code drifted or is gone (and the coarse "possibly
        stale" ones), as warnings.
    :raises MtlgitError: when a path does not exist or is outside the memories folder (see :func:`memory_paths`).
    """
    wanted: list[str] | None = None
    skipped: list[str] = []
    odd = scan_problems(pool)
    if paths is not None:
        wanted, skipped = memory_paths(pool, paths, [p.path for p in odd])
    result = pool.load(refresh=True)
    problems = list(result.problems) + odd + link_problems(pool, result.memories)
    memories = result.memories
    if wanted is not None:
        chosen = set(wanted)
        problems = [p for p in problems if p.path in chosen]
        memories = [m for m in memories if m.path in chosen]
    if stale:
        problems = []
    records = [m.to_json() for m in memories]
    notes, reports = code_notes(pool.root, pool.repo.worktree_state_dir, records)
    for index, note in notes.items():
        line = _cite_line(pool, memories[index].path, reports[index]) if index in reports else 0
        code = reports[index].state if index in reports else "stale"
        problems.append(Problem(memories[index].path, line, "warning", code, f"{note}: check it still holds"))
    if stale:
        return LintReport(len(memories), sorted(problems, key=_order), skipped)
    for index, found in verify(pool.root, records).items():
        path = memories[index].path
        problems += [
            Problem(path, _cite_line(pool, path, position), "error", "cite", f"source.cites: {p}")
            for position, p in found
        ]
    problems += harm_problems(pool.repo, memories)
    files = len(pool.files()) + len(odd) if wanted is None else len(wanted)
    return LintReport(files, sorted(problems, key=_order), skipped)


def scan_problems(pool: Pool) -> list[Problem]:
    """An error for each named pipe, socket or device with a memory's name (from its stat alone: opening a pipe
    waits for a writer), and for each folder that cannot be listed: the index and recall leave them out, so lint
    names them."""
    found: list[tuple[str, str]] = []
    unlisted: list[tuple[str, str]] = []
    scan_memories(pool.memories_dir, pool.root, others=found, unlisted=unlisted)
    fix = "not a regular file, so no memory: replace it with a Markdown memory file or remove it"
    problems = [Problem(path, 0, "error", "not-a-file", f"{kind}, {fix}") for path, kind in found]
    for path, reason in unlisted:
        message = f"cannot list the folder ({reason}), so its memories are left out: give it read and search permission"
        problems.append(Problem(path, 0, "error", "unreadable", message))
    return problems


def _cite_line(pool: Pool, path: str, about: Report | int) -> int:
    """The line of the memory file holding a citation (of a report: its first drifted or orphaned one)."""
    try:
        text = (pool.root / path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    if isinstance(about, int):
        return cite_line(text, about)
    states = [c.state for c in about.cites]
    return cite_line(text, states.index(about.state) if about.state in states else 0)


def memory_paths(pool: Pool, paths: Iterable[Path], odd: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """The memory files that ``paths`` name, and the files named inside the memories folder that are not memories
    (README.md, hidden or not ``.md``: mtlgit skips them everywhere), as paths relative to the repository.
    ``odd``: the entries with a memory's name that are no regular file (lint reports them), taken as named.

    A gate must not pass because of a path: a folder stands for every memory file below it, and a path that does
    not exist, or that lies outside the memories folder (so no memory can be there), is refused.

    :raises MtlgitError: one line naming every such path.
    """
    root = os.path.abspath(pool.root)
    memories_rel = pool.rel(pool.memories_dir)
    every = [pool.rel(p) for p in pool.files()] + list(odd)
    known = set(every)
    wanted: list[str] = []
    skipped: list[str] = []
    missing: list[str] = []
    outside: list[str] = []
    for path in paths:
        # abspath, not resolve: a memory file may be a symlink, and the pool knows it by the link's name.
        absolute = os.path.abspath(path)
        rel = os.path.relpath(absolute, root).replace(os.sep, "/")
        if not os.path.lexists(absolute):
            missing.append(str(path))
        elif rel == ".." or rel.startswith("../"):
            outside.append(f"{path} (outside the repository)")
        elif os.path.isdir(absolute):
            if _within(memories_rel, rel):
                wanted += [f for f in every if _within(f, memories_rel)]
            elif _within(rel, memories_rel):
                wanted += [f for f in every if _within(f, rel)]
            else:
                outside.append(str(path))
        elif not _within(rel, memories_rel):
            outside.append(str(path))
        elif rel in known:
            wanted.append(rel)
        else:
            skipped.append(rel)
    failures = []
    if missing:
        failures.append(f"no such file or folder: {', '.join(missing)}")
    if outside:
        failures.append(
            f"not in the memories folder ({memories_rel}/): {', '.join(outside)}; lint checks memory files only"
        )
    if failures:
        raise MtlgitError("; ".join(failures))
    return list(dict.fromkeys(wanted)), list(dict.fromkeys(skipped))


def _within(path: str, folder: str) -> bool:
    return folder == "." or path == folder or path.startswith(folder + "/")


def link_problems(pool: Pool, memories: list[Memory]) -> list[Problem]:
    """An error on the ``superseded_by`` line of each memory in a cycle (naming every file and line of it) and
    of each memory whose ``superseded_by`` names an id no memory has."""
    problems = []
    for cycle in cycles(memories):
        lines = [_superseded_by_line(pool, m) for m in cycle]
        links = " -> ".join(f"{m.path}:{line}" for m, line in zip([*cycle, cycle[0]], [*lines, lines[0]], strict=True))
        for memory, line in zip(cycle, lines, strict=True):
            problems.append(
                Problem(
                    memory.path,
                    line,
                    "error",
                    "supersede-cycle",
                    f"superseded_by makes a cycle ({links}), so recall hides every memory in it: point one of "
                    "them at the memory that replaces it, or make it active (status: active, superseded_by: null)",
                )
            )
    for memory in dangling(memories):
        problems.append(
            Problem(
                memory.path,
                _superseded_by_line(pool, memory),
                "error",
                "supersede-missing",
                f"superseded_by names {memory.superseded_by}, but no memory here has that id: name the memory "
                "that replaces this one (`mtlgit list --all` shows the ids), or make it active",
            )
        )
    return problems


def _superseded_by_line(pool: Pool, memory: Memory) -> int:
    try:
        doc = frontmatter.parse((pool.root / memory.path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, frontmatter.FrontMatterError):
        return 0
    return key_line(doc, "superseded_by")


def _order(problem: Problem) -> tuple[str, int]:
    return problem.path, problem.line


def fix_ids(pool: Pool) -> list[tuple[str, str]]:
    """Give a fresh ULID to every file whose id is missing or duplicates another file's; return (path, id)."""
    fixed: list[tuple[str, str]] = []
    for problem in pool.load(refresh=True).problems:
        missing_id = problem.code == "missing" and "'id'" in problem.message
        if problem.code != "duplicate-id" and not missing_id:
            continue
        path = pool.root / problem.path
        text = path.read_text(encoding="utf-8")
        new_id = new_ulid()
        replace_file(path, frontmatter.set_fields(text, {"id": new_id}).encode("utf-8"), pool.tmp_dir)
        fixed.append((problem.path, new_id))
    pool.load(refresh=True)
    return fixed
