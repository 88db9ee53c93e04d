"""Lint: every problem of every memory file, and the pool-wide ones (duplicate ids)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mtlgit import frontmatter
from mtlgit.errors import Problem
from mtlgit.ids import new_ulid
from mtlgit.ledger import harm_problems
from mtlgit.staleness import stale_notes
from mtlgit.store import Pool, replace_file


@dataclass
class LintReport:
    files: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))


def lint_pool(pool: Pool, paths: Iterable[Path] | None = None) -> LintReport:
    """Lint the whole pool, or only ``paths`` (still checked against the whole pool for duplicate ids)."""
    result = pool.load(refresh=True)
    files = pool.files()
    problems = list(result.problems)
    memories = result.memories
    if paths is not None:
        wanted = {pool.rel(Path(p).resolve()) for p in paths}
        problems = [p for p in problems if p.path in wanted]
        memories = [m for m in memories if m.path in wanted]
    notes = stale_notes(pool.root, [m.to_json() for m in memories])
    for index, note in notes.items():
        problems.append(Problem(memories[index].path, 0, "warning", "stale", f"{note}: check it still holds"))
    problems += harm_problems(pool.repo, memories)
    return LintReport(len(files) if paths is None else len(wanted), sorted(problems, key=_order))


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
        replace_file(path, frontmatter.set_fields(text, {"id": new_id}).encode("utf-8"))
        fixed.append((problem.path, new_id))
    pool.load(refresh=True)
    return fixed
