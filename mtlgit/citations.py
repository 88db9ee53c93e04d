"""Code citations: where in the code a memory speaks of, and whether that code is still as it was.

A memory may cite code in ``source.cites``: a path, plus a symbol (a function or class definition) or a line
range, as they were at ``source.commit``. At recall each citation is checked against the tree of ``HEAD``:

- **fresh**: the cited symbol's definition, or the cited lines, are unchanged (the file may have moved: a
  rename is followed as ``git diff -M`` finds it; lines inserted or removed elsewhere only move the range);
- **drifted**: the symbol's definition or a cited line changed;
- **orphaned**: the file is gone, or the symbol is no longer defined in it (a symbol moved to another file is
  orphaned: the note names where a definition of that name now is).

A memory takes the worst state of its citations. The git work of one check is batched: one
``cat-file --batch-check`` for the blobs at both ends, one ``diff --raw -M`` per recorded commit whose cited
file is gone (to follow a rename), one ``cat-file --batch`` for the contents of the files that changed, and one
``git grep`` for orphaned symbols. The result is cached per (citations, ``HEAD`` tree) under the worktree's
state folder (``.git/mtlgit/citations/<tree>/``), and the refresh hooks warm it (see docs/citations.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mtlgit import git
from mtlgit.errors import MtlgitError

STATES = ("fresh", "drifted", "orphaned")
CACHE_NAME = "citations"
# Part of every cache key: a change to how states are found must not keep the states found the old way.
CHECK_VERSION = 2
# git processes spawned by this module in this process: a check answered from the cache spawns none.
COUNTERS = {"git": 0}

_LINES = re.compile(r"^(\d+)(?:-(\d+))?$")
_SYMBOL = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*$")


@dataclass(frozen=True)
class Cite:
    path: str
    symbol: str | None = None
    lines: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        if self.symbol:
            return f"{self.path}:{self.symbol}"
        if self.lines:
            a, b = self.lines
            return f"{self.path}:{a}-{b}" if a != b else f"{self.path}:{a}"
        return self.path

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path}
        if self.symbol:
            data["symbol"] = self.symbol
        if self.lines:
            data["lines"] = list(self.lines)
        return data


def parse_spec(spec: str) -> Cite:
    """``PATH``, ``PATH:SYMBOL``, ``PATH:A-B`` or ``PATH:A`` (the shorthand of ``mtlgit add --cite``).

    :raises ValueError: with the fix, when the spec cannot be read.
    """
    text = spec.strip()
    path, sep, tail = text.rpartition(":")
    if not sep or "/" in tail or not tail:
        path, tail = text, ""
    if tail and (match := _LINES.match(tail)):
        a, b = int(match[1]), int(match[2] or match[1])
        return check_cite({"path": path, "lines": [a, b]})
    if tail:
        return check_cite({"path": path, "symbol": tail})
    return check_cite({"path": path})


def check_cite(value: Any) -> Cite:
    """One citation of ``source.cites`` (a mapping, or the ``PATH[:SYMBOL|:A-B]`` shorthand).

    :raises ValueError: saying what is wrong and how to write it instead.
    """
    if isinstance(value, str):
        return parse_spec(value)
    if not isinstance(value, dict):
        raise ValueError("a citation is a mapping {path, symbol} or {path, lines: [first, last]}, or 'path:symbol'")
    path = value.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ValueError("a citation needs a 'path' (relative to the repository root)")
    path = path.strip()
    posix = PurePosixPath(path)
    if posix.is_absolute() or re.match(r"^[A-Za-z]:[\\/]", path) or "\\" in path:
        raise ValueError(f"cited path '{path}' must be relative to the repository root, with '/' separators")
    if ".." in posix.parts:
        raise ValueError(f"cited path '{path}' leaves the repository ('..'): cite a file inside it")
    if any(ord(ch) < 32 for ch in path):
        raise ValueError("a cited path may not hold control characters")
    path = str(posix)
    unknown = set(value) - {"path", "symbol", "lines"}
    if unknown:
        raise ValueError(f"a citation has only path, symbol and lines, not {', '.join(sorted(map(str, unknown)))}")
    symbol, lines = value.get("symbol"), value.get("lines")
    if symbol is not None and lines is not None:
        raise ValueError(f"cite either a symbol or lines of '{path}', not both: make two citations")
    if symbol is not None:
        if not isinstance(symbol, str) or not _SYMBOL.match(symbol.strip()):
            raise ValueError(
                f"cited symbol {symbol!r} must be a function or class name, or Class.method (letters, digits, _)"
            )
        return Cite(path, symbol=symbol.strip())
    if lines is not None:
        if isinstance(lines, int) and not isinstance(lines, bool):
            lines = [lines, lines]
        if (
            not isinstance(lines, list)
            or len(lines) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in lines)
            or not 1 <= lines[0] <= lines[1]
        ):
            raise ValueError(f"cited lines of '{path}' must be [first, last] with 1 <= first <= last, e.g. [10, 24]")
        return Cite(path, lines=(lines[0], lines[1]))
    return Cite(path)


def cites_of(memory: dict[str, Any]) -> tuple[str, list[Cite]] | None:
    """(recorded commit, citations) of a memory record, or None when it cites nothing checkable."""
    source = memory.get("source")
    if not isinstance(source, dict):
        return None
    commit = source.get("commit")
    raw = source.get("cites")
    if not isinstance(commit, str) or not commit.strip() or "\n" in commit or not isinstance(raw, list) or not raw:
        return None
    cites = []
    for item in raw:
        try:
            cites.append(check_cite(item))
        except ValueError:
            continue
    return (commit.strip(), cites) if cites else None


# --- finding a symbol --------------------------------------------------------------------------------------

_PY = (r"^(?P<indent>[ \t]*)(?:async[ \t]+)?def[ \t]+{n}\b", r"^(?P<indent>[ \t]*)class[ \t]+{n}\b")
_JS = (
    r"^(?P<indent>[ \t]*)(?:export[ \t]+)?(?:default[ \t]+)?(?:async[ \t]+)?function[ \t]*\*?[ \t]*{n}\s*[(<]",
    r"^(?P<indent>[ \t]*)(?:export[ \t]+)?(?:default[ \t]+)?(?:abstract[ \t]+)?class[ \t]+{n}\b",
    r"^(?P<indent>[ \t]*)(?:export[ \t]+)?(?:const|let|var)[ \t]+{n}\s*(?::[^=]+)?=",
    r"^(?P<indent>[ \t]*)(?:export[ \t]+)?(?:interface|enum|type)[ \t]+{n}\b",
    # A method: its header ends with '{' (a call in code without semicolons does not).
    r"^(?P<indent>[ \t]*)(?:(?:public|private|protected|static|async|readonly|override|get|set)[ \t]+)*{n}\s*"
    r"(?:<[^>]*>)?\([^;]*\)\s*(?::[^;{]*)?\{",
)
_GO = (r"^(?P<indent>)func[ \t]+(?:\([^)]*\)[ \t]*)?{n}\s*[(\[]", r"^(?P<indent>[ \t]*)type[ \t]+{n}\b")
_RUST = (
    r"^(?P<indent>[ \t]*)(?:pub(?:\([^)]*\))?[ \t]+)?(?:(?:const|async|unsafe|extern(?:[ \t]+\"[^\"]*\")?)[ \t]+)*"
    r"fn[ \t]+{n}\b",
    r"^(?P<indent>[ \t]*)(?:pub(?:\([^)]*\))?[ \t]+)?(?:struct|enum|trait|union|type|mod|macro_rules!)[ \t]*{n}\b",
    r"^(?P<indent>[ \t]*)impl(?:<[^>]*>)?[ \t]+(?:[\w:<>]+[ \t]+for[ \t]+)?{n}\b",
)
_JAVA = (
    r"^(?P<indent>[ \t]*)(?:(?:public|private|protected|static|final|abstract|sealed|data|open|internal)[ \t]+)*"
    r"(?:class|interface|enum|record|object|@interface)[ \t]+{n}\b",
    r"^(?P<indent>[ \t]*)(?:@\w+[ \t]+)*(?:(?:public|private|protected|static|final|abstract|synchronized|native|"
    r"default)[ \t]+)*(?!(?:return|new|throw|else)\b)[\w<>\[\],.? \t]+[ \t]{n}\s*\([^;]*$",
    r"^(?P<indent>[ \t]*)(?:(?:private|public|internal|override|suspend|inline)[ \t]+)*fun[ \t]+(?:<[^>]*>[ \t]*)?"
    r"(?:[\w.]+\.)?{n}\s*\(",
)
LANGUAGES: dict[str, tuple[str, ...]] = {
    ".py": _PY,
    ".pyi": _PY,
    ".js": _JS,
    ".jsx": _JS,
    ".mjs": _JS,
    ".cjs": _JS,
    ".ts": _JS,
    ".tsx": _JS,
    ".mts": _JS,
    ".cts": _JS,
    ".go": _GO,
    ".rs": _RUST,
    ".java": _JAVA,
    ".kt": _JAVA,
    ".kts": _JAVA,
    ".cs": _JAVA,
    ".scala": _JAVA,
}
_ANY = tuple(dict.fromkeys((*_PY, *_JS, *_GO, *_RUST, *_JAVA)))
_NAME = r"(?P<name>[A-Za-z_$][\w$]*)"
_COMPILED: dict[str, list[re.Pattern[str]]] = {}


def _patterns(path: str) -> list[re.Pattern[str]]:
    """The definition patterns for a file's language (all of them for an unknown one), compiled once: each
    captures the defined name, so one set serves every symbol."""
    suffix = PurePosixPath(path).suffix.lower()
    key = suffix if suffix in LANGUAGES else ""
    if key not in _COMPILED:
        _COMPILED[key] = [re.compile(p.replace("{n}", _NAME)) for p in LANGUAGES.get(key, _ANY)]
    return _COMPILED[key]


def _defines(patterns: Sequence[re.Pattern[str]], line: str, name: str) -> re.Match[str] | None:
    for pattern in patterns:
        match = pattern.match(line)
        if match and match["name"] == name:
            return match
    return None


def find_symbol(path: str, lines: Sequence[str], symbol: str) -> tuple[int, int] | None:
    """0-based [start, end) of the definition of ``symbol`` (``Outer.inner`` looks inside Outer), or None."""
    start, end = 0, len(lines)
    for name in re.split(r"\.|::", symbol):
        found = _find_one(path, lines, name, start, end)
        if found is None:
            return None
        start, end = found
    return start, end


def _find_one(path: str, lines: Sequence[str], name: str, start: int, end: int) -> tuple[int, int] | None:
    patterns = _patterns(path)
    for index in range(start, end):
        line = lines[index]
        if name in line and (match := _defines(patterns, line, name)):
            return index, _block_end(path, lines, index, len(match["indent"].expandtabs()), end)
    return None


def _block_end(path: str, lines: Sequence[str], first: int, indent: int, limit: int) -> int:
    """One past the last line of the definition starting at ``first``: by indentation for Python, by balanced
    braces otherwise (a definition with no brace before its ';' is one statement: up to the ';')."""
    if PurePosixPath(path).suffix.lower() in (".py", ".pyi"):
        end = first + 1
        # The signature may span lines: skip to the line ending the header (its ':' outside brackets).
        depth = 0
        for index in range(first, limit):
            depth += sum(lines[index].count(c) for c in "([{") - sum(lines[index].count(c) for c in ")]}")
            end = index + 1
            if depth <= 0 and lines[index].rstrip().endswith(":"):
                break
        last = end
        for index in range(end, limit):
            text = lines[index]
            if not text.strip():
                continue
            if len(text) - len(text.lstrip()) <= indent and not text.lstrip().startswith(("#", ")", "]", "}")):
                break
            last = index + 1
        return last
    depth, opened = 0, False
    for index in range(first, limit):
        text = _strip_literals(lines[index])
        for ch in text:
            if ch == "{":
                depth, opened = depth + 1, True
            elif ch == "}":
                depth -= 1
            elif ch == ";" and not opened and depth == 0:
                return index + 1
        if opened and depth <= 0:
            return index + 1
    return first + 1 if not opened else limit


_LITERALS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`|//.*$')


def _strip_literals(line: str) -> str:
    """A line without its string literals and line comment, so a brace inside them is not counted."""
    return _LITERALS.sub("", line)


# --- checking citations ------------------------------------------------------------------------------------


@dataclass
class CiteState:
    cite: Cite
    state: str
    path: str | None = None  # where the cited code is at the checked tree
    lines: tuple[int, int] | None = None  # 1-based, inclusive
    detail: str = ""
    digest: str = ""  # of the cited code at the checked tree ("" when orphaned)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.cite.to_json(),
            "state": self.state,
            "now": {"path": self.path, "lines": list(self.lines) if self.lines else None} if self.path else None,
            "detail": self.detail,
            "digest": self.digest,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CiteState:
        now = data.get("now") or {}
        cite = check_cite({k: data[k] for k in ("path", "symbol", "lines") if k in data})
        lines = now.get("lines")
        return cls(
            cite, data["state"], now.get("path"), tuple(lines) if lines else None, data["detail"], data["digest"]
        )


@dataclass
class Report:
    """The citations of one memory, checked: ``state`` is the worst of theirs."""

    commit: str
    cites: list[CiteState] = field(default_factory=list)

    @property
    def state(self) -> str:
        return max((c.state for c in self.cites), key=STATES.index, default="fresh")

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "commit": self.commit, "cites": [c.to_json() for c in self.cites]}

    def note(self) -> str | None:
        """The one-line note recall shows for a drifted or orphaned memory (None when fresh)."""
        bad = [c for c in self.cites if c.state == self.state]
        if self.state == "fresh" or not bad:
            return None
        what = "; ".join(f"{c.cite.label} {c.detail}" for c in bad)
        return f"{self.state}: {what} since {self.commit[:10]}: verify this memory against the code"


def _git(root: Path, args: Sequence[str], data: bytes | None = None) -> bytes | None:
    """What git printed, or None when it failed: a citation git cannot check has no state, never an error."""
    COUNTERS["git"] += 1
    try:
        result = git.run(root, *args, input=data, check=False, timeout=120)
    except MtlgitError:
        return None
    return result.stdout if result.ok else None


def head_tree(root: Path, rev: str = "HEAD", git_dir: Path | None = None) -> str | None:
    """The tree id of ``rev``: for HEAD read from the files of ``git_dir`` when it can be, else from git."""
    if rev == "HEAD" and git_dir is not None:
        tree = _head_tree_from_files(git_dir)
        if tree:
            return tree
    out = _git(root, ["rev-parse", "--verify", "-q", f"{rev}^{{tree}}"])
    return out.decode().strip() if out else None


def _head_tree_from_files(git_dir: Path) -> str | None:
    """HEAD's tree from the ref files and the loose commit object, without a git process (a recall with a warm
    cache then starts none: a process costs 5-15 ms on a busy machine). None whenever any part is packed or
    unusual (a packed ref, a packed commit, SHA-256 ids): git answers those."""
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        common = git_dir
        if (git_dir / "commondir").is_file():
            common = git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()
        commit = head
        if head.startswith("ref: "):
            ref = head[5:].strip()
            own = git_dir / ref
            commit = (own if own.is_file() else common / ref).read_text(encoding="utf-8").strip()
        if not re.fullmatch(r"[0-9a-f]{40}", commit):
            return None
        data = zlib.decompress((common / "objects" / commit[:2] / commit[2:]).read_bytes())
    except (OSError, zlib.error, ValueError):
        return None
    header, _, body = data.partition(b"\0")
    if not header.startswith(b"commit ") or not re.match(rb"tree [0-9a-f]{40}\n", body):
        return None
    return body[5:45].decode()


def _batch_check(root: Path, names: list[str]) -> list[str | None]:
    if not names:
        return []
    out = _git(root, ["cat-file", "--batch-check=%(objectname) %(objecttype)"], ("\n".join(names) + "\n").encode())
    if out is None:
        return [None] * len(names)
    answers = out.decode("utf-8", "replace").splitlines()
    result: list[str | None] = []
    for answer in answers[: len(names)]:
        parts = answer.split()
        # A cited folder (a tree) is not a file: as good as missing.
        result.append(parts[0] if len(parts) == 2 and parts[1] in ("blob", "commit") else None)
    return result + [None] * (len(names) - len(result))


def read_blobs(root: Path, blobs: Iterable[str]) -> dict[str, bytes]:
    wanted = sorted(set(blobs))
    if not wanted:
        return {}
    out = _git(root, ["cat-file", "--batch"], ("\n".join(wanted) + "\n").encode())
    contents: dict[str, bytes] = {}
    position = 0
    while out is not None and position < len(out):
        newline = out.index(b"\n", position)
        header = out[position:newline].split()
        position = newline + 1
        if len(header) != 3:
            continue
        size = int(header[2])
        contents[header[0].decode()] = out[position : position + size]
        position += size + 1
    return contents


def _renames(root: Path, commit: str, rev: str, paths: set[str]) -> dict[str, tuple[str, str]]:
    """Old path -> (new path, new blob) for each of ``paths`` that was renamed between commit and rev.

    Renames are chained commit by commit, as ``git log --follow`` does (a file renamed and then much edited is
    still found); a path the chain loses is looked for in ``git diff -M commit rev`` (the rebased or merged
    history may hold no commit renaming it).
    """
    out = _git(
        root, ["log", "--reverse", "-M", "--diff-filter=R", "--name-status", "-z", "--format=", f"{commit}..{rev}"]
    )
    where = {path: path for path in paths}
    tokens = [t.strip("\n") for t in (out or b"").decode("utf-8", "surrogateescape").split("\0")]
    for index, token in enumerate(tokens[:-2]):
        if re.fullmatch(r"R\d*", token):
            old, new = tokens[index + 1], tokens[index + 2]
            for path, now in where.items():
                if now == old:
                    where[path] = new
    moved = {path: now for path, now in where.items() if now != path}
    blobs = dict(zip(moved, _batch_check(root, [f"{rev}:{now}" for now in moved.values()]), strict=True))
    found = {path: (moved[path], blob) for path, blob in blobs.items() if blob}
    if len(found) < len(paths):
        out = _git(root, ["diff", "--raw", "-z", "--no-abbrev", "-M", "--diff-filter=R", commit, rev])
        fields = (out or b"").decode("utf-8", "surrogateescape").split("\0")
        for index in range(len(fields) - 2):
            meta = fields[index].split()
            if len(meta) >= 5 and meta[4].startswith("R") and fields[index + 1] in paths:
                found.setdefault(fields[index + 1], (fields[index + 2], meta[3]))
    return found


def _digest(lines: Sequence[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def _text_lines(data: bytes) -> list[str]:
    return data.decode("utf-8", "surrogateescape").splitlines()


def map_lines(old: Sequence[str], new: Sequence[str], first: int, last: int) -> tuple[str, tuple[int, int]]:
    """(state, new 1-based range) of lines first..last of ``old`` in ``new``: fresh when they sit in one
    unchanged stretch of the diff (moved by what was inserted or removed around them), else drifted."""
    import difflib  # only on a cache miss: recall with a warm cache does not pay for it

    if last > len(old):
        return "orphaned", (first, last)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    start = end = None
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" and i1 <= first - 1 and last <= i2:
            shift = j1 - i1
            return "fresh", (first + shift, last + shift)
        if i1 <= first - 1 < max(i2, i1 + 1) and start is None:
            start = j1 + (first - 1 - i1 if tag == "equal" else 0) + 1
        if i1 < last <= max(i2, i1 + 1):
            end = j1 + (last - i1 if tag == "equal" else j2 - j1)
    start = start or 1
    return "drifted", (start, max(start, end or start))


def _where_defined(root: Path, rev: str, symbols: set[str]) -> dict[str, str]:
    """Last part of each symbol -> ``path:line`` of a definition of that name anywhere at rev (one git grep)."""
    names = sorted({re.split(r"\.|::", s)[-1] for s in symbols})
    if not names:
        return {}
    args = ["grep", "-n", "-I", "-w", "-F"]
    for name in names:
        args += ["-e", name]
    out = _git(root, [*args, rev])
    found: dict[str, str] = {}
    for line in (out or b"").decode("utf-8", "surrogateescape").splitlines():
        try:
            _rev, path, number, text = line.split(":", 3)
        except ValueError:
            continue
        for name in names:
            if name not in found and name in text and _defines(_patterns(path), text, name):
                found[name] = f"{path}:{number}"
    return found


def check(root: Path, memories: Sequence[dict[str, Any]], rev: str = "HEAD") -> dict[int, Report]:
    """Index of each memory that cites code (and whose commit this repository has) -> its checked citations
    against ``rev``. No cache: see :func:`states` for the cached path."""
    plans: list[tuple[int, str, list[Cite]]] = []
    for index, memory in enumerate(memories):
        found = cites_of(memory)
        if found:
            plans.append((index, *found))
    if not plans:
        return {}
    names: list[str] = []
    for _index, commit, cites in plans:
        names.append(f"{commit}^{{commit}}")
        for cite in cites:
            names += [f"{commit}:{cite.path}", f"{rev}:{cite.path}"]
    answers = iter(_batch_check(root, names))
    known: dict[int, tuple[str | None, list[tuple[Cite, str | None, str | None]]]] = {}
    for index, _commit, cites in plans:
        commit_id = next(answers)
        known[index] = (commit_id, [(cite, next(answers), next(answers)) for cite in cites])
    # Follow the renames of files gone at rev: one rename walk per recorded commit that needs it.
    gone: dict[str, set[str]] = {}
    for commit_id, rows in known.values():
        for cite, then, now in rows:
            if commit_id and then and not now:
                gone.setdefault(commit_id, set()).add(cite.path)
    renames = {commit_id: _renames(root, commit_id, rev, paths) for commit_id, paths in sorted(gone.items())}
    blobs: set[str] = set()
    for commit_id, rows in known.values():
        for cite, then, now in rows:
            if not then:
                continue
            now = now or renames.get(commit_id or "", {}).get(cite.path, (None, None))[1]
            if now and (cite.symbol or cite.lines):
                blobs.update((then, now))
    contents = read_blobs(root, blobs)
    reports: dict[int, Report] = {}
    orphaned_symbols: list[CiteState] = []
    for index, commit, _cites in plans:
        commit_id, rows = known[index]
        if not commit_id:
            continue  # learned elsewhere, or the commit was dropped: nothing can be said
        report = Report(commit)
        for cite, then, now in rows:
            path = cite.path
            if not now and then:
                path, now = renames.get(commit_id, {}).get(cite.path, (cite.path, None))
            state = _check_one(cite, then, now, path, contents)
            report.cites.append(state)
            if state.state == "orphaned" and cite.symbol and then:
                orphaned_symbols.append(state)
        reports[index] = report
    if orphaned_symbols:
        where = _where_defined(root, rev, {s.cite.symbol or "" for s in orphaned_symbols})
        for state in orphaned_symbols:
            elsewhere = where.get(re.split(r"\.|::", state.cite.symbol or "")[-1])
            if elsewhere:
                state.detail += f" (a definition of that name is now in {elsewhere})"
    return reports


def _check_one(cite: Cite, then: str | None, now: str | None, path: str, contents: dict[str, bytes]) -> CiteState:
    if not then:
        return CiteState(cite, "orphaned", detail="was not in the recorded commit")
    if not now:
        return CiteState(cite, "orphaned", detail="was deleted")
    moved = f" (now {path})" if path != cite.path else ""
    if not cite.symbol and not cite.lines:
        if then == now:
            return CiteState(cite, "fresh", path, detail=f"unchanged{moved}", digest=now)
        return CiteState(cite, "drifted", path, detail=f"changed{moved}", digest=now)
    old, new = _text_lines(contents.get(then, b"")), _text_lines(contents.get(now, b""))
    if cite.symbol:
        before = find_symbol(cite.path, old, cite.symbol)
        after = find_symbol(path, new, cite.symbol)
        if before is None:
            return CiteState(cite, "orphaned", detail="was not defined in the recorded commit")
        if after is None:
            return CiteState(cite, "orphaned", detail=f"is no longer defined in {path}")
        span = (after[0] + 1, after[1])
        digest = _digest(new[after[0] : after[1]])
        if _digest(old[before[0] : before[1]]) == digest:
            return CiteState(cite, "fresh", path, span, f"unchanged{moved}", digest)
        return CiteState(cite, "drifted", path, span, f"changed{moved}", digest)
    assert cite.lines is not None
    state, span = map_lines(old, new, *cite.lines)
    if state == "orphaned":
        return CiteState(cite, "orphaned", detail="was not in the recorded commit (the file is shorter)")
    digest = _digest(new[span[0] - 1 : span[1]])
    where = f"{path}:{span[0]}-{span[1]}"
    if state == "fresh":
        shifted = "" if (path, span) == (cite.path, cite.lines) else f" (now {where})"
        return CiteState(cite, "fresh", path, span, f"unchanged{shifted}", digest)
    return CiteState(cite, "drifted", path, span, f"changed (now about {where})", digest)


# --- the cache ---------------------------------------------------------------------------------------------


def cache_key(memory: dict[str, Any]) -> str | None:
    """What a memory's state depends on besides the tree: its commit and citations (not its text, so an edit
    of the content keeps the cached state)."""
    found = cites_of(memory)
    if not found:
        return None
    commit, cites = found
    text = json.dumps([CHECK_VERSION, commit, [c.to_json() for c in cites]])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class StateCache:
    """(citation key, tree) -> checked citations: one small JSON file per key in a folder per tree.

    A recall reads only its hits' files, so it neither loads a table nor imports sqlite3 (which costs more
    than the lookups). The folders of the ``KEEP`` most recent trees stay; a warm-up keeps only its own.
    """

    KEEP = 4

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, tree: str, keys: Sequence[str]) -> dict[str, Report]:
        found: dict[str, Report] = {}
        here = self.folder / tree
        for key in keys:
            try:
                data = json.loads((here / key).read_bytes())
                found[key] = Report(data["commit"], [CiteState.from_json(c) for c in data["cites"]])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not checked yet, or damaged: checked again
        return found

    def put(self, tree: str, reports: dict[str, Report], prune: bool = False) -> None:
        """Store reports for ``tree``; ``prune`` drops every other tree's folder (a warm-up after a commit)."""
        here = self.folder / tree
        try:
            here.mkdir(parents=True, exist_ok=True)
            os.utime(here)
            for key, report in reports.items():
                scratch = here / f".{key}.{os.getpid()}"
                scratch.write_text(json.dumps(report.to_json()), encoding="utf-8")
                os.replace(scratch, here / key)
            others = sorted(
                (p for p in self.folder.iterdir() if p.is_dir() and p.name != tree),
                key=lambda p: p.stat().st_mtime,
                reverse=True,
            )
        except OSError:
            return  # a read-only repository: the states are found again next time
        for old in others if prune else others[self.KEEP - 1 :]:
            shutil.rmtree(old, ignore_errors=True)


def states(
    root: Path, state_dir: Path | None, memories: Sequence[dict[str, Any]], rev: str = "HEAD", prune: bool = False
) -> dict[int, Report]:
    """:func:`check`, through the cache in ``state_dir`` (None: no cache): only memories whose (citations,
    tree) were never checked cost any git work (and finding HEAD's tree, when its commit is packed)."""
    keys = {index: key for index, memory in enumerate(memories) if (key := cache_key(memory))}
    if not keys:
        return {}
    # state_dir is <git dir>/mtlgit (Repo.worktree_state_dir): HEAD is read from that git dir's files.
    tree = head_tree(root, rev, state_dir.parent if state_dir is not None else None)
    if tree is None:
        return {}
    cache = StateCache(state_dir / CACHE_NAME) if state_dir is not None else None
    cached = cache.get(tree, sorted(set(keys.values()))) if cache else {}
    reports = {index: cached[key] for index, key in keys.items() if key in cached}
    todo = [index for index in keys if index not in reports]
    new: dict[int, Report] = {}
    if todo:
        fresh = check(root, [memories[i] for i in todo], rev)
        new = {todo[position]: report for position, report in fresh.items()}
        reports.update(new)
    if cache is not None and (new or prune):
        cache.put(tree, {keys[i]: r for i, r in new.items()}, prune)
    return reports


def warm(repo: Any, snapshot: Any) -> int:
    """Check every citing memory of an index snapshot against HEAD and keep the states (the refresh hooks
    call this after a commit or checkout, so the next recall finds them). Returns how many were checked."""
    records = [r for r in snapshot.records(range(snapshot.n_docs)) if cites_of(r)]
    return len(states(repo.root, repo.worktree_state_dir, records, prune=True))


# --- checking citations when they are written ----------------------------------------------------------------


def verify(root: Path, memories: Sequence[dict[str, Any]]) -> dict[int, list[tuple[int, str]]]:
    """Index -> [(position in source.cites, what is wrong)] for each citation that does not hold at its own
    recorded commit: the path is not a file there, the symbol is not defined in it, or the lines run past its
    end. A commit this repository does not have is not checked (learned elsewhere). Two git calls in all."""
    plans = [(index, *cited) for index, memory in enumerate(memories) if (cited := cites_of(memory))]
    names = []
    for _index, commit, cites in plans:
        names.append(f"{commit}^{{commit}}")
        names += [f"{commit}:{cite.path}" for cite in cites]
    answers = iter(_batch_check(root, names))
    rows = [(index, commit, next(answers), [(c, next(answers)) for c in cites]) for index, commit, cites in plans]
    contents = read_blobs(root, {b for *_, pairs in rows for c, b in pairs if b and (c.symbol or c.lines)})
    found: dict[int, list[tuple[int, str]]] = {}
    for index, commit, commit_id, pairs in rows:
        if not commit_id:
            continue
        for position, (cite, blob) in enumerate(pairs):
            problem = None
            if not blob:
                problem = f"'{cite.path}' is not a file at {commit[:10]}: fix the path, or cite the commit that has it"
            elif cite.symbol and find_symbol(cite.path, _text_lines(contents.get(blob, b"")), cite.symbol) is None:
                problem = (
                    f"'{cite.symbol}' is not defined in {cite.path} at {commit[:10]}: cite the function or class "
                    "name as written in its definition, or cite lines instead"
                )
            elif cite.lines and cite.lines[1] > len(_text_lines(contents.get(blob, b""))):
                total = len(_text_lines(contents.get(blob, b"")))
                problem = f"{cite.label} runs past the end of the file ({total} lines at {commit[:10]}): fix the range"
            if problem:
                found.setdefault(index, []).append((position, problem))
    return found


def cite_line(text: str, position: int) -> int:
    """1-based line of a memory file's front matter holding its citation number ``position`` (0-based) of
    ``source.cites``: where lint points (the ``cites:`` line for a flow list, 1 when there is none)."""
    lines = text.split("\n")
    for number, line in enumerate(lines[:400]):
        if not re.match(r"^[ \t]+cites[ \t]*:", line):
            continue
        if line.split(":", 1)[1].strip():
            return number + 1
        base = len(line) - len(line.lstrip())
        items: list[tuple[int, int]] = []  # (indent, line number) of each item
        for index in range(number + 1, len(lines)):
            body = lines[index].lstrip()
            indent = len(lines[index]) - len(body)
            if body and (indent < base or (indent == base and not body.startswith("-"))):
                break  # the next key: the list ended
            if body.startswith("-") and (not items or indent == items[0][0]):
                items.append((indent, index + 1))
        return items[position][1] if position < len(items) else number + 1
    return 1


def with_commit(root: Path, source: dict[str, Any]) -> dict[str, Any]:
    """``source`` with ``commit`` set to HEAD when it cites code but names no commit: a citation means the code
    as it is now."""
    if source.get("cites") and not source.get("commit"):
        out = _git(root, ["rev-parse", "--verify", "-q", "HEAD^{commit}"])
        if out:
            return {**source, "commit": out.decode().strip()}
    return source


def prepare_items(root: Path, items: list[Any]) -> None:
    """Move the ``cites`` of JSON items (as `mtlgit prompt extract` asks for them) into ``source.cites``, and
    record HEAD as their commit when the item names none."""
    for item in items:
        given = item.get("source", {}) if isinstance(item, dict) else None
        if not isinstance(given, dict) or ("cites" not in item and "cites" not in given):
            continue  # a source that is not a mapping is rejected with its reason by the intake
        cites = item.pop("cites") if "cites" in item else given["cites"]
        item["source"] = with_commit(root, {**given, "cites": cites})
