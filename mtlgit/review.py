"""``mtlgit review``: a branch's memory changes as Markdown for a pull-request comment.

Added, changed, retired and deleted memories with their title, format and domains; lint findings on the
changed files; for each new memory the closest memories already in the base pool (near-duplicates are
flagged); abstraction warnings for insights that read as task-specific.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mtlgit.abstraction import specificity
from mtlgit.analysis import analyze
from mtlgit.config import load_config
from mtlgit.dedup import closest
from mtlgit.embed import load_model
from mtlgit.errors import MtlgitError, Problem
from mtlgit.gitobjects import object_ids, read_blobs, resolve_commit
from mtlgit.index import rev_snapshot
from mtlgit.memory import parse_bytes, search_text
from mtlgit.repo import Repo
from mtlgit.rules import is_memory_path


@dataclass
class Change:
    kind: str  # added | changed | retired | deleted | renamed
    path: str
    memory: dict[str, Any] | None = None
    old_path: str | None = None
    problems: list[Problem] = field(default_factory=list)
    similar: list[Any] = field(default_factory=list)
    specificity: float | None = None


@dataclass
class Review:
    base: str
    head: str
    changes: list[Change]

    @property
    def errors(self) -> list[Problem]:
        return [p for c in self.changes for p in c.problems if p.is_error]

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "errors": len(self.errors),
            "changes": [
                {
                    "kind": c.kind,
                    "path": c.path,
                    "old_path": c.old_path,
                    "id": (c.memory or {}).get("id"),
                    "title": (c.memory or {}).get("title"),
                    "problems": [p.to_json() for p in c.problems],
                    "similar": [
                        {
                            "cosine": round(s.cosine, 3),
                            "jaccard": round(s.jaccard, 3),
                            "id": s.memory["id"],
                            "title": s.memory["title"],
                            "path": s.path,
                            "near_duplicate": s.duplicate,
                        }
                        for s in c.similar
                    ],
                    "specificity": c.specificity,
                }
                for c in self.changes
            ],
        }


def parse_range(repo: Repo, spec: str | None, default_base: str) -> tuple[str, str]:
    """(base commit, head commit) of ``A..B``, ``A...B`` (from their merge base), ``A`` (A..HEAD) or nothing
    (the reviewed ref...HEAD)."""
    if not spec:
        try:
            resolve_commit(repo, default_base)
        except MtlgitError:
            raise MtlgitError(
                f"no range given and the reviewed ref '{default_base}' does not exist: give one, e.g. "
                "`mtlgit review main..HEAD`"
            ) from None
        spec = f"{default_base}...HEAD"
    if "..." in spec:
        left, right = spec.split("...", 1)
        head = resolve_commit(repo, right or "HEAD")
        base = repo.git("merge-base", resolve_commit(repo, left or "HEAD"), head, check=False).strip()
        if not base:
            raise MtlgitError(f"'{left}' and '{right or 'HEAD'}' have no common history")
        return base, head
    if ".." in spec:
        left, right = spec.split("..", 1)
        return resolve_commit(repo, left or "HEAD"), resolve_commit(repo, right or "HEAD")
    return resolve_commit(repo, spec), resolve_commit(repo, "HEAD")


def review(repo: Repo, spec: str | None = None) -> Review:
    config = load_config(repo.root)
    base, head = parse_range(repo, spec, config.reviewed_ref)
    folder = config.memories
    out = repo.git("diff", "--name-status", "-z", "-M", base, head, "--", folder)
    fields = out.split("\0")
    raw: list[tuple[str, str, str | None]] = []
    i = 0
    while i < len(fields) - 1:
        status = fields[i]
        if status.startswith(("R", "C")):
            raw.append((status[0], fields[i + 2], fields[i + 1]))
            i += 3
        else:
            raw.append((status[0], fields[i + 1], None))
            i += 2
    raw = [r for r in raw if is_memory_path(r[1], folder)]
    wanted = [f"{head}:{path}" for status, path, _old in raw if status != "D"]
    wanted += [f"{base}:{old or path}" for status, path, old in raw if status in ("M", "R", "D")]
    blobs = dict(zip(wanted, object_ids(repo, wanted), strict=True))
    contents = read_blobs(repo, [b for b in blobs.values() if b])
    base_snapshot = rev_snapshot(repo, base)
    model = None
    changes: list[Change] = []
    for status, path, old in raw:
        if status == "D":
            before, _ = parse_bytes(contents.get(blobs[f"{base}:{path}"], b""), path)
            changes.append(Change("deleted", path, before.to_json() if before else None))
            continue
        memory, problems = parse_bytes(contents[blobs[f"{head}:{path}"]], path)
        record = memory.to_json() if memory else None
        kind = {"A": "added", "C": "added", "R": "renamed"}.get(status, "changed")
        if status in ("M", "R") and memory is not None:
            before, _ = parse_bytes(contents.get(blobs.get(f"{base}:{old or path}", ""), b""), old or path)
            if before is not None and before.status == "active" and memory.status != "active":
                kind = "retired"
            elif status == "R" and before is not None and before.content != memory.content:
                kind = "changed"
        change = Change(kind, path, record, old_path=old, problems=problems)
        if memory is not None and kind in ("added", "changed"):
            text = search_text(record or {})
            change.specificity = specificity(f"{memory.title}\n{memory.content}", when=memory.description).score
            if kind == "added":
                model = model or load_model(config.model, repo.root, repo.state_dir)
                change.similar = closest(base_snapshot, model.encode([text])[0], analyze(text), 3, {memory.id})
        changes.append(change)
    return Review(base, head, changes)


def markdown(result: Review) -> str:
    """The review as a pull-request comment."""
    counts: dict[str, int] = {}
    for change in result.changes:
        counts[change.kind] = counts.get(change.kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "no memory changes"
    lines = [f"## mtlgit review: {summary}", "", f"`{result.base[:10]}..{result.head[:10]}`", ""]
    order = ("added", "changed", "renamed", "retired", "deleted")
    for kind in order:
        group = [c for c in result.changes if c.kind == kind]
        if not group:
            continue
        lines += [f"### {kind.capitalize()}", ""]
        for change in group:
            m = change.memory or {}
            title = m.get("title") or "(unreadable)"
            what = " · ".join(x for x in (m.get("format", ""), ", ".join(m.get("domains") or [])) if x)
            moved = f" (from `{change.old_path}`)" if change.old_path else ""
            what = f" ({what})" if what else ""
            lines.append(f"- **{title}**{what} — `{change.path}`{moved}")
            for problem in change.problems:
                icon = "❌" if problem.is_error else "⚠️"
                lines.append(f"  - {icon} line {problem.line}: {problem.message}")
            for similar in change.similar:
                flag = "**near-duplicate** of" if similar.duplicate else "closest:"
                lines.append(
                    f'  - {flag} "{similar.memory["title"]}" `{similar.path}` '
                    f"(cosine {similar.cosine:.2f}, shared terms {similar.jaccard:.2f})"
                )
        lines.append("")
    errors = len(result.errors)
    lines.append(f"**{errors} error(s)** — fix them before merging." if errors else "No lint errors.")
    return "\n".join(lines) + "\n"
