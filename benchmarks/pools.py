"""Deterministic pools of N memories made of real text, for the benchmarks.

What it builds: a fresh git repository (``git init``, nothing committed: the index does not need commits) with
``.mtlgit.yaml`` (``memories: memories``) and N valid ``format: insight`` memory files, laid out the way
``mtlgit add`` names them (``memories/insight/<slug>-<id suffix>.md``) or, with ``--layout sharded``, by
domain with at most 250 files per folder (``memories/<domain>/<NNN>/...``). Every file carries the front
matter ``mtlgit add`` writes (``id`` (a ULID made from the seed), ``title``, ``description``, ``format``,
``scope``, ``domains``, ``tags``, ``outcome``, ``created``, ``status``, ``superseded_by``) and a body of 1-3
sentences.

Where the text comes from (all offline, none of it written by this project):

- the repository's own starter memories (``memories/``), each once, unchanged but for a new id;
- docstrings of the Python standard library, read with :mod:`ast` from the stdlib sources (no module is
  imported, so nothing runs): domains ``python`` and the module;
- when the third-party data folder is there (``../shared/data`` beside a development checkout, or the folder
  named by ``MTLGIT_BENCH_DATA``): rule bullets and paragraphs of ``cursor-rules`` (awesome-cursorrules, CC0),
  domains from the rule's folder, and sentences of the SciFact abstracts (``scifact/corpus.jsonl``), domains
  ``science`` and ``biomedical``. In a user's clone these two are left out, with a note on standard error,
  and the other sources share their weight: the pools are smaller in vocabulary, so figures differ a little
  from those taken with the data.

Each memory takes a window of 1-3 consecutive sentences of one source item (a rule list, a docstring, an
abstract); its title is the window's first sentence cut to a line. The same ``--seed`` and data give the same
pool byte for byte (the stdlib part depends on the Python version). Extracting the texts takes a few seconds
the first time; the result is cached under the temporary folder (``mtlgit-bench-sources-*.json``).

Run it from the repository's root, with the virtual environment of the README's set-up::

    .venv/bin/python benchmarks/pools.py /tmp/pool-10k --size 10000
    .venv/bin/python benchmarks/pools.py /tmp/pool-100k --size 100000 --layout sharded --force

Library use: ``build_pool(dest, size)`` writes a pool; ``generate(size)`` returns the memories as dicts
(``search_text`` joins their text the way the index does) without writing anything.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import functools
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("MTLGIT_BENCH_DATA", str(REPO_ROOT.parent / "shared" / "data")))
STARTER_DIR = REPO_ROOT / "memories"
SOURCES_VERSION = 4  # bump when the extraction below changes: invalidates the cache

# Share of each source in the memories after the starter ones (which are all included once).
WEIGHTS: dict[str, float] = {"rules": 0.35, "pydoc": 0.30, "scifact": 0.35}
LAYOUTS = ("add", "sharded")
PER_FOLDER = 250  # files per folder in the sharded layout
BASE_MS = 1_764_000_000_000  # 2025-11-24: the first memory's creation time
MAX_BODY_CHARS = 900  # insights over 1,200 characters get a lint warning

# Realistic task descriptions an agent would recall memories for (shared by the benchmarks).
AGENT_QUERIES: tuple[str, ...] = (
    "fix a failing pytest test in a django project",
    "the shell script expands $HOME inside a heredoc",
    "migrate the build from setup.py to pyproject.toml",
    "TypeError: 'NoneType' object is not subscriptable when parsing the API response",
    "add a React component with TypeScript props and a unit test",
    "speed up a slow SQL query with a missing index in postgres",
    "the CI job fails only on macOS because sed -i takes a different argument",
    "write a regular expression to parse ISO 8601 timestamps with time zones",
    "refactor a long function without changing its behaviour",
    "the docker build cannot reach the network and pip install times out",
    "implement retries with exponential backoff for a flaky HTTP client",
    "gene expression changes in tumour cells after treatment",
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'`])")
_BULLET = re.compile(r"^(?:[-*+\u2022]|\d{1,2}[.)])\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")
_CODEY = re.compile(r"[{};]\s*$|=>|</|^\s*(?:import|from|def|class|const|let|var|function|return)\b|[{}]{2}")
_PLAIN_SCALAR = re.compile(r"^[A-Za-z][A-Za-z0-9 ,()/.'-]*[A-Za-z0-9).]$")
_YAML_WORDS = frozenset("y n yes no on off true false null none ~".split())
_STOP = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there these they
    this to was will with use using when where which while what your you should must can may from have has been
    were than also only more most other some each both into over under about after before between through during
    without within always never ensure make made like does done doing being would could them its our we""".split()
)
_ROUTINE_WORDS = frozenset(
    "cursorrules cursorrule cursor prompt file fil pro pr rules rule best practices guidelines ai p the and for".split()
)
_STDLIB_SKIP = frozenset(
    "test tests idlelib tkinter turtledemo site-packages lib2to3 ensurepip pydoc_data distutils __pycache__".split()
)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class Item:
    """One source item: sentences that belong together, and what a memory made of them is about."""

    source: str
    context: str  # the description: when a memory made of this item applies
    domains: tuple[str, ...]
    sentences: tuple[str, ...]
    title: str = ""  # starter memories keep their own title and tags
    tags: tuple[str, ...] = ()


@dataclass
class PoolInfo:
    """What :func:`build_pool` wrote."""

    root: Path
    size: int
    seed: int
    layout: str
    seconds_sources: float
    seconds_write: float
    sources: dict[str, int] = field(default_factory=dict)
    folders: int = 0
    distinct_bodies: int = 0
    bytes: int = 0

    def summary(self) -> str:
        mix = ", ".join(f"{name} {count}" for name, count in sorted(self.sources.items()))
        return (
            f"pool of {self.size} memories in {self.root} ({self.layout} layout, {self.folders} folders, "
            f"{self.bytes / 1e6:.1f} MB): {mix}; {self.distinct_bodies} distinct bodies; "
            f"texts {self.seconds_sources:.2f} s, files {self.seconds_write:.2f} s"
        )


# --- the texts ----------------------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """One line of printable text: control and other non-printable characters become spaces."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())


def _sentences(text: str, min_words: int = 4, max_chars: int = 400) -> list[str]:
    out = []
    for part in _SENTENCE_END.split(_clean(text)):
        part = part.strip()
        if len(part.split()) >= min_words and len(part) <= max_chars:
            out.append(part)
    return out


def _words_of(name: str) -> list[str]:
    words = re.split(r"[^a-z0-9]+", name.lower())
    return [w for w in words if w and w not in _ROUTINE_WORDS and not w.isdigit() and "rules" not in w]


def _scifact_items(data_dir: Path) -> list[Item]:
    items = []
    with open(data_dir / SOURCE_PATHS["scifact"], encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            sentences = _sentences(doc.get("text", ""))
            if sentences:
                topic = _clean(doc.get("title", "")).rstrip(".")
                context = (
                    f"When working on {topic[:1].lower()}{topic[1:]}." if topic else "When reading the literature."
                )
                items.append(Item("scifact", context, ("science", "biomedical"), tuple(sentences)))
    return items


def _rule_items(data_dir: Path) -> list[Item]:
    """Bullet lists and paragraphs of every rule file, one item per (file, heading)."""
    items: list[Item] = []
    rules = data_dir / SOURCE_PATHS["rules"]
    for folder in sorted(p for p in rules.iterdir() if p.is_dir()):
        words = _words_of(folder.name)
        domains = tuple(dict.fromkeys(words[:2])) or ("general",)
        topic = " ".join(words[:4]) or "this project"
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower() != "readme.md"):
            text = path.read_text(encoding="utf-8", errors="replace")
            description = ""
            if text.startswith("---"):
                head, _, text = text[3:].partition("\n---")
                match = re.search(r"^description:\s*(.+)$", head, re.MULTILINE)
                description = _clean(match.group(1).strip("'\"")) if match else ""
            for heading, sentences in _rule_sections(text):
                if description:
                    context = description if description.endswith(".") else description + "."
                else:
                    context = f"When working on {topic}" + (f": {heading.lower()}." if heading else ".")
                items.append(Item("rules", context, domains, tuple(sentences)))
    return items


def _rule_sections(text: str) -> Iterator[tuple[str, list[str]]]:
    """(heading, sentences) of each section of a rule file; code blocks and code-like lines left out."""
    heading = ""
    current: list[str] = []
    in_code = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code or not line:
            continue
        if line.startswith("#") or (line.endswith(":") and len(line) < 80):
            if current:
                yield heading, current
            current = []
            heading = _clean(line.lstrip("#/ ").rstrip(":"))
            continue
        line = line.lstrip("/*# ").strip()
        if _CODEY.search(line) or "cursorrules" in line.lower():
            continue
        line = _BULLET.sub("", line).strip().strip(",").strip("\"'`").replace("**", "").replace("__", "").strip()
        letters = sum(ch.isalpha() or ch == " " for ch in line)
        if not line or letters < 0.8 * len(line):
            continue
        current.extend(_sentences(line))
    if current:
        yield heading, current


def _stdlib_items() -> list[Item]:
    """Docstrings of the standard library's modules, classes and functions, read from the sources."""
    root = Path(sysconfig.get_paths()["stdlib"])
    items = []
    for path in _stdlib_files(root):
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        top = module.split(".")[0].strip("_").lower() or "python"
        domains = ("python", top) if top != "python" else ("python",)
        for qualname, doc in _docstrings(tree, module):
            sentences = []
            for paragraph in re.split(r"\n\s*\n", doc):
                lines = paragraph.strip().splitlines()
                if not lines or any(line.lstrip().startswith((">>>", "...", ":", "--", "==")) for line in lines):
                    continue
                if sum(line.count("(") + line.count("=") for line in lines) > 2 * len(lines):
                    continue
                sentences.extend(_sentences(" ".join(lines)))
            if sentences:
                items.append(Item("pydoc", f"When using {qualname} in Python.", domains, tuple(sentences[:8])))
    return items


def _stdlib_files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _STDLIB_SKIP and not d.startswith(("test", ".", "config-")))
        for name in sorted(files):
            if name.endswith(".py") and not name.startswith(("test", "_test")):
                yield Path(folder) / name


def _docstrings(tree: ast.Module, module: str) -> Iterator[tuple[str, str]]:
    doc = ast.get_docstring(tree)
    if doc:
        yield module, doc
    stack: list[tuple[ast.AST, str]] = [(tree, module)]
    while stack:
        node, prefix = stack.pop(0)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}.{child.name}"
                doc = ast.get_docstring(child)
                if doc:
                    yield name, doc
                stack.append((child, name))


def _starter_items(starter_dir: Path) -> list[Item]:
    import yaml

    items = []
    for path in sorted(starter_dir.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        if not text.startswith("---"):
            continue
        head, _, body = text[3:].partition("\n---\n")
        meta = yaml.safe_load(head) or {}
        if not isinstance(meta, dict) or not meta.get("title"):
            continue
        sentences = _sentences(body, min_words=1, max_chars=MAX_BODY_CHARS) or [_clean(body)]
        context = _clean(str(meta.get("description") or meta.get("goal") or "When it applies."))
        items.append(
            Item(
                "starter",
                context,
                tuple(str(d).lower() for d in meta.get("domains") or ()),
                tuple(sentences),
                title=_clean(str(meta["title"])),
                tags=tuple(str(t).lower() for t in meta.get("tags") or ()),
            )
        )
    return items


# Where the third-party sources live in the data folder; a source whose path is missing is left out.
SOURCE_PATHS = {"rules": Path("cursor-rules", "rules"), "scifact": Path("scifact", "corpus.jsonl")}


def missing_sources(data_dir: Path = DATA_DIR) -> list[str]:
    """The third-party sources not found under ``data_dir`` (a user's clone has none of them)."""
    return [name for name, rel in SOURCE_PATHS.items() if not (data_dir / rel).exists()]


@functools.cache  # once per process: a benchmark loads the items again for each extra memory it writes
def _note_missing(data_dir: Path, missing: tuple[str, ...]) -> None:
    print(
        f"pools.py: {' and '.join(missing)} not found in {data_dir}: the pools are made of the other sources "
        "(MTLGIT_BENCH_DATA names another data folder)",
        file=sys.stderr,
    )


def load_items(data_dir: Path = DATA_DIR, starter_dir: Path = STARTER_DIR) -> dict[str, list[Item]]:
    """Every source's items (cached on disk: the stdlib scan takes a few seconds). The third-party sources
    missing from ``data_dir`` are left out, with a note on standard error."""
    missing = missing_sources(data_dir)
    if missing:
        _note_missing(data_dir, tuple(missing))
    key = hashlib.sha1(
        f"{SOURCES_VERSION}:{sys.version}:{data_dir.resolve()}:{starter_dir.resolve()}:{missing}".encode()
    ).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"mtlgit-bench-sources-{key}.json"
    starter = _starter_items(starter_dir)  # always fresh: the starter pool changes with the repository
    if cache.is_file():
        try:
            raw = json.loads(cache.read_text(encoding="utf-8"))
            loaded = {name: [Item(r[0], r[1], tuple(r[2]), tuple(r[3])) for r in rows] for name, rows in raw.items()}
            return {"starter": starter, **loaded}
        except (OSError, ValueError, TypeError):
            pass
    items = {
        "rules": [] if "rules" in missing else _rule_items(data_dir),
        "pydoc": _stdlib_items(),
        "scifact": [] if "scifact" in missing else _scifact_items(data_dir),
    }
    rows = {
        name: [[i.source, i.context, list(i.domains), list(i.sentences)] for i in its] for name, its in items.items()
    }
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, cache)
    return {"starter": starter, **items}


# --- memories -----------------------------------------------------------------------------------------------


def _ulid(ms: int, rng: random.Random) -> str:
    value = (ms << 80) | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _title(sentence: str, limit: int = 90) -> str:
    sentence = sentence.rstrip(".")
    if len(sentence) <= limit:
        return sentence
    return sentence[: limit + 1].rsplit(" ", 1)[0].rstrip(",;:-") or sentence[:limit]


def _tags(text: str, rng: random.Random) -> list[str]:
    words = sorted({w.lower() for w in _WORD.findall(text) if len(w) >= 5 and w.lower() not in _STOP})
    if not words:
        return ["general"]
    return sorted(rng.sample(words, min(len(words), rng.choice((1, 2, 2, 3)))))


def generate(size: int, seed: int = 0, items: dict[str, list[Item]] | None = None) -> list[dict[str, Any]]:
    """``size`` memories as dicts (``id``, ``title``, ``description``, ``domains``, ``tags``, ``outcome``,
    ``created``, ``content``, ``source``): the starter memories first, then a seeded mix of the other sources."""
    items = load_items() if items is None else items
    rng = random.Random(seed)
    memories: list[dict[str, Any]] = []
    chosen: list[tuple[Item, tuple[str, ...]]] = [(item, item.sentences[:3]) for item in items["starter"]][:size]
    names = [name for name in WEIGHTS if items.get(name)]
    weights = [WEIGHTS[name] for name in names]
    decks: dict[str, list[tuple[int, int, int]]] = {name: [] for name in names}
    for _ in range(size - len(chosen)):
        name = rng.choices(names, weights)[0]
        deck = decks[name]
        if not deck:  # every window of this source dealt once (or none yet): shuffle them all again
            deck.extend(_windows(items[name]))
            rng.shuffle(deck)
        index, start, length = deck.pop()
        item = items[name][index]
        chosen.append((item, item.sentences[start : start + length]))
    for index, (item, window) in enumerate(chosen):
        ms = BASE_MS + index * 60_000 + rng.randrange(60_000)
        body = " ".join(window)[: MAX_BODY_CHARS * 2]
        memories.append(
            {
                "id": _ulid(ms, rng),
                "title": item.title or _title(window[0]),
                "description": item.context,
                "domains": list(item.domains) or ["general"],
                "tags": list(item.tags) or _tags(body, rng),
                "outcome": rng.choices(("success", "failure", "unknown"), (6, 2, 2))[0],
                "created": dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "content": body,
                "source": item.source,
            }
        )
    return memories


def _windows(items: Sequence[Item]) -> list[tuple[int, int, int]]:
    """Every (item, first sentence, length) of 1-3 consecutive sentences that fits an insight's body."""
    out = []
    for index, item in enumerate(items):
        sentences = item.sentences
        for start in range(len(sentences)):
            chars = 0
            for length in range(1, 4):
                if start + length > len(sentences):
                    break
                chars += len(sentences[start + length - 1]) + 1
                if length > 1 and chars > MAX_BODY_CHARS:
                    break
                out.append((index, start, length))
    return out


def search_text(memory: dict[str, Any]) -> str:
    """The text the index sees of a memory (as ``mtlgit.memory.search_text`` joins it)."""
    parts = [memory["title"], memory["description"], memory["content"], " ".join(memory["tags"])]
    parts.append(" ".join(memory["domains"]))
    return "\n".join(part for part in parts if part)


def _scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain when that is unambiguous, else double-quoted (JSON is valid YAML)."""
    if _PLAIN_SCALAR.match(text) and text.lower() not in _YAML_WORDS and ": " not in text and " #" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(values: Sequence[str]) -> str:
    return "[" + ", ".join(_scalar(v) for v in values) + "]"


def render(memory: dict[str, Any]) -> bytes:
    """The memory file, as ``mtlgit add`` writes one."""
    return (
        "---\n"
        f"id: {memory['id']}\n"
        f"title: {_scalar(memory['title'])}\n"
        f"description: {_scalar(memory['description'])}\n"
        "format: insight\n"
        "scope: task-agnostic\n"
        f"domains: {_flow(memory['domains'])}\n"
        f"tags: {_flow(memory['tags'])}\n"
        f"outcome: {memory['outcome']}\n"
        f"created: {memory['created']}\n"
        "status: active\n"
        "superseded_by: null\n"
        "---\n"
        f"{memory['content']}\n"
    ).encode()


def slugify(title: str, limit: int = 60) -> str:
    """The file-name slug ``mtlgit add`` uses (lower-case ASCII, single dashes, cut at a dash)."""
    ascii_text = title.encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > limit:
        head = slug[: limit + 1]
        slug = (head.rsplit("-", 1)[0] if "-" in head else slug[:limit]).rstrip("-")
    return slug or "memory"


def memory_path(memory: dict[str, Any], layout: str, counts: Counter[str] | None = None) -> str:
    """Where a memory goes, relative to the repository root (``counts``: files per domain so far, sharded)."""
    name = f"{slugify(memory['title'])}-{memory['id'][-8:].lower()}.md"
    if layout == "sharded":
        domain = memory["domains"][0]
        counts = Counter() if counts is None else counts
        shard = counts[domain] // PER_FOLDER
        counts[domain] += 1
        return f"memories/{domain}/{shard:03d}/{name}"
    return f"memories/insight/{name}"


def build_pool(dest: Path, size: int, seed: int = 0, layout: str = "add", force: bool = False) -> PoolInfo:
    """Write a pool of ``size`` memories into a fresh git repository at ``dest``.

    :param force: replace ``dest`` if it exists (otherwise it must be missing or empty).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    if dest.exists() and any(dest.iterdir()):
        if not force:
            raise FileExistsError(f"{dest} is not empty (use --force to replace it)")
        shutil.rmtree(dest)
    started = time.perf_counter()
    items = load_items()
    memories = generate(size, seed, items)
    sources_done = time.perf_counter()
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    (dest / ".mtlgit.yaml").write_text("memories: memories\n", encoding="utf-8")
    made: set[str] = set()
    total = 0
    counts: Counter[str] = Counter()
    for memory in memories:
        rel = memory_path(memory, layout, counts)
        folder = rel.rpartition("/")[0]
        if folder not in made:
            os.makedirs(dest / folder, exist_ok=True)
            made.add(folder)
        data = render(memory)
        total += len(data)
        with open(dest / rel, "xb") as handle:
            handle.write(data)
    written = time.perf_counter()
    return PoolInfo(
        root=dest,
        size=size,
        seed=seed,
        layout=layout,
        seconds_sources=sources_done - started,
        seconds_write=written - sources_done,
        sources=dict(Counter(m["source"] for m in memories)),
        folders=len(made),
        distinct_bodies=len({m["content"] for m in memories}),
        bytes=total,
    )


def new_memory_file(root: Path, memory_id_seed: int, layout: str = "add") -> Path:
    """Write one extra memory (for "recall right after adding a file") and return its path."""
    rng = random.Random(10_000_019 + memory_id_seed)
    memory = generate(1, seed=memory_id_seed)[0]
    memory["id"] = _ulid(BASE_MS + 10**12 + memory_id_seed, rng)
    memory["title"] = f"Benchmark note {memory_id_seed}: {memory['title']}"[:120]
    rel = memory_path(memory, layout)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render(memory))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a deterministic pool of real-text memories.")
    parser.add_argument("dest", type=Path, help="folder of the new repository (missing or empty)")
    parser.add_argument("--size", type=int, default=10_000, help="number of memories (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", choices=LAYOUTS, default="add", help="add: memories/insight/; sharded: domain/NNN/")
    parser.add_argument("--force", action="store_true", help="replace dest if it is not empty")
    args = parser.parse_args(argv)
    try:
        info = build_pool(args.dest, args.size, args.seed, args.layout, args.force)
    except (FileExistsError, ValueError) as exc:
        print(f"pools.py: {exc}", file=sys.stderr)
        return 1
    print(info.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
