"""Adding memories the way agents do: several items at once, each checked on its own.

Every item is validated exactly like a file on disk, checked against the pool for near-duplicates (refused
unless forced), and written; a bad item is rejected with its reasons and the good ones are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mtlgit import frontmatter
from mtlgit.analysis import analyze
from mtlgit.citations import prepare_items, verify
from mtlgit.errors import InvalidMemoryError, MtlgitError
from mtlgit.ids import new_ulid
from mtlgit.memory import Memory, new_meta, parse_bytes, read_file, search_text, slugify
from mtlgit.rules import FORMATS, KNOWN_KEYS
from mtlgit.store import Pool, write_new_file

# Keys an item may not set: mtlgit assigns them.
ASSIGNED = ("id", "created", "status", "superseded_by")
TEXT_KEYS = ("title", "description", "goal", "format", "scope", "outcome")


@dataclass
class Result:
    index: int
    title: str
    memory: Memory | None = None
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # A dry run validates the memory it would write: ``added`` says it passed; ``memory`` stays None.
    passed: bool = False

    @property
    def added(self) -> bool:
        return self.memory is not None or self.passed

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"item": self.index, "title": self.title, "added": self.memory is not None}
        if self.memory is not None:
            data.update(id=self.memory.id, path=self.memory.path)
        if self.reasons:
            data["reasons"] = self.reasons
        if self.warnings:
            data["warnings"] = self.warnings
        return data


def fields_from_mapping(
    item: Any, defaults: dict[str, Any] | None = None, where: Callable[[str], str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The keyword arguments of :meth:`Pool.add` for one mapping, and what is wrong with it.

    The mapping is an agent's JSON item (``add --items``, MCP's ``add_memories``, ``import``) or a file's front
    matter with its body as ``content`` (``add --file``, ``add --edit``); the same keys get the same checks and the
    same messages from all of them. A key that is absent, null or blank keeps its value in ``defaults`` (the
    command line's options). ``where(key)`` prefixes each message with where that key was written (a file's
    ``path:line: ``).
    """
    if not isinstance(item, dict):
        return {}, [f"an item must be a JSON object with title, description and content, not {type(item).__name__}"]
    place = where or (lambda _key: "")
    problems: list[str] = []
    fields: dict[str, Any] = dict(defaults or {})
    for key in TEXT_KEYS:
        value = item.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(f"{place(key)}'{key}' must be a string")
        elif value.strip():
            fields[key] = value.strip()
    content = item.get("content")
    if isinstance(content, list) and all(isinstance(step, str) for step in content):
        content = "\n".join(f"{n}. {step}" for n, step in enumerate(content, 1))
    if content is not None and not isinstance(content, str):
        problems.append(f"{place('content')}'content' must be a string (or a list of steps)")
    elif content and content.strip():
        fields["content"] = content
    fields.setdefault("content", "")
    for key in ("domains", "tags"):
        value = item.get(key)
        if value is None:
            fields.setdefault(key, [])
            continue
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{place(key)}'{key}' must be a list of strings")
            value = []
        fields[key] = [v.strip() for v in value if v.strip()]
    source = item.get("source")
    if isinstance(source, dict):
        fields["source"] = source
    elif source is not None:
        problems.append(f"{place('source')}'source' must be an object (task, agent, model, commit, paths)")
    ignored = [key for key in ASSIGNED if key in item]
    if ignored:
        problems.append(f"{place(ignored[0])}{', '.join(ignored)} cannot be set: mtlgit assigns them; remove them")
    extra = {k: v for k, v in item.items() if k not in KNOWN_KEYS and k != "content"}
    if extra:
        fields["extra"] = extra
    fields.setdefault("format", "insight")
    fields.setdefault("outcome", "unknown")
    if not str(fields.get("title") or "").strip():
        problems.append(f"{place('title')}'title' is missing")
    return fields, problems


class _Checker:
    """Near-duplicate checks against the pool as it was when the batch started plus what the batch added.

    The index is refreshed once per batch, not once per item: an import of a thousand rules stays fast.
    """

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.snapshot: Any = None
        self.model: Any = None
        self.added: list[tuple[Any, set[str], dict[str, Any], str]] = []
        self.last: tuple[Any, set[str]] = (None, set())

    def duplicates(self, text: str) -> list[Any]:
        import numpy as np

        from mtlgit.dedup import Similar, closest, near_duplicate
        from mtlgit.embed import load_model
        from mtlgit.index import WorktreeIndex

        if self.snapshot is None:
            self.snapshot = WorktreeIndex(self.pool.repo).fresh()
            self.model = load_model(str(self.snapshot.manifest["model"]), self.pool.root, self.pool.repo.state_dir)
        vector = self.model.encode([text])[0]
        terms = analyze(text)
        found = [s for s in closest(self.snapshot, vector, terms, 3) if s.duplicate]
        mine = set(terms)
        # One product for the cosines of everything the batch added: a loop of dot products made an import of
        # three thousand guide sections quadratic in Python.
        cosines = np.asarray([a[0] for a in self.added]) @ vector if self.added else np.zeros(0)
        for (_other, their_terms, record, path), cosine in zip(self.added, cosines.tolist(), strict=True):
            shared = len(mine & their_terms)
            union = len(mine) + len(their_terms) - shared
            jaccard = shared / union if union else 0.0
            if near_duplicate(cosine, jaccard, min(len(mine), len(their_terms))):
                found.append(Similar(cosine, jaccard, record, path, min(len(mine), len(their_terms))))
        self.last = (vector, mine)
        return sorted(found, key=lambda s: -max(s.cosine, s.jaccard))

    def remember(self, memory: Memory) -> None:
        """Count a memory this batch just wrote in later checks."""
        if self.snapshot is not None:
            vector, terms = self.last
            self.added.append((vector, terms, memory.to_json(), memory.path))


def add_one(
    pool: Pool,
    fields: dict[str, Any],
    force: bool = False,
    checker: _Checker | None = None,
    index: int = 1,
    dry_run: bool = False,
    assigned: dict[str, Any] | None = None,
) -> Result:
    """Write one memory from :meth:`Pool.add` keyword arguments, unless it is a near-duplicate (and not
    ``force``d) or does not validate (a secret in it, a missing field...). ``dry_run`` runs the same checks and
    writes nothing.

    :raises MtlgitError: where mtlgit is not set up (:meth:`Pool.check_set_up`): no item can be added there.
    """
    pool.check_set_up()
    result = Result(index, str(fields.get("title", ""))[:120])
    record = {k: fields.get(k) or "" for k in ("title", "description", "goal", "content")}
    record.update(domains=fields.get("domains", []), tags=fields.get("tags", []))
    checker = checker or _Checker(pool)
    if not force:
        similar = checker.duplicates(search_text(record))
        if similar:
            best = similar[0]
            what = f'{best.memory["id"]} "{best.memory["title"]}" ({best.path}'
            if identical(record, best.memory):
                result.reasons = [f"identical to {what}): it is in the pool already"]
            else:
                result.reasons = [
                    f"near-duplicate of {what}, cosine {best.cosine:.2f}, shared terms {best.jaccard:.2f}): improve "
                    "that one (`mtlgit edit`) or add with --force"
                ]
            return result
    try:
        if dry_run or assigned:
            memory = _validated(pool, fields, assigned or {}, write=not dry_run)
        else:
            memory = pool.add(**fields)
    except InvalidMemoryError as exc:
        result.reasons = [p.message for p in exc.problems if p.is_error] or [str(exc)]
        if any(p.code == "secret" for p in exc.problems):
            result.title = ""  # the title may be the secret: the reasons say which line holds it
        return result
    except MtlgitError as exc:
        result.reasons = [str(exc)]
        return result
    if not force:
        checker.remember(memory)
    if dry_run:
        result.passed = True
        return result
    result.memory = memory
    _memory, found = _lint(pool, memory)
    result.warnings = [p.message for p in found if not p.is_error]
    return result


def identical(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two memory records say the same words: title, description, goal and content, blank space aside."""
    return all(
        " ".join(str(a.get(key) or "").split()) == " ".join(str(b.get(key) or "").split())
        for key in ("title", "description", "goal", "content")
    )


def _validated(pool: Pool, fields: dict[str, Any], assigned: dict[str, Any], write: bool = False) -> Memory:
    """The memory :meth:`Pool.add` would write for ``fields``, validated the same way; written only when
    ``write``. ``assigned`` keeps the id, created, status and superseded_by an exported memory had."""
    options = {k: v for k, v in fields.items() if k != "content"}
    fmt = str(options.pop("format", "insight"))
    if fmt not in FORMATS:
        raise InvalidMemoryError(f"'format' must be one of {', '.join(FORMATS)}")
    options["domains"] = [d.strip() for d in options.get("domains", ()) if d.strip()]
    options["tags"] = [t.strip() for t in options.get("tags", ()) if t.strip()]
    memory_id = str(assigned.get("id") or new_ulid())
    meta = new_meta(memory_id, format=fmt, **options)
    meta.update((k, v) for k, v in assigned.items() if k != "id")
    text = frontmatter.render(meta, str(fields.get("content", "")))
    name = f"{slugify(str(fields.get('title', '')))}-{memory_id[-8:].lower()}.md"
    rel = f"{pool.rel(pool.memories_dir / fmt)}/{name}"
    memory, problems = parse_bytes(text.encode("utf-8"), rel)
    errors = [p for p in problems if p.is_error]
    if memory is None or errors:
        raise InvalidMemoryError("memory not valid", problems)
    if write:
        path = pool.memories_dir / fmt / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not write_new_file(path, text.encode("utf-8"), pool.tmp_dir):
            raise MtlgitError(f"{rel} already exists: import into a pool without it")
    return memory


def add_items(pool: Pool, items: list[Any], force: bool = False) -> list[Result]:
    """Validate, de-duplicate and write each JSON item; return one result per item, in order.

    Items may cite code: each item's ``cites`` go to ``source.cites`` at HEAD
    (:func:`mtlgit.citations.prepare_items`), and an item whose citations do not hold at their commit is
    rejected with the reasons, as ``mtlgit add --cite`` refuses it.
    """
    prepare_items(pool.root, items)
    wrong = verify(pool.root, [item if isinstance(item, dict) else {} for item in items])
    checker = _Checker(pool)
    results: list[Result] = []
    for index, item in enumerate(items, 1):
        if index - 1 in wrong:
            reasons = [f"source.cites: {p}" for _position, p in wrong[index - 1]]
            results.append(Result(index, str(item.get("title", ""))[:120], reasons=reasons))
            continue
        fields, problems = fields_from_mapping(item)
        if problems:
            results.append(Result(index, str(fields.get("title", ""))[:120], reasons=problems))
            continue
        results.append(add_one(pool, fields, force, checker, index))
    return results


def _lint(pool: Pool, memory: Memory) -> tuple[Memory | None, list[Any]]:
    return read_file(pool.root / memory.path, memory.path, pool.root)
