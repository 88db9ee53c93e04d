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
from mtlgit.rules import OUTCOMES, STATUSES
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
    # id, created, status, superseded_by of a memory an mtlgit export carried: the import keeps them.
    assigned: dict[str, Any] = field(default_factory=dict)


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


# The keys public ReasoningBank implementations give a record's task id, task text and outcome (the shapes are
# in tests/data/reasoningbank/); the first key an item or its record has wins.
TASK_ID_KEYS = ("task_id", "source_task_id", "source_problem_id", "problem_id", "instance_id")
QUERY_KEYS = ("query", "task_query", "task_description", "intent", "instruction", "problem_statement", "question")
OUTCOME_KEYS = ("outcome", "status", "success", "success_signal", "label", "judge_label", "result", "correct")
ITEM_LIST_KEYS = ("memory_items", "memories", "items")
SUCCESS_WORDS = frozenset(
    "success succeeded successful succeed pass passed correct resolved solved true yes positive".split()
)
FAILURE_WORDS = frozenset("failure fail failed incorrect wrong unresolved unsolved false no error negative".split())
# What an mtlgit export adds that is not a field of the memory file: where it was, and which pool.
EXPORT_ONLY = ("path", "pool")
MEMORY_ITEM_RE = re.compile(r"^\s*#\s*Memory Item\b.*$", re.MULTILINE | re.IGNORECASE)
ITEM_SECTION_RE = re.compile(r"^\s*##\s*(Title|Description|Content)\b:?[ \t]*(.*)$", re.MULTILINE | re.IGNORECASE)


def outcome_of(value: Any) -> str | None:
    """``success`` or ``failure`` for the ways ReasoningBank records state an outcome (``status: fail``,
    ``success: true``, ``label: Success``); None for anything else."""
    if isinstance(value, bool):
        return "success" if value else "failure"
    if isinstance(value, str):
        word = value.strip().lower()
        if word in SUCCESS_WORDS:
            return "success"
        if word in FAILURE_WORDS:
            return "failure"
    return None


def markdown_items(texts: list[str]) -> list[dict[str, Any]]:
    """Memory items written as the paper's Markdown (``# Memory Item i`` / ``## Title`` / ``## Description``
    / ``## Content``). ReasoningBank's own code stores the model's answer split at blank lines, so one item may
    span several strings: they are joined before the items are found."""
    text = "\n\n".join(t for t in texts if t.strip()).replace("```", "")
    chunks = MEMORY_ITEM_RE.split(text)
    items = []
    for chunk in chunks:
        sections = list(ITEM_SECTION_RE.finditer(chunk))
        if not sections:
            if chunk.strip():
                items.append({"title": _first_sentence(chunk), "content": chunk.strip()})
            continue
        item: dict[str, Any] = {}
        for index, match in enumerate(sections):
            end = sections[index + 1].start() if index + 1 < len(sections) else len(chunk)
            value = (match.group(2) + chunk[match.end() : end]).strip()
            item[match.group(1).lower()] = " ".join(value.split()) if match.group(1).lower() != "content" else value
        items.append(item)
    return items


def record_items(record: Any) -> list[tuple[Any, dict[str, Any]]]:
    """Each memory item of one JSON record with the record-level fields it inherits (task, query, outcome...).

    A record is an item itself (title, description, content at the top level), a list of items, or an object
    holding them under ``memory_items`` (or ``memories``, ``items``) as objects or as Markdown text.
    """
    if isinstance(record, list):
        return [(item, {}) for item in record]
    if not isinstance(record, dict):
        return [(record, {})]
    key = next((k for k in ITEM_LIST_KEYS if isinstance(record.get(k), list) and "content" not in record), None)
    if key is None:
        return [(record, {})]
    context = {k: v for k, v in record.items() if k != key}
    listed = record[key]
    texts = [item for item in listed if isinstance(item, str)]
    items: list[Any] = [item for item in listed if not isinstance(item, str)]
    return [(item, context) for item in items + markdown_items(texts)]


def reasoningbank_item(item: Any, context: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """An importable item (for :func:`mtlgit.intake.fields_from_mapping`) and the fields mtlgit assigns that it keeps.

    An item of an mtlgit export (it has ``format``) keeps its id, dates, status and supersession. Any other
    item is a ReasoningBank one: its task id goes to ``source.task``, its task text to ``source.query``, its
    outcome to ``outcome``, and every other field to ``source.extra``, which a later export gives back.
    """
    if not isinstance(item, dict):
        return item, {}
    from mtlgit.intake import ASSIGNED

    if "format" in item and not context and item.get("status", "active") in STATUSES:
        kept = {k: v for k, v in item.items() if k not in EXPORT_ONLY and k not in ASSIGNED}
        return kept, {k: item[k] for k in ASSIGNED if item.get(k) is not None}
    rest = {**context, **item}
    found = rest.get("provenance")
    provenance: dict[str, Any] = found if isinstance(found, dict) else {}
    out: dict[str, Any] = {
        k: rest.pop(k) for k in ("title", "description", "content", "goal", "domains", "tags") if k in item
    }
    source = dict(rest.pop("source")) if isinstance(rest.get("source"), dict) else {}

    # The item's own field wins over its record's: an item may name the task it was extracted from.
    def first(keys: tuple[str, ...], test: Any) -> str | None:
        return next((k for scope in (item, context) for k in keys if k in scope and test(scope[k])), None)

    task_key = first(TASK_ID_KEYS, lambda v: v not in (None, ""))
    if "task" not in source:
        task = rest.pop(task_key) if task_key else provenance.get("task_id")
        if task not in (None, ""):
            source["task"] = str(task)
    query_key = first(QUERY_KEYS, lambda v: isinstance(v, str) and v.strip())
    if query_key and "query" not in source:
        source["query"] = rest.pop(query_key)
    outcome_key = first(OUTCOME_KEYS, outcome_of)
    if rest.get("outcome") in OUTCOMES:
        out["outcome"] = rest.pop("outcome")
    elif outcome_key:
        out["outcome"] = outcome_of(rest.pop(outcome_key))
    elif outcome_of(provenance.get("success")):
        out["outcome"] = outcome_of(provenance["success"])
    if rest:
        source["extra"] = rest
    if source:
        out["source"] = source
    return out, {}


def from_jsonl(path: Path, root: Path) -> Iterator[Candidate]:
    """ReasoningBank-style records: one JSON value per line (see :func:`record_items`); a ``.json`` file may
    also hold one JSON document, a list of records or an object with them under ``memories``."""
    text = path.read_text(encoding="utf-8")
    rel = _rel(path, root)
    whole = _whole_document(text) if path.name.lower().endswith(".json") else None
    if whole is not None:
        records = whole.get("memories", [whole]) if isinstance(whole, dict) else whole
        # A record of one document has no line of its own: a secret in it is reported by the memory's
        # validation, so that one record's secret does not skip the whole file.
        for number, record in enumerate(records if isinstance(records, list) else [records], 1):
            yield from _record_candidates(record, f"{rel}#{number}", None, (0, 0))
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        source = f"{rel}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Candidate(source, skip=f"not JSON ({exc.msg})")
            continue
        except RecursionError:
            yield Candidate(source, skip="not importable: JSON nested too deeply; a memory record is a flat object")
            continue
        yield from _record_candidates(data, source, path, (number, number))


def _whole_document(text: str) -> Any:
    """The JSON document a ``.json`` file holds, or None when it is JSON Lines (or not JSON)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _record_candidates(record: Any, source: str, path: Path | None, lines: tuple[int, int]) -> Iterator[Candidate]:
    from mtlgit.intake import fields_from_mapping

    for item, context in record_items(record):
        importable, assigned = reasoningbank_item(item, context)
        fields, problems = fields_from_mapping(importable)
        if problems:
            yield Candidate(source, skip="; ".join(problems))
        else:
            yield Candidate(source, fields, file=path, lines=lines, assigned=assigned)


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
    # Ids of the pool (its retired and superseded memories too) and of this import: an id is never reused.
    ids = {m.id: m.path for m in pool.select(statuses=(), indexed=False)}
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
        memory_id = candidate.assigned.get("id")
        if memory_id is not None:
            taken = ids.get(str(memory_id))
            if taken:
                report.skipped.append((candidate.source, f"id {memory_id} is already in the pool ({taken})"))
                continue
            ids[str(memory_id)] = f"imported from {candidate.source}"
        # A retired or superseded memory of an export is often a near-duplicate of its successor; recall skips
        # it, so it is restored as it was.
        restored = candidate.assigned.get("status", "active") != "active"
        result = add_one(
            pool, fields, force=force or restored, checker=checker, dry_run=dry_run, assigned=candidate.assigned or None
        )
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
