"""The query side of recall: what of an agent's task text each half of the index sees.

Agents send whole tasks: issue reports with tracebacks, build logs, code, problem statements. Much of that
text names no situation: stack frames, file paths, addresses, hashes, timestamps and URLs add terms that match
memories by accident and dilute the embedding, so they are left out. Each distinct term then counts once
(:func:`mtlgit.recall.bm25_scores`), and compound words ("read-only", "off-by-one") keep a joined term
(:mod:`mtlgit.analysis`, for memories and queries alike).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUERY_CHARS = 100_000

# Lines of a stack trace that locate code instead of describing a failure (Python, JS/Java/C#, Go, Rust).
_FRAME = re.compile(
    r"""^\s*(?:
        File\ "[^"]*",\ line\ \d+(?:,\ in\ \S+)?\s*$    # Python
      | Traceback\ \(most\ recent\ call\ last\):\s*$
      | at\ [\w$.<>\[\]/-]+\ ?\((?:[^()]*:\d+(?::\d+)?|Native\ Method|Unknown\ Source)\)\s*$  # JS, Java, C#
      | at\ [^\s]+:\d+(?::\d+)?\)?\s*$          # JS without a function name
      | \.\.\.\ \d+\ more\s*$                   # Java
      | goroutine\ \d+\ \[.*\]:\s*$             # Go
      | /\S+\.go:\d+(?:\ \+0x[0-9a-f]+)?\s*$
      | \d+:\ +0x[0-9a-f]+\ -\ .*$               # Rust backtrace frames
      | at\ \S+\.rs:\d+:\d+\s*$
    )""",
    re.VERBOSE,
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
# Possessive runs and a look-behind at the start keep both patterns linear on a crafted 100k-character word.
_PATH = re.compile(
    r"(?<![\w.@+~/-])(?:~|\.{1,2})?(?:/[\w.@+-]++){2,}/?"  # absolute, or from ~ or .
    r"|(?<![\w.@+/-])(?:[\w.@+-]++/)++[\w@+-]*+\.[\w.@+-]*+"  # relative, to a file: "read/write" is no path
)
_FRAME_CODE_INDENT = 4


@dataclass(frozen=True)
class Query:
    """A task's text as each half of the index sees it."""

    text: str
    lexical: str
    dense: str


def prepare(text: str) -> Query:
    """Keep the words of ``text`` that can name a situation: stack frames and the code lines they quote, paths
    but their last part, addresses, hashes, ids, timestamps and URLs are left out."""
    text = text[:MAX_QUERY_CHARS]
    kept: list[str] = []
    after_frame = False
    for raw in text.splitlines():
        if after_frame:
            after_frame = False
            if raw.startswith(" " * _FRAME_CODE_INDENT):
                continue  # the source line a Python frame quotes
        if _FRAME.match(raw):
            after_frame = raw.lstrip().startswith("File ")
            continue
        line = _clean(raw)
        if line.strip():
            kept.append(line)
    body = "\n".join(kept)
    return Query(text, body, body)


def _clean(line: str) -> str:
    line = _NOISE.sub(" ", line)
    return _PATH.sub(lambda m: " " + m.group(0).rstrip("/").rsplit("/", 1)[-1] + " ", line)
