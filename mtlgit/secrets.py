"""Secrets in memories: agents paste environment output into what they learn.

Detection is detect-secrets' (its plugins and false-positive filters, the same code as its CLI uses on a
file, run here on text in memory), plus patterns for token formats it does not know (OpenAI, Anthropic,
Hugging Face, Google, GitLab...). A cheap regular-expression screen runs first, so the detector (~0.25 s to
import) is loaded only for text that looks like it might hold a secret.

A memory with a secret is an error wherever it is met: ``add`` and ``add --json`` refuse it before writing,
``import`` skips it, ``lint`` and the pre-commit hook report it, and the index leaves it out. Messages name the
line and the kind of secret, never its value. A false positive is allowed by putting
``pragma: allowlist secret`` on its line (detect-secrets' own marker).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ALLOW = "pragma: allowlist secret"

_KEYWORDS = ("pass", "pwd", "secret", "token", "key", "auth", "credential")
_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]{0,40}://[^/\s:@]+:[^/\s@]{3,}@")
_ALNUM = re.compile(r"[A-Za-z0-9]+")
# Prefixes of issued tokens (GitHub, GitLab, Slack, Stripe, OpenAI/Anthropic, Hugging Face, Google, npm, PyPI,
# SendGrid, AWS, JWT).
_PREFIXES = (
    "gh",
    "github_pat_",
    "glpat-",
    "xox",
    "sk_live",
    "rk_live",
    "sk-",
    "hf_",
    "AIza",
    "npm_",
    "pypi-",
    "SG.",
    "AKIA",
    "ASIA",
    "eyJ",
)
_STRIP = "\"'`()[]{}<>,;"
# A ULID (a memory id, e.g. in ``superseded_by``) is an identifier, not a secret, but its random part can
# spell a key prefix (``...ACCA...`` is an AWS key id to the detector): ids are blanked before the scan.
_ULID = re.compile(r"(?<![0-9A-Za-z])[0-7][0-9A-HJKMNP-TV-Z]{25}(?![0-9A-Za-z])")


def _looks_random(value: str) -> bool:
    """A run of 16+ letters and digits, mixing both, with high entropy: how keys and tokens look,
    and how words, identifiers and scientific names (short runs joined by - or /) do not."""
    for run in _ALNUM.findall(value):
        mixed = any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
        if len(run) >= 16 and mixed and _entropy(run) >= 3.3:
            return True
    return False


_ASSIGNED_VALUE = re.compile(r"[\w.-]{0,20}[\"']?\s*[:=]\s*[\"']?([^\s\"'`,;]{8,})")


def _screen(text: str) -> bool:
    """Could ``text`` hold a secret? A quick look: random-looking long words (keys, tokens, encoded blobs), URLs
    with a password, PEM headers, non-word values assigned to secret-sounding names. Plain prose, scientific
    or technical, does not pass, so the detector is not even loaded for it."""
    if "-----BEGIN" in text or ("://" in text and "@" in text and _URL_PASSWORD.search(text)):
        return True
    for word in text.split():
        if len(word) >= 16 and word.strip(_STRIP).startswith(_PREFIXES):
            return True
        if len(word) >= 16:
            value = word.strip(_STRIP).rsplit("=", 1)[-1].strip(_STRIP)
            if _looks_random(value):
                return True
    lower = text.lower()
    for keyword in _KEYWORDS:
        at = lower.find(keyword)
        while at != -1:
            match = _ASSIGNED_VALUE.match(text, at + len(keyword))
            if match and not match.group(1).isalpha():
                return True
            at = lower.find(keyword, at + 1)
    return False


# Token formats detect-secrets 1.5 does not know, by their documented prefixes.
_EXTRA: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("OpenAI API key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z]{30,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("GitLab token", re.compile(r"\bglpat-[0-9A-Za-z_-]{20}")),
    ("GitHub token", re.compile(r"\bgithub_pat_\w{22,}")),
    ("password in a URL", _URL_PASSWORD),
)
# An assignment of a long random-looking value to a secret-sounding name, e.g. API_TOKEN=3f9a...
_ASSIGNMENT = re.compile(
    r"(?i)(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key|credential)\w{0,64}"
    r"[\"']?\s*[:=]\s*[\"']?([^\s\"'`,;]{12,})"
)


@dataclass(frozen=True)
class Finding:
    line: int
    kind: str

    def describe(self) -> str:
        return f"a {self.kind} on line {self.line}" if self.line else f"a {self.kind}"


def _entropy(value: str) -> float:
    counts: dict[str, int] = {}
    for char in value:
        counts[char] = counts.get(char, 0) + 1
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


@lru_cache(maxsize=1)
def _activate_detector() -> None:
    """Enter detect-secrets' default settings once per process (entering them costs ~15 ms each time)."""
    import atexit

    from detect_secrets.settings import default_settings

    context = default_settings()
    context.__enter__()
    atexit.register(context.__exit__, None, None, None)


def _detect_secrets(lines: list[str]) -> list[Finding]:
    """detect-secrets on in-memory lines, as its file scan does it: plain lines, then its transformed views."""
    _activate_detector()
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.transformers import get_transformed_file

    class _Named(io.StringIO):
        name = "memory.md"

    text = "\n".join(lines) + "\n"
    views = [lines]
    for eager in (False, True):
        transformed = get_transformed_file(_Named(text), use_eager_transformers=eager)  # type: ignore[arg-type]
        if transformed:
            views.append(transformed)
    found: set[Finding] = set()
    for view in views:
        for secret in _process_line_based_plugins(list(enumerate(view, 1)), "memory.md"):
            found.add(Finding(secret.line_number, secret.type))
    return sorted(found, key=lambda f: (f.line, f.kind))


def find_secrets(text: str, extra: Any = None, first_line: int = 1) -> list[Finding]:
    """Every likely secret in ``text`` (and in the strings of ``extra``, e.g. a ``source`` mapping).

    :param first_line: the file line ``text`` starts on, so findings name file lines.
    """
    pieces = [text, *_strings(extra)]
    joined = _ULID.sub("0" * 26, "\n".join(pieces))
    if not _screen(joined):
        return []
    lines = joined.split("\n")
    allowed = {n for n, line in enumerate(lines, 1) if ALLOW in line}
    found: set[Finding] = set()
    for number, line in enumerate(lines, 1):
        if number in allowed:
            continue
        for kind, pattern in _EXTRA:
            if pattern.search(line):
                found.add(Finding(number, kind))
        for match in _ASSIGNMENT.finditer(line):
            value = match.group(1)
            if _entropy(value) >= 3.0 and re.search(r"\d", value) and re.search(r"[A-Za-z]", value):
                found.add(Finding(number, "secret assigned to a variable"))
    for finding in _detect_secrets(lines):
        if finding.line not in allowed:
            found.add(finding)
    text_lines = text.count("\n") + 1
    out: dict[int, Finding] = {}
    for finding in sorted(found, key=lambda f: (f.line, f.kind)):
        at = finding.line + first_line - 1 if finding.line <= text_lines else 0
        out.setdefault(at, Finding(at, finding.kind))
    return list(out.values())


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
