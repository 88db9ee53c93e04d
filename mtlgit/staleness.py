"""Possibly stale memories: the code a memory was learned on changed since the commit it names.

A memory that cites code precisely (``source.cites``) gets a state, fresh, drifted or orphaned, from
mtlgit/citations.py. One that only names ``source.paths`` keeps the coarse check: when any of those paths has
a different blob at ``HEAD`` (or is gone), the memory may no longer hold. All the coarse checks of one call go
through a single ``git cat-file --batch-check``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtlgit import git
from mtlgit.citations import Report, cites_of, states
from mtlgit.errors import MtlgitError


def stale_notes(root: Path, memories: Sequence[dict[str, Any]], head: str = "HEAD") -> dict[int, str]:
    """Index of each memory that is possibly stale -> a note naming the changed paths.

    Memories without ``source.commit`` and ``source.paths``, or whose commit this repository does not have
    (learned elsewhere), are never flagged: nothing can be said about them.
    """
    asks: list[str] = []
    plans: list[tuple[int, str, list[str]]] = []
    for index, memory in enumerate(memories):
        source = memory.get("source") or {}
        commit = source.get("commit")
        paths = [p for p in source.get("paths") or [] if isinstance(p, str) and p and "\n" not in p]
        if not isinstance(commit, str) or not commit.strip() or not paths or "\n" in commit:
            continue
        commit = commit.strip()
        plans.append((index, commit, paths))
        asks.append(f"{commit}^{{commit}}")
        for path in paths:
            asks += [f"{commit}:{path}", f"{head}:{path}"]
    if not plans:
        return {}
    try:
        asked = ("\n".join(asks) + "\n").encode()
        out = git.run(root, "cat-file", "--batch-check=%(objectname)", input=asked, timeout=30)
    except MtlgitError:
        return {}
    answers = iter(out.stdout.decode("utf-8", "replace").splitlines())
    notes: dict[int, str] = {}
    for index, commit, paths in plans:
        known = not next(answers, "").endswith(" missing")
        changed = []
        for path in paths:
            then, now = next(answers, ""), next(answers, "")
            if known and then != now:
                changed.append(path if not now.endswith(" missing") else f"{path} (deleted)")
        if changed:
            notes[index] = f"possibly stale: {', '.join(changed)} changed since {commit[:10]}"
    return notes


def code_notes(
    root: Path, state_dir: Path | None, memories: Sequence[dict[str, Any]], head: str = "HEAD"
) -> tuple[dict[int, str], dict[int, Report]]:
    """(index -> note, index -> checked citations) of the memories: a citing memory gets its state (a note
    when drifted or orphaned), any other the coarse ``source.paths`` note. ``state_dir`` holds the cache."""
    reports = states(root, state_dir, memories, head)
    notes = {index: note for index, report in reports.items() if (note := report.note())}
    rest = [index for index, memory in enumerate(memories) if index not in reports and not cites_of(memory)]
    if rest:
        for position, note in stale_notes(root, [memories[i] for i in rest], head).items():
            notes[rest[position]] = note
    return notes, reports


def orphan_note(root: Path, state_dir: Path | None, memory: dict[str, Any]) -> str | None:
    """A line saying the memory's cited code is gone (for retire and edit), or None."""
    report = states(root, state_dir, [memory]).get(0)
    if report is None or report.state != "orphaned":
        return None
    gone = "; ".join(f"{c.cite.label} {c.detail}" for c in report.cites if c.state == "orphaned")
    return f"{memory.get('path') or memory.get('id')} is orphaned: {gone} since {report.commit[:10]}"
