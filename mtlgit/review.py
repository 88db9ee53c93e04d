"""``mtlgit review``: a branch's memory changes as Markdown for a pull-request comment.

Added, changed, retired and deleted memories with their title, format and domains; lint findings on the
changed files; for each new memory the closest memories already in the base pool (near-duplicates are
flagged); abstraction warnings for insights that read as task-specific. Then the memories whose cited code
(``source.cites``) the branch changes, each with the diff hunks that touched it: a pull request that changes
code also reviews the memories about that code (docs/citations.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mtlgit.abstraction import specificity
from mtlgit.analysis import analyze
from mtlgit.citations import CiteState, states
from mtlgit.config import DEFAULT_BRANCHES, load_config
from mtlgit.dedup import closest
from mtlgit.embed import load_model
from mtlgit.errors import MtlgitError, Problem
from mtlgit.gitobjects import memory_entries, object_ids, read_blobs, resolve_commit
from mtlgit.index import rev_snapshot
from mtlgit.memory import parse_bytes, search_text
from mtlgit.repo import Repo
from mtlgit.rules import is_memory_path

ORPHANS = ("fail", "warn")
_HUNK_LINES = 12


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
class CodeChange:
    """A memory whose cited code differs between base and head: each citation's state at both ends, and the
    diff hunks of the branch that touched it."""

    path: str
    memory: dict[str, Any]
    cites: list[tuple[CiteState | None, CiteState, list[str]]]

    @property
    def orphaned(self) -> bool:
        """The branch orphans it: a citation gone at head that was there at base."""
        return any(
            after.state == "orphaned" and (before is None or before.state != "orphaned")
            for before, after, _hunks in self.cites
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "id": self.memory.get("id"),
            "title": self.memory.get("title"),
            "orphaned_by_branch": self.orphaned,
            "cites": [
                {**after.to_json(), "base_state": before.state if before else None, "hunks": hunks}
                for before, after, hunks in self.cites
            ],
        }


@dataclass
class Review:
    base: str
    head: str
    changes: list[Change]
    code: list[CodeChange] = field(default_factory=list)
    orphans: str = "fail"  # .mtlgit.yaml review.orphans: fail | warn

    @property
    def errors(self) -> list[Problem]:
        return [p for c in self.changes for p in c.problems if p.is_error]

    @property
    def failed_orphans(self) -> list[CodeChange]:
        """The memories the branch orphans, when the configuration makes them fail --check."""
        return [c for c in self.code if c.orphaned] if self.orphans == "fail" else []

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
            "code": [c.to_json() for c in self.code],
            "orphaned_by_branch": len([c for c in self.code if c.orphaned]),
        }


def parse_range(repo: Repo, spec: str | None, default_base: str | None) -> tuple[str, str]:
    """(base commit, head commit) of ``A..B``, ``A...B`` (from their merge base), ``A`` (A..HEAD) or nothing
    (the reviewed ref...HEAD; ``default_base`` None: there is none)."""
    if not spec:
        if default_base is None:
            raise MtlgitError(
                "no range given and no reviewed branch: .mtlgit.yaml sets no reviewed_ref, and neither origin nor "
                f"a lone remote has a default branch (its HEAD, or one of {', '.join(DEFAULT_BRANCHES)}): give one, "
                "e.g. `mtlgit review main..HEAD`, or set `reviewed_ref: BRANCH` in .mtlgit.yaml"
            )
        try:
            resolve_commit(repo, default_base)
        except MtlgitError:
            raise MtlgitError(
                f"no range given and the reviewed ref '{default_base}' (reviewed_ref) does not exist: fetch it "
                "(`git fetch`), give one, e.g. `mtlgit review main..HEAD`, or set reviewed_ref in .mtlgit.yaml"
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
    return Review(base, head, changes, code_changes(repo, base, head, folder), orphans_setting(config.raw))


def orphans_setting(raw: dict[str, Any]) -> str:
    """``review.orphans`` of .mtlgit.yaml: ``fail`` (default: `review --check` fails on a memory the branch
    orphans) or ``warn``."""
    section = raw.get("review") or {}
    value = section.get("orphans", "fail") if isinstance(section, dict) else None
    if value not in ORPHANS:
        raise MtlgitError(
            ".mtlgit.yaml: 'review.orphans' must be fail or warn (what `review --check` does with a "
            "memory whose cited code the branch removes)"
        )
    return str(value)


def code_changes(repo: Repo, base: str, head: str, folder: str) -> list[CodeChange]:
    """The memories at head whose cited code differs between base and head, with the branch's hunks."""
    entries = memory_entries(repo, head, folder)
    contents = read_blobs(repo, [blob for _path, blob, _size in entries])
    records: list[dict[str, Any]] = []
    for path, blob, _size in entries:
        data = contents.get(blob, b"")
        if b"cites" not in data:
            continue
        memory, _problems = parse_bytes(data, path)
        if memory is not None and memory.source.get("cites"):
            records.append(memory.to_json())
    if not records:
        return []
    before = states(repo.root, repo.worktree_state_dir, records, base)
    after = states(repo.root, repo.worktree_state_dir, records, head)
    found: list[CodeChange] = []
    for index, report in sorted(after.items()):
        then = before.get(index)
        pairs = []
        for position, state in enumerate(report.cites):
            old = then.cites[position] if then and position < len(then.cites) else None
            if old is None or (old.state, old.digest, old.path) != (state.state, state.digest, state.path):
                pairs.append((old, state))
        if pairs:
            found.append(CodeChange(str(records[index].get("path")), records[index], [(a, b, []) for a, b in pairs]))
    if found:
        _attach_hunks(repo, base, head, found)
    return found


def _attach_hunks(repo: Repo, base: str, head: str, found: list[CodeChange]) -> None:
    """Give each changed citation the hunks of ``git diff -M base head`` that touch its code at base (one diff
    for all the cited files)."""
    paths = sorted(
        {p for change in found for a, b, _h in change.cites for p in (a and a.path, b.path, b.cite.path) if p}
    )
    out = repo.git("diff", "--no-color", "--no-ext-diff", "-U0", "-M", base, head, "--", *paths, check=False)
    # old path -> [(first old line, old line count, hunk text)]
    hunks: dict[str, list[tuple[int, int, list[str]]]] = {}
    old_path, inside = "", False
    for line in out.splitlines():
        if line.startswith("diff "):
            inside = False
        elif line.startswith("--- ") and not inside:
            old_path = line[6:] if line.startswith("--- a/") else ""
        elif line.startswith("@@ "):
            start, _, count = line.split(" ")[1][1:].partition(",")
            hunks.setdefault(old_path, []).append((int(start), int(count or "1"), [line]))
            inside = True
        elif inside and len(hunks[old_path][-1][2]) <= _HUNK_LINES:
            hunks[old_path][-1][2].append(line)
    for change in found:
        for position, (before, after, _h) in enumerate(change.cites):
            where = before.path if before and before.path else after.cite.path
            span = before.lines if before else None
            touching = [
                "\n".join(text)
                for start, count, text in hunks.get(where, [])
                if span is None or _overlaps(start, count, span)
            ]
            change.cites[position] = (before, after, touching)


def _overlaps(start: int, count: int, span: tuple[int, int]) -> bool:
    """Does a hunk removing ``count`` lines from ``start`` (or inserting after ``start`` when 0) touch lines
    span[0]..span[1]?"""
    first, last = span
    if count == 0:
        return first <= start < last
    return start <= last and start + count - 1 >= first


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
    if result.code:
        lines += ["### Memories about code this branch changes", ""]
        for code in result.code:
            flag = " — **orphaned by this branch**" if code.orphaned else ""
            lines.append(f"- **{code.memory.get('title', '')}** — `{code.path}`{flag}")
            for before, after, hunks in code.cites:
                was = before.state if before else "unknown"
                lines.append(f"  - `{after.cite.label}`: {was} → {after.state} ({after.detail})")
                for hunk in hunks:
                    lines += ["", "    ```diff", *(f"    {text}" for text in hunk.split("\n")), "    ```", ""]
        lines.append("")
    errors = len(result.errors)
    lines.append(f"**{errors} error(s)** — fix them before merging." if errors else "No lint errors.")
    orphans = len(result.failed_orphans)
    if orphans:
        lines.append(f"**{orphans} memory(ies) orphaned** by this branch — update their source.cites or retire them.")
    return "\n".join(lines) + "\n"
