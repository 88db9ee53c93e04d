"""Importing guidance written for other tools: ReasoningBank-style JSONL, Cursor rules, CLAUDE.md / AGENTS.md.

Every candidate goes through the same checks as ``mtlgit add`` (validation, secrets, near-duplicates) and is
either imported or skipped with its reason; the source files are only read.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mtlgit import frontmatter
from mtlgit.abstraction import specificity
from mtlgit.errors import MtlgitError
from mtlgit.intake import ASSIGNED, _Checker, add_one, fields_from_mapping
from mtlgit.memory import SENTENCE_END_RE
from mtlgit.rules import OUTCOMES, STATUSES
from mtlgit.secrets import ALLOW, find_secrets
from mtlgit.store import Pool

RULE_SUFFIXES = ("-cursorrules-prompt-file", "-cursorrules-prompt", "-cursor-rules", "-cursorrules")
AGENT_FILES = ("claude.md", "agents.md", "gemini.md", "copilot-instructions.md")
MAX_SOURCE_BYTES = 1024 * 1024
# Globs name the files a rule is for; their extensions name its languages (kept as domains).
GLOB_LANGUAGES = {
    "py": "python",
    "pyi": "python",
    "ipynb": "python",
    "js": "javascript",
    "jsx": "javascript",
    "mjs": "javascript",
    "cjs": "javascript",
    "ts": "typescript",
    "tsx": "typescript",
    "go": "go",
    "rs": "rust",
    "java": "java",
    "kt": "kotlin",
    "kts": "kotlin",
    "rb": "ruby",
    "php": "php",
    "cs": "csharp",
    "swift": "swift",
    "dart": "dart",
    "scala": "scala",
    "c": "c",
    "h": "c",
    "cpp": "cpp",
    "cc": "cpp",
    "hpp": "cpp",
    "sh": "shell",
    "bash": "shell",
    "sql": "sql",
    "vue": "vue",
    "svelte": "svelte",
    "html": "html",
    "css": "css",
    "scss": "css",
    "yml": "yaml",
    "yaml": "yaml",
    "tf": "terraform",
    "md": "markdown",
    "mdx": "markdown",
    "sol": "solidity",
    "ex": "elixir",
    "exs": "elixir",
    "lua": "lua",
    "r": "r",
    "jl": "julia",
}
# The size lint accepts for an insight (mtlgit.memory: at most 5 sentences and 1200 characters); a guide's
# section is cut to it at a sentence.
INSIGHT_SENTENCES = 5
INSIGHT_CHARS = 1200


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
    """A Cursor rule as memories: a short rule is one memory; a long guide (two or more sections with text) is
    an overview (its title, introduction and the names of its sections) and one insight per section, cut to the
    size of an insight. Code examples stay in the guide: an insight states the lesson, not one program.

    The rule's scope is kept: its name and the languages its ``globs`` name are domains, the globs themselves
    go to ``source.extra.globs``.
    """
    text = path.read_text(encoding="utf-8")
    meta, body = _loose_front_matter(text)
    offset = text.count("\n") - body.count("\n")
    rel = _rel(path, root)
    guide = _Guide(path, meta, body)
    sections = [s for s in _guide_sections(body) if s.prose]
    when = guide.when()
    if len(sections) < 2:
        # A rule of one part: kept as written when it is insight-sized, else its lesson-sized beginning.
        whole = body.strip()
        content = (
            whole
            if _insight_fit(guide.title, when, whole) == whole
            else _insight_fit(guide.title, when, _prose(whole.split("\n")))
        )
        yield _fitted(rel, guide, guide.title, when, content, (1, text.count("\n") + 1))
        return
    contents = "; ".join(s.heading for s in sections)
    overview = _insight_fit(guide.title, when, f"{guide.intro or guide.description}\n\nSections: {contents}.")
    yield _fitted(rel, guide, guide.title, when, overview, (1, offset + sections[0].first - 1))
    for number, section in enumerate(sections, 1):
        title = f"{guide.name}: {section.heading}"
        when = guide.when(section.parent)
        content = _insight_fit(title, when, section.prose)
        yield _fitted(f"{rel}#{number}", guide, title, when, content, (offset + section.first, offset + section.last))


def _fitted(source: str, guide: _Guide, title: str, when: str, content: str, lines: tuple[int, int]) -> Candidate:
    if not content:
        return Candidate(
            source,
            skip=f"no sentence of '{title}' makes an insight (each names code, files or identifiers): it stays in "
            "the guide",
        )
    return Candidate(source, guide.fields(title, when, content, source), file=guide.path, lines=lines)


@dataclass
class _Section:
    heading: str
    parent: str
    prose: str
    first: int
    last: int


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(line index, level, text) of each Markdown heading outside fenced code."""
    found: list[tuple[int, int, str]] = []
    fence = False
    for number, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)", line) if not fence else None
        if heading:
            found.append((number, len(heading.group(1)), _clean_heading(heading.group(2))))
    return found


def _guide_sections(body: str) -> list[_Section]:
    """Every heading of a guide but its title (a sole level-1 heading that comes first), with the prose under it
    up to the next heading: code blocks and the lines that introduce them (``✅ GOOD:``) are left out."""
    lines = body.split("\n")
    headings = _headings(lines)
    if headings and headings[0][1] == 1 and not any(level == 1 for _n, level, _h in headings[1:]):
        headings = headings[1:]
    out: list[_Section] = []
    parents: dict[int, str] = {}
    for index, (number, level, heading) in enumerate(headings):
        end = headings[index + 1][0] if index + 1 < len(headings) else len(lines)
        parents = {lv: h for lv, h in parents.items() if lv < level}
        parent = parents[max(parents)] if parents else ""
        parents[level] = heading
        out.append(_Section(heading, parent, _prose(lines[number + 1 : end]), number + 1, end))
    return out


def _clean_heading(text: str) -> str:
    """A heading without its Markdown, its numbering (``1.2``, ``Step 3:``) and emphasis."""
    text = text.strip().strip("#").strip()
    text = re.sub(r"^[^\w`'\"(\[]+", "", text)  # a leading ✅ or ❌
    text = re.sub(r"^(?:\d+(?:\.\d+)*\.?|[A-Z]\.|Step \d+:)\s+", "", text)
    return text.replace("**", "").replace("__", "").strip() or "Section"


def _prose(lines: list[str]) -> str:
    """The text of ``lines`` outside fenced code, without the lines that only introduce a code block."""
    kept: list[str] = []
    fence = False
    for line in lines:
        if line.lstrip().startswith(("```", "~~~")):
            if not fence:
                while kept and not kept[-1].strip():
                    kept.pop()
                if kept and _LABEL_RE.match(kept[-1]) and len(kept[-1]) < 100:
                    kept.pop()
            fence = not fence
            continue
        if not fence:
            kept.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


# The line that introduces a code example: "✅ GOOD: multi-stage build", "**Bad:**", "Example:".
_LABEL_RE = re.compile(
    r"^[^\w\s`]|^\W*(?:bad|good|avoid|prefer|do|don't|example|incorrect|correct|wrong|right|before|after)\b"
    r"|^\W*(?:\S+\s+){0,2}\S+:\W*$",
    re.IGNORECASE,
)


def _insight_fit(title: str, when: str, text: str) -> str:
    """The sentences (or lines) of ``text``, in order, that make an insight lint accepts with this title and
    description: at most 5 sentences and 1200 characters, and not reading as task-specific. A sentence that
    would break one of these is left out (the guide keeps it); a later, more general one may still fit."""
    ends = {m.end() for m in SENTENCE_END_RE.finditer(text)} | {m.end() for m in re.finditer(r"\n", text)}
    bounds = [0, *sorted(e for e in ends if 0 < e < len(text)), len(text)]
    kept = ""
    for start, end in itertools.pairwise(bounds):
        unit = text[start:end]
        if not unit.strip():
            kept += unit
            continue
        trial = kept + unit
        if len(trial.strip()) > INSIGHT_CHARS or len(SENTENCE_END_RE.findall(trial.strip())) > INSIGHT_SENTENCES:
            continue
        if specificity(f"{title}\n{trial.strip()}", when=when).too_specific:
            continue
        kept = trial
    return re.sub(r"\n{3,}", "\n\n", kept).strip()


class _Guide:
    """What every memory of one Cursor rule shares: its name, scope and description."""

    def __init__(self, path: Path, meta: dict[str, Any], body: str) -> None:
        self.path = path
        self.description = " ".join(str(meta.get("description") or "").split())
        raw = meta.get("globs") or ""
        # Commas separate globs, except inside braces: "**/Dockerfile,**/docker-compose*.{yml,yaml}".
        listed = raw if isinstance(raw, list) else re.findall(r"(?:[^,{]|\{[^}]*\})+", str(raw))
        self.globs = [str(g).strip() for g in listed if str(g).strip()]
        folder = path.parent.name.lower()
        self.name = _domain_of(path.parent) if folder.endswith(RULE_SUFFIXES) else path.stem.lower()[:40]
        self.languages = _unique(
            GLOB_LANGUAGES[ext]
            for glob in self.globs
            for ext in re.findall(r"\.\{?([\w,]+)\}?$", glob)[:1]
            for ext in ext.lower().split(",")
            if ext in GLOB_LANGUAGES
        )
        lines = body.split("\n")
        headings = _headings(lines)
        titled = bool(headings) and headings[0][1] == 1 and not any(level == 1 for _n, level, _h in headings[1:])
        whole = re.split(r"(?<=[.!?])\s", self.description, maxsplit=1)[0] if self.description else ""
        title = headings[0][2] if titled else whole if whole and len(whole) <= 100 else _humanise(path.stem)
        self.title = title[:1].upper() + title[1:]
        start = headings[0][0] + 1 if titled else 0
        end = next((number for number, _level, _h in headings if number >= start), len(lines))
        self.intro = _prose(lines[start:end])

    def when(self, part: str = "") -> str:
        """The description of a memory of this rule: when it applies, then what the rule says it is for."""
        files = [g.rsplit("/", 1)[-1] for g in self.globs if "." not in g.rsplit("/", 1)[-1].strip("*")]
        names = _unique([*(f for f in files if f.strip("*")), *(_language_name(x) for x in self.languages)])
        scope = f" ({', '.join(names)})" if names else ""
        head = f"When working with {self.name}{scope}" + (f", on {part}" if part else "")
        said = self.description
        if len(head) + len(said) + 2 > 400 or len(re.findall(r"[.!?](?:\s|$)", said)) > 1:
            said = re.split(r"(?<=[.!?])\s", said, maxsplit=1)[0]
        return f"{head}: {said}" if said and len(head) + len(said) + 2 <= 400 else f"{head}."

    def fields(self, title: str, when: str, content: str, source: str) -> dict[str, Any]:
        extra: dict[str, Any] = {"globs": self.globs} if self.globs else {}
        return {
            "title": title,
            "description": when,
            "content": content,
            "domains": _unique([self.name, *self.languages]),
            "tags": ["cursor-rule"],
            "source": {"agent": "cursor", "task": source, **({"extra": extra} if extra else {})},
        }


def _language_name(language: str) -> str:
    names = {"javascript": "JavaScript", "typescript": "TypeScript", "csharp": "C#", "cpp": "C++"}
    if language in ("yaml", "sql", "html", "css", "php"):
        return language.upper()
    return names.get(language, language[:1].upper() + language[1:])


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


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
    if "format" in item and not context and item.get("status", "active") in STATUSES:
        kept = {k: v for k, v in item.items() if k not in EXPORT_ONLY and k not in ASSIGNED}
        assigned = {k: item[k] for k in ASSIGNED if item.get(k) is not None}
        # JSON holds the date as text; as a date it is written back unquoted, as the exported file had it.
        if isinstance(assigned.get("created"), str):
            try:
                assigned["created"] = datetime.fromisoformat(assigned["created"].replace("Z", "+00:00"))
            except ValueError:
                pass
        return kept, assigned
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
    if not path.exists():
        raise MtlgitError(f"{path} does not exist")
    report = ImportReport()
    checker = _GuideChecker(pool)
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
        checker.guide = _guide_of(candidate.source) if _guide_of(candidate.source).endswith(".mdc") else ""
        result = add_one(
            pool, fields, force=force or restored, checker=checker, dry_run=dry_run, assigned=candidate.assigned or None
        )
        if result.added:
            report.imported.append((candidate.source, result.memory))
        else:
            report.skipped.append((candidate.source, "; ".join(result.reasons)))
    return report


def _guide_of(source: str) -> str:
    return source.split("#", 1)[0]


class _GuideChecker(_Checker):
    """The near-duplicate checks of an import, where the sections of one guide are never duplicates of each
    other: they share the guide's description and scope, and their author wrote them as different sections. A
    section is still checked against the rest of the pool and of the import (a guide imported twice is)."""

    guide = ""

    def duplicates(self, text: str) -> list[Any]:
        found = super().duplicates(text)
        if not self.guide:
            return found
        batch = {path for _v, _t, _r, path in self.added}
        return [s for s in found if s.path not in batch or _guide_of(_task(s.memory)) != self.guide]


def _task(record: dict[str, Any]) -> str:
    source = record.get("source")
    return str(source.get("task", "")) if isinstance(source, dict) else ""


class _SourceSecrets:
    """Secrets found in each source file, scanned once, so that a skip names the line of the source file (where
    ``pragma: allowlist secret`` goes), not of the memory file it would have become."""

    def __init__(self) -> None:
        self.found: dict[Path, list[Any]] = {}

    def between(self, candidate: Candidate) -> str:
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
