"""The memory file, format v1: reading one file into a :class:`Memory`, validating it, writing a new one.

The format is specified in docs/format.md; this module is its executable form. Reading never raises for a
bad file: it returns the problems found, each naming the file, the line and the fix.
"""

from __future__ import annotations

import difflib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mtlgit import frontmatter
from mtlgit.abstraction import specificity
from mtlgit.applicability import CODE as WHEN_CODE
from mtlgit.applicability import when_problems
from mtlgit.errors import Problem
from mtlgit.ids import blob_id
from mtlgit.rules import (
    DEFAULT_SCOPE,
    FORMATS,
    KNOWN_KEYS,
    OUTCOMES,
    SCOPES,
    SOURCE_TEXT_KEYS,
    STATUSES,
    is_ulid,
    is_valid_id,
    read_regular,
)
from mtlgit.secrets import ALLOW, find_secrets

MAX_FILE_BYTES = 1024 * 1024
CONFLICT_RE = re.compile(r"^(?:<{7}|>{7})(?: |\r?$)|^={7}\r?$|^\|{7}(?: |\r?$)", re.MULTILINE)
_CONFLICT_RUNS = ("<" * 7, ">" * 7, "=" * 7, "|" * 7)
# A sentence ends at . ! or ? before a capital letter or the end: "e.g. a", "vs. b" and "3.5" do not count.
SENTENCE_END_RE = re.compile(r"[.!?](?:\s+(?=[A-Z\"'`(\[])|\s*$)")


@dataclass
class Memory:
    """One memory: its front-matter fields, its content, and where it came from."""

    id: str
    title: str
    format: str
    content: str
    description: str = ""
    goal: str = ""
    scope: str = "task-agnostic"
    domains: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    outcome: str = "unknown"
    status: str = "active"
    superseded_by: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    path: str = ""
    blob: str = ""
    pool: str = "local"
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def search_text(self) -> str:
        """The text the index sees: title, description/goal, content, tags, domains and the source task text."""
        return search_text(self.to_json())

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "format": self.format,
            "scope": self.scope,
            "domains": list(self.domains),
            "tags": list(self.tags),
            "outcome": self.outcome,
            "status": self.status,
            "superseded_by": self.superseded_by,
            "source": _jsonable(self.source),
            "created": self.created,
            "content": self.content,
            "path": self.path,
            "pool": self.pool,
        }
        if self.goal:
            data["goal"] = self.goal
        return data


def memory_from_record(record: dict[str, Any], path: str, blob: str = "", pool: str = "local") -> Memory:
    """A memory from its JSON record (:meth:`Memory.to_json`, as the index keeps it), without ``meta``."""
    return Memory(
        id=record["id"],
        title=record["title"],
        format=record["format"],
        content=record.get("content", ""),
        description=record.get("description", ""),
        goal=record.get("goal", ""),
        scope=record.get("scope", "task-agnostic"),
        domains=tuple(record.get("domains") or ()),
        tags=tuple(record.get("tags") or ()),
        outcome=record.get("outcome", "unknown"),
        status=record.get("status", "active"),
        superseded_by=record.get("superseded_by"),
        source=dict(record.get("source") or {}),
        created=record.get("created"),
        path=path,
        blob=blob,
        pool=pool,
    )


def search_text(record: dict[str, Any]) -> str:
    """The text both halves of the index see, from a memory's JSON record: its own text, then the text of the
    task it was learned from (``source.query``), as ReasoningBank recalls by the similarity of past tasks.

    The task text is cut to the length of the memory's own text, so that it never outweighs the lesson: the
    items learned from one long task (an issue with a traceback) stay apart, not near-duplicates.
    """
    parts = [
        record.get("title", ""),
        record.get("description", ""),
        record.get("goal", ""),
        record.get("content", ""),
        " ".join(record.get("tags", ())),
        " ".join(record.get("domains", ())),
    ]
    own = "\n".join(part for part in parts if part)
    query = " ".join(str((record.get("source") or {}).get("query") or "").split())
    if len(query) > len(own):
        query = query[: len(own) + 1].rsplit(" ", 1)[0]
    return f"{own}\n{query}" if query else own


def lexical_text(record: dict[str, Any]) -> str:
    """The text the BM25 half indexes: :func:`search_text` with the description counted twice, since it says
    when the memory applies in the words tasks use (docs/format.md)."""
    return search_text(record) + "\n" + str(record.get("description") or "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return frontmatter._normalise(value)
    return value


# --- reading -------------------------------------------------------------------------------------------


def symlink_problem(path: Path, rel: str, root: Path | None) -> Problem | None:
    """What is wrong with the symlink ``path``, if anything: it points outside ``root`` or nowhere."""
    target = path.resolve()
    if root is not None and not target.is_relative_to(root.resolve()):
        return _error(
            rel,
            0,
            "symlink",
            f"symlink points outside the repository (to {target}): copy the file into the memories folder instead",
        )
    if not target.exists():
        return _error(rel, 0, "symlink", "broken symlink: remove it or point it at a memory file")
    return None


def read_file(path: Path, rel: str, root: Path | None = None) -> tuple[Memory | None, list[Problem]]:
    """Read and validate one memory file.

    :param path: the file on disk.
    :param rel: the path to show in messages (repository-relative, with forward slashes).
    :param root: when given, a symlink must resolve inside it.
    :return: the memory (None when the file has errors) and every problem found.
    """
    try:
        if path.is_symlink():
            problem = symlink_problem(path, rel, root)
            if problem is not None:
                return None, [problem]
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, [too_large(rel, size)]
        data = read_regular(path)
    except OSError as exc:
        return None, [_error(rel, 0, "unreadable", f"cannot read the file: {exc.strerror or exc}")]
    return parse_bytes(data, rel)


def parse_bytes(
    data: bytes, rel: str, pool: str = "local", abstraction: bool = True
) -> tuple[Memory | None, list[Problem]]:
    """Validate the bytes of one memory file (from disk or from a git object).

    :param abstraction: also score how task-specific an insight is (a warning only; the index skips it).
    """
    if len(data) > MAX_FILE_BYTES:
        return None, [too_large(rel, len(data))]
    if b"\0" in data:
        return None, [_error(rel, 0, "binary", "binary file, not Markdown: move it out of the memories folder")]
    if not data.strip():
        return None, [_error(rel, 0, "empty", "empty file: write a memory (see `mtlgit add --help`) or delete it")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [
            _error(rel, line, "encoding", f"not UTF-8 (byte 0x{data[exc.start]:02x}): re-save the file as UTF-8")
        ]
    # Every marker holds one of these runs: a substring test is ~10x cheaper than the expression's pass.
    conflict = CONFLICT_RE.search(text) if any(run in text for run in _CONFLICT_RUNS) else None
    if conflict:
        line = text.count("\n", 0, conflict.start()) + 1
        return None, [
            _error(
                rel,
                line,
                "conflict",
                "unresolved merge conflict marker: keep one version of the memory and delete the marker lines",
            )
        ]
    try:
        doc = frontmatter.parse(text)
    except frontmatter.FrontMatterError as exc:
        secrets = find_secrets(text)
        if not secrets:
            return None, [_error(rel, exc.line, "front-matter", exc.message)]
        # The parser's message may quote the secret (a YAML tag or anchor name): say only where.
        return None, [
            _error(rel, exc.line, "front-matter", "front matter cannot be read: fix this line (values not shown)"),
            *_secret_errors(rel, secrets),
        ]
    if doc.kind == "none":
        return None, [
            _error(
                rel,
                1,
                "front-matter",
                "no front matter: a memory starts with a '---' line, "
                "then 'key: value' lines (id, title, format...), then '---'",
            )
        ]
    # Every line is scanned, the id too (only a well-formed ULID is exempt: find_secrets blanks those), and a
    # file with a secret gets messages that quote none of its values.
    secrets = find_secrets(text)
    memory, problems = validate(doc, rel, abstraction, hide_values=bool(secrets))
    if secrets:
        return None, problems + _secret_errors(rel, secrets)
    if memory is not None:
        memory.blob = blob_id(data)
        memory.pool = pool
    return memory, problems


def _secret_errors(rel: str, secrets: list[Any]) -> list[Problem]:
    return [
        _error(
            rel,
            f.line,
            "secret",
            f"contains {f.describe()}: remove it (or, for a false positive, put '{ALLOW}' on that line)",
        )
        for f in secrets
    ]


def too_large(rel: str, size: int) -> Problem:
    return _error(
        rel,
        0,
        "too-large",
        f"file is {size / 1048576:.1f} MiB; a memory may be at most {MAX_FILE_BYTES // 1048576} MiB: "
        "keep the lesson, cut the trace",
    )


def duplicate_problem(path: str, memory_id: str, first_path: str) -> Problem:
    return Problem(
        path,
        1,
        "error",
        "duplicate-id",
        f"id {memory_id} is also the id of {first_path}: a copied file keeps its id; "
        "give this one a new id (`mtlgit lint --fix-ids` does it)",
    )


def _error(path: str, line: int, code: str, message: str) -> Problem:
    return Problem(path, line, "error", code, message)


def _warning(path: str, line: int, code: str, message: str) -> Problem:
    return Problem(path, line, "warning", code, message)


def key_line(doc: frontmatter.Document, key: str, sub_key: str | None = None) -> int:
    """The 1-based line of a top-level front-matter key, or of ``sub_key`` below it (1 when not found)."""
    pattern = re.compile(rf"^[\"']?{re.escape(key)}[\"']?[ \t]*:")
    lines = doc.text.split("\n")
    for index in range(doc.fm_start, doc.fm_end):
        if pattern.match(lines[index]):
            if sub_key is None:
                return index + 1
            sub = re.compile(rf"^[ \t]+[\"']?{re.escape(sub_key)}[\"']?[ \t]*:")
            for inner in range(index + 1, doc.fm_end):
                if sub.match(lines[inner]):
                    return inner + 1
            return index + 1
    return 1


class _Checker:
    """Collects problems while reading typed fields out of a front-matter mapping."""

    def __init__(self, doc: frontmatter.Document, rel: str, hide_values: bool = False) -> None:
        self.doc = doc
        self.meta = doc.meta
        self.rel = rel
        self.hide_values = hide_values
        self.problems: list[Problem] = []

    def show(self, value: Any) -> str:
        """``value`` quoted for a message, unless the file holds a secret: then no value of it is shown."""
        return "a value not shown here (the file holds a secret)" if self.hide_values else repr(value)

    def error(self, key: str, code: str, message: str, sub_key: str | None = None) -> None:
        self.problems.append(_error(self.rel, key_line(self.doc, key, sub_key), code, message))

    def warn(self, key: str, code: str, message: str) -> None:
        self.problems.append(_warning(self.rel, key_line(self.doc, key), code, message))

    def text(self, key: str, required: bool = False, why: str = "") -> str:
        value = self.meta.get(key)
        if value is None:
            if required:
                self.error(key, "missing", f"missing required field '{key}'{why}")
            return ""
        if isinstance(value, str):
            if required and not value.strip():
                self.error(key, "missing", f"'{key}' is empty{why}")
            return value.strip()
        if isinstance(value, (bool, int, float, datetime, date)):
            self.error(key, "type", f"'{key}' must be text, but YAML read {self.show(value)}: put the value in quotes")
        else:
            self.error(key, "type", f"'{key}' must be text, not a {frontmatter._type_name(value)}")
        return ""

    def choice(self, key: str, allowed: tuple[str, ...], default: str, required: bool = False) -> str:
        value = self.meta.get(key)
        if value is None:
            if required:
                self.error(key, "missing", f"missing required field '{key}': one of {', '.join(allowed)}")
            return default
        chosen = value.strip().lower() if isinstance(value, str) else None
        if chosen not in allowed:
            hint = difflib.get_close_matches(str(value).lower(), allowed, n=1)
            did = f" (did you mean '{hint[0]}'?)" if hint else ""
            self.error(key, "value", f"'{key}' is {self.show(value)}; it must be one of {', '.join(allowed)}{did}")
            return default
        return chosen

    def words(self, key: str, meta: dict[str, Any] | None = None) -> tuple[str, ...]:
        value = (self.meta if meta is None else meta).get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.error(key, "type", f"'{key}' must be a list of text, e.g. {key}: [python, testing]")
            return ()
        return tuple(item.strip() for item in value if item.strip())


def validate(
    doc: frontmatter.Document, rel: str, abstraction: bool = True, hide_values: bool = False
) -> tuple[Memory | None, list[Problem]]:
    """Check a parsed document against format v1 and build the memory when it has no errors.

    :param hide_values: quote no value in messages (the file holds a secret).
    """
    check = _Checker(doc, rel, hide_values)
    meta = doc.meta
    memory_id = check.text("id", required=True, why=": every memory needs a unique id (mtlgit add writes a ULID)")
    if memory_id and not is_valid_id(memory_id):
        check.error(
            "id", "id", f"id {check.show(memory_id)} may hold only letters, digits, '.', '_' and '-' (64 at most)"
        )
    elif memory_id and not is_ulid(memory_id):
        check.warn("id", "id", f"id {check.show(memory_id)} is not a ULID; ids written by `mtlgit add` are")
    title = check.text("title", required=True, why=": a short statement of the lesson")
    if "\n" in title:
        check.warn("title", "title", "the title spans several lines; keep it to one")
    fmt = check.choice("format", FORMATS, "insight", required=True)
    description = check.text("description", required=fmt == "insight", why=": one sentence saying when it applies")
    if _sentences_over(description, 2) or len(description) > 400:
        check.warn(
            "description",
            "long-description",
            "the description is one sentence saying when the memory applies; put the rest in the content",
        )
    goal = check.text("goal", required=fmt == "workflow", why=": what the workflow achieves")
    scope = check.choice("scope", SCOPES, DEFAULT_SCOPE[fmt])
    domains = check.words("domains")
    tags = check.words("tags")
    outcome = check.choice("outcome", OUTCOMES, "unknown")
    status = check.choice("status", STATUSES, "active")
    superseded_by = check.text("superseded_by") or None
    if status == "superseded" and not superseded_by:
        check.warn("status", "superseded", "status is 'superseded' but 'superseded_by' names no memory")
    source = _check_source(check, meta.get("source"))
    created = _check_created(check, meta.get("created"))
    content = doc.content
    if not content:
        check.problems.append(
            _error(rel, doc.body_line, "content", "the memory has no content: write it below the closing '---'")
        )
    _check_body(check, fmt, content, doc.body_line, abstraction)
    for key, message in when_problems(fmt, title, description) if abstraction else ():
        check.warn(key, WHEN_CODE, message)
    for key in meta:
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.75)
            if close:
                check.warn(key, "unknown-key", f"unknown key '{key}' (did you mean '{close[0]}'?)")
    if any(p.is_error for p in check.problems):
        return None, check.problems
    memory = Memory(
        id=memory_id,
        title=title,
        format=fmt,
        content=content,
        description=description,
        goal=goal,
        scope=scope,
        domains=domains,
        tags=tags,
        outcome=outcome,
        status=status,
        superseded_by=superseded_by,
        source=source,
        created=created,
        path=rel,
        meta=meta,
    )
    return memory, check.problems


def _check_source(check: _Checker, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        check.error("source", "type", "'source' must be a mapping (task, agent, model, commit, paths)")
        return {}
    source: dict[str, Any] = dict(value)
    for key in SOURCE_TEXT_KEYS:
        item = value.get(key)
        if item is not None and not isinstance(item, str):
            check.error(
                "source",
                "type",
                f"'source.{key}' must be text, but YAML read {check.show(item)}: put it in quotes",
                sub_key=key,
            )
    if "paths" in value:
        source["paths"] = list(check.words("paths", value))
    if "cites" in value:
        source["cites"] = _check_cites(check, value["cites"], value.get("commit"))
    return source


def _check_cites(check: _Checker, value: Any, commit: Any) -> list[dict[str, Any]]:
    """``source.cites`` as mappings (see docs/citations.md); each bad citation is an error naming the fix."""
    from mtlgit.citations import check_cite

    if not isinstance(value, list):
        value = [value]
    cites = []
    for item in value:
        try:
            cites.append(check_cite(item).to_json())
        except ValueError as exc:
            check.error("source", "cites", f"source.cites: {exc}", sub_key="cites")
    if cites and not (isinstance(commit, str) and commit.strip()):
        check.warn("source", "cites", "source.cites without source.commit cannot be checked: add the commit")
    return cites


def _check_created(check: _Checker, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        return str(frontmatter._normalise(value))
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            check.error(
                "created", "type", f"'created' is {check.show(value)}, not a date: write e.g. 2026-11-25T14:03:11Z"
            )
            return None
        return value
    check.error("created", "type", "'created' must be a date and time, e.g. 2026-11-25T14:03:11Z")
    return None


def _sentences_over(text: str, most: int) -> bool:
    """Whether ``text`` has more than ``most`` sentences. Each ends at a mark of its own: text with no more marks
    than that (most descriptions and insights) needs no expression."""
    if text.count(".") + text.count("!") + text.count("?") <= most:
        return False
    return len(SENTENCE_END_RE.findall(text)) > most


def _check_body(check: _Checker, fmt: str, content: str, line: int, abstraction: bool = True) -> None:
    if not content:
        return
    if fmt == "insight":
        if len(content) > 1200 or _sentences_over(content, 5):
            check.problems.append(
                _warning(
                    check.rel,
                    line,
                    "long-insight",
                    "an insight is 1-3 sentences; this one is longer: keep the transferable lesson, drop the story",
                )
            )
        if abstraction:
            title = str(check.meta.get("title") or "")
            description = str(check.meta.get("description") or "")
            found = specificity(f"{title}\n{content}", when=description)
            if found.too_specific:
                check.problems.append(
                    _warning(check.rel, line, "too-specific", f"this insight {found.hint(not check.hide_values)}")
                )
    elif fmt == "workflow":
        if not re.search(r"^\s*\d+[.)]\s", content, re.MULTILINE):
            check.problems.append(
                _warning(check.rel, line, "workflow-steps", "a workflow lists numbered steps ('1. ...'); none found")
            )
    elif fmt == "summary":
        missing = [h for h in ("## Task", "## Experience") if not re.search(rf"^{h}\b", content, re.MULTILINE)]
        if missing:
            check.problems.append(
                _warning(
                    check.rel,
                    line,
                    "summary-sections",
                    f"a summary has '## Task' and '## Experience' sections; missing: {', '.join(missing)}",
                )
            )


# --- writing -------------------------------------------------------------------------------------------


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def new_meta(
    memory_id: str,
    title: str,
    format: str,
    description: str = "",
    goal: str = "",
    scope: str | None = None,
    domains: tuple[str, ...] | list[str] = (),
    tags: tuple[str, ...] | list[str] = (),
    outcome: str = "unknown",
    source: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The front matter of a new memory, keys in the canonical order."""
    meta: dict[str, Any] = {"id": memory_id, "title": title.strip()}
    if description:
        meta["description"] = description.strip()
    if goal:
        meta["goal"] = goal.strip()
    meta["format"] = format
    meta["scope"] = scope or DEFAULT_SCOPE.get(format, "task-agnostic")
    meta["domains"] = list(domains)
    meta["tags"] = list(tags)
    meta["outcome"] = outcome
    kept_source = {k: v for k, v in (source or {}).items() if v not in (None, "", [], ())}
    if kept_source:
        meta["source"] = kept_source
    meta["created"] = now_utc()
    meta["status"] = "active"
    meta["superseded_by"] = None
    for key, value in (extra or {}).items():
        meta.setdefault(key, value)
    return meta


def slugify(title: str, limit: int = 60) -> str:
    """A file-name-safe slug: lower-case ASCII letters, digits and single dashes; never empty, never a path.

    Accented letters lose their accents ("Ünïcode" -> "unicode"); a long title is cut at a word boundary.
    """
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > limit:
        cut = slug[: limit + 1].rsplit("-", 1)[0] if "-" in slug[: limit + 1] else slug[:limit]
        slug = cut.rstrip("-")
    return slug or "memory"


def relpath(path: Path, root: Path) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")
