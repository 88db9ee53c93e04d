"""The query side of recall: what of an agent's task text each half of the index sees.

Agents send whole tasks: issue reports with tracebacks, build logs, code, problem statements. Most of that
text names no situation: stack frames, file paths, addresses, timestamps and numbers add terms that match
memories by accident and dilute the embedding. The lines that do name the situation -- the exception or error
line, the first line of an issue -- are kept and counted twice. Compound words ("read-only", "off-by-one")
are handled by :mod:`mtlgit.analysis` for both memories and queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUERY_CHARS = 100_000

# Lines of a stack trace that locate code instead of describing a failure (Python, JS/Java/C#, Go, Rust).
_FRAME = re.compile(
    r"""^\s*(?:
        File\ "[^"]*",\ line\ \d+.*            # Python
      | Traceback\ \(most\ recent\ call\ last\):
      | at\ [\w$.<>\[\]/-]+\ ?\(.*\)\s*$          # JS, Java, C#
      | at\ [^\s]+:\d+(?::\d+)?\)?\s*$          # JS without a function name
      | \.\.\.\ \d+\ more\s*$                   # Java
      | goroutine\ \d+\ \[.*\]:\s*$             # Go
      | /\S+\.go:\d+(?:\ \+0x[0-9a-f]+)?\s*$
      | \d+:\ +0x[0-9a-f]+\ -\ .*$               # Rust backtrace frames
      | at\ \S+\.rs:\d+:\d+\s*$
    )""",
    re.VERBOSE,
)
# The line that says what went wrong: "ValueError: ...", "error[E0382]: ...", "npm ERR! ...", "FATAL: ...".
_FAILURE = re.compile(
    r"^\s*(?:[\w.]*(?:Error|Exception|Warning|Fault|Panic|Failure|Interrupt|Exit)\b"
    r"|error(?:\[\w+\])?:|fatal:|FATAL\b|ERROR\b|npm ERR!|panic:|thread '.*' panicked|Segmentation fault"
    r"|\S+: (?:command not found|No such file or directory|Permission denied))"
)
_NOISE = re.compile(
    r"""
      \b0x[0-9a-fA-F]+\b                                          # addresses
    | \b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}\b          # hashes
    | \b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b  # uuids
    | \b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?  # timestamps
    | \b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b
    | https?://\S+
    """,
    re.VERBOSE,
)
# A path keeps its last part: "Makefile" or "settings.py" names the situation, "/usr/lib/python3.11" does not.
_PATH = re.compile(r"(?:~|\.{1,2})?(?:/[\w.@+-]+){2,}/?|(?:[\w.@+-]+/){2,}[\w.@+-]+")
_FRAME_CODE_INDENT = 4


@dataclass(frozen=True)
class Query:
    """A task's text as each half of the index sees it."""

    text: str
    lexical: str
    dense: str


def prepare(text: str) -> Query:
    """Keep the words of ``text`` that can name a situation; count the failure lines and the first line twice."""
    text = text[:MAX_QUERY_CHARS]
    kept: list[str] = []
    emphasis: list[str] = []
    skip_code_under: int | None = None
    for raw in text.splitlines():
        indent = len(raw) - len(raw.lstrip())
        if skip_code_under is not None:
            skip_code_under = None
            if raw.strip() and indent > _FRAME_CODE_INDENT - 2 and not _FAILURE.match(raw):
                continue  # the source line a Python frame quotes
        if _FRAME.match(raw):
            skip_code_under = indent if raw.lstrip().startswith("File ") else None
            continue
        line = _clean(raw)
        if not line.strip():
            continue
        kept.append(line)
        if _FAILURE.match(raw):
            emphasis.append(line)
    if kept:
        emphasis.insert(0, kept[0])
    body = "\n".join(kept + emphasis)
    return Query(text, body, body)


def _clean(line: str) -> str:
    line = _NOISE.sub(" ", line)
    return _PATH.sub(lambda m: " " + m.group(0).rstrip("/").rsplit("/", 1)[-1] + " ", line)
