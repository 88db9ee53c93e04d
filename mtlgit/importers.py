"""Importing guidance written for other tools: ReasoningBank-style JSONL, Cursor rules, CLAUDE.md / AGENTS.md.

Every candidate goes through the same checks as ``mtlgit add`` (validation, secrets, near-duplicates) and is
either imported or skipped with its reason; the source files are only read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtlgit import frontmatter
from mtlgit.errors import MtlgitError
from mtlgit.store import Pool

RULE_SUFFIXES = ("-cursorrules-prompt-file", "-cursorrules-prompt", "-cursor-rules", "-cursorrules")
AGENT_FILES = ("claude.md", "agents.md", "gemini.md", "copilot-instructions.md")
MAX_SOURCE_BYTES = 1024 * 1024


@dataclass
class Candidate:
    source: str
    fields: dict[str, Any] = field(default_factory=dict)
    skip: str = ""
    # The source file and its lines the candidate was made from: secrets are reported at those lines.
    file: Path | None = None
    lines: tuple[int, int] = (0, 0)


@dataclass
class ImportReport:
    imported: list[tuple[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": len(self.imported),
            "skipped": len(self.skipped),
            "memories": [
                {"source": s, "id": m.id if m else None, "path": m.path if m else None} for s, m in self.imported
            ],
            "skips": [{"source": s, "reason": r} for s, r in self.skipped],
        }


def _humanise(name: str) -> str:
    words = re.sub(r"[-_]+", " ", name).strip()
    return words[:1].upper() + words[1:] if words else "Imported rule"


def _first_sentence(text: str, limit: int = 100) -> str:
    """The first sentence (or line) of ``text``, on one line, cut at a word within ``limit`` characters."""
    first_line = next((line.strip(" -*#>\t") for line in text.strip().split("\n") if line.strip(" -*#>\t")), "")
    sentence = re.split(r"(?<=[.!?])\s", " ".join(first_line.split()), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rsplit(" ", 1)[0] + "…"


def _domain_of(folder: Path) -> str:
    name = folder.name.lower()
    for suffix in RULE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return (name.split("-")[0] or "general")[:40]


def _loose_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Front matter as Cursor writes it: often not YAML (``globs: **/*.ts`` reads as an alias), so a failed
    parse falls back to one ``key: value`` per line."""
    try:
        doc = frontmatter.parse(text)
        return doc.meta, doc.body
    except frontmatter.FrontMatterError:
        pass
    lines = text.split("\n")
    end = next((i for i in range(1, len(lines)) if frontmatter.FENCE_RE.match(lines[i])), None)
    if not lines or not frontmatter.FENCE_RE.match(lines[0]) or end is None:
        return {}, text
    meta: dict[str, Any] = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "-")):
            meta[key.strip()] = value.strip().strip("\"'")
    return meta, "\n".join(lines[end + 1 :])


def _sections(markdown: str) -> list[tuple[str, str, int, int]]:
    """(heading, body, first line, last line) of each Markdown section, the heading's line included; text
    before the first heading has an empty heading."""
    out: list[tuple[str, list[str], int]] = [("", [], 1)]
    fence = False
    for number, line in enumerate(markdown.split("\n"), 1):
        if line.lstrip().startswith("```"):
            fence = not fence
        heading = re.match(r"^#{1,6}\s+(.*)", line) if not fence else None
        if heading:
            out.append((heading.group(1).strip().strip("#").strip(), [], number))
        else:
            out[-1][1].append(line)
    return [
        (title, "\n".join(body).strip(), first, first + len(body) - (0 if index else 1))
        for index, (title, body, first) in enumerate(out)
        if "\n".join(body).strip()
    ]


def from_cursor_mdc(path: Path, root: Path) -> Iterator[Candidate]:
    text = path.read_text(encoding="utf-8")
    meta, body = _loose_front_matter(text)
    description = str(meta.get("description") or "").strip()
    globs = meta.get("globs")
    title = _first_sentence(description) if description else _humanise(path.stem)
    when = f"When working on files matching {globs}." if globs and str(globs).strip() else ""
    yield Candidate(
        _rel(path, root),
        {
            "title": title,
            "description": description or when or f"When following the rules on {title.lower()}.",
            "content": body.strip(),
            "domains": [_domain_of(path.parent)],
            "tags": ["cursor-rule"],
            "source": {"agent": "cursor", "task": _rel(path, root)},
        },
        file=path,
        lines=(1, text.count("\n") + 1),
    )


def from_markdown_sections(path: Path, root: Path, tag: str, bullets_only: bool) -> Iterator[Candidate]:
    """One memory per section of a rules file (``.cursorrules``) or per bullet section (CLAUDE.md, AGENTS.md)."""
    text = path.read_text(encoding="utf-8")
    sections = _sections(text)
    if not sections:
        yield Candidate(_rel(path, root), skip="no text")
        return
    for number, (heading, body, first, last) in enumerate(sections, 1):
        source = f"{_rel(path, root)}#{number}"
        if bullets_only and not re.search(r"^\s*(?:[-*+]|\d+[.)])\s+\S", body, re.MULTILINE):
            yield Candidate(source, skip="section without a bullet list")
            continue
        title = heading or _first_sentence(body.lstrip("-*+ ").strip())
        yield Candidate(
            source,
            {
                "title": title,
                "description": f"When following the {tag.replace('-', ' ')}s on {title.lower()}."
                if heading
                else f"When working under the guidance of {path.name}.",
                "content": body,
                "domains": [_domain_of(path.parent)],
                "tags": [tag],
                "source": {"task": _rel(path, root)},
            },
            file=path,
            lines=(first, last),
        )


def from_jsonl(path: Path, root: Path) -> Iterator[Candidate]:
    """ReasoningBank-style memory items: one JSON object per line with title, description, content (a line may
    also hold a list of them, or an object with ``memory_items``)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        source = f"{_rel(path, root)}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Candidate(source, skip=f"not JSON ({exc.msg})")
            continue
        items = data.get("memory_items", [data]) if isinstance(data, dict) else data
        for item in items if isinstance(items, list) else [items]:
            from mtlgit.intake import fields_of

            fields, problems = fields_of(item)
            if problems:
                yield Candidate(source, skip="; ".join(problems))
            else:
                yield Candidate(source, fields, file=path, lines=(number, number))


def candidates(path: Path, root: Path) -> Iterator[Candidate]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        name = file.name.lower()
        try:
            if file.stat().st_size > MAX_SOURCE_BYTES:
                yield Candidate(_rel(file, root), skip="larger than 1 MiB")
            elif name.endswith(".mdc"):
                yield from from_cursor_mdc(file, root)
            elif name == ".cursorrules" or name.startswith(".cursorrules") or name.endswith(".cursorrules"):
                yield from from_markdown_sections(file, root, "cursor-rule", bullets_only=False)
            elif name in AGENT_FILES:
                yield from from_markdown_sections(file, root, "agent-instruction", bullets_only=True)
            elif name.endswith((".jsonl", ".json")):
                yield from from_jsonl(file, root)
            else:
                kinds = ".mdc, .cursorrules, CLAUDE.md, AGENTS.md, .jsonl"
                yield Candidate(_rel(file, root), skip=f"not a kind mtlgit imports ({kinds})")
        except UnicodeDecodeError:
            yield Candidate(_rel(file, root), skip="not UTF-8 text")
        except OSError as exc:
            yield Candidate(_rel(file, root), skip=f"unreadable ({exc.strerror})")


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def import_path(
    pool: Pool, path: Path, domain: str | None = None, force: bool = False, dry_run: bool = False
) -> ImportReport:
    """Import every candidate under ``path`` into ``pool``; ``dry_run`` runs every check and writes nothing."""
    from mtlgit.intake import _Checker, add_one

    if not path.exists():
        raise MtlgitError(f"{path} does not exist")
    report = ImportReport()
    checker = _Checker(pool)
    root = path if path.is_dir() else path.parent
    secrets = _SourceSecrets()
    for candidate in candidates(path, root):
        if candidate.skip:
            report.skipped.append((candidate.source, candidate.skip))
            continue
        fields = candidate.fields
        if not str(fields.get("content", "")).strip():
            report.skipped.append((candidate.source, "no content"))
            continue
        found = secrets.between(candidate)
        if found:
            report.skipped.append((candidate.source, found))
            continue
        if domain:
            fields["domains"] = [domain]
        result = add_one(pool, fields, force=force, checker=checker, dry_run=dry_run)
        if result.added:
            report.imported.append((candidate.source, result.memory))
        else:
            report.skipped.append((candidate.source, "; ".join(result.reasons)))
    return report


class _SourceSecrets:
    """Secrets found in each source file, scanned once, so that a skip names the line of the source file (where
    ``pragma: allowlist secret`` goes), not of the memory file it would have become."""

    def __init__(self) -> None:
        self.found: dict[Path, list[Any]] = {}

    def between(self, candidate: Candidate) -> str:
        from mtlgit.secrets import ALLOW, find_secrets

        if candidate.file is None:
            return ""
        if candidate.file not in self.found:
            self.found[candidate.file] = find_secrets(candidate.file.read_text(encoding="utf-8"))
        first, last = candidate.lines
        hits = [f for f in self.found[candidate.file] if first <= f.line <= last]
        if not hits:
            return ""
        where = candidate.source.split("#", 1)[0].rsplit(":", 1)[0]
        return "; ".join(
            f"contains {f.describe()} of {where}: remove it (or, for a false positive, put '{ALLOW}' on that line)"
            for f in hits
        )
