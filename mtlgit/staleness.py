"""Possibly stale memories: the code paths a memory was learned on changed since the commit it names.

A memory whose ``source`` names a ``commit`` and ``paths`` is about that code as it was; when any of those
paths has a different blob at ``HEAD`` (or is gone), the memory may no longer hold. All the checks of one
call go through a single ``git cat-file --batch-check``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtlgit import git
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
