"""How task-specific a memory is: a score from 0 (abstract, transferable) to 1 (tied to one task).

Memory Transfer Learning found that abstract insights transfer across tasks while concrete details
(file names, exact strings, commands of one run) anchor an agent in the wrong domain. The score counts the
concrete things a text mentions, each kind with a weight, per 100 words, and maps the sum to 0..1:

    specificity = 1 - exp(-weighted_count_per_100_words / 12)

| kind | weight | examples |
|---|---|---|
| file path (two or more slashes) or file name with an extension | 3 | ``django/db/models``, ``evaluate.py`` |
| line reference | 3 | ``line 42``, ``query.py:118`` |
| commit hash or other long hex id | 3 | ``4f2c1a9``, ``e3b0c44298fc`` |
| issue or task id | 3 | ``#1234``, ``JIRA-881``, ``django__django-16032`` |
| URL | 2 | ``https://...`` |
| code identifier | 1 | ``snake_case_name``, ``CamelCase``, ``obj.method()`` |
| command with flags | 1 | ``ls -la data``, ``nl -ba`` |
| long inline code or code block (over 40 characters) | 2 each | |
| quoted literal string | 1 | ``"expected 3 rows"`` |

An insight scoring above 0.5 gets a warning with a hint (``--strict`` makes it an error); workflows,
summaries and trajectories are allowed to be concrete. A short generic command (an inline ``python -``
here-doc) is not penalised much: it is the point of some insights.

The description is scored apart, as ``when``: it names the situations in which the lesson applies in the
words a task uses (``TabError``, "missing separator" from make, ``package.json``, ``git diff --stat``), and
those words are what lets recall find the memory from a task's text. There only the kinds that tie a text
to one task count -- a file path with a folder, a line reference, a commit hash, an issue id, a URL -- with
the weights above. The density stays per 100 words of the lesson (title and content), so a long list of
situations neither costs the memory nor hides a lesson that names a task's files.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

THRESHOLD = 0.5
SCALE = 12.0

_EXTENSIONS = (
    "py|pyi|js|jsx|ts|tsx|go|rs|java|kt|c|h|cc|cpp|hpp|cs|rb|php|swift|m|scala|sh|bash|zsh|ps1|json|ya?ml|toml|ini|"
    "cfg|conf|lock|txt|csv|tsv|md|rst|html|css|scss|sql|xml|proto|ipynb|env|dockerfile|gradle|mk"
)
# Each pattern is tried only on the words that could match it (see _candidates): a scan of whole texts with
# these patterns costs ~300 us a memory, the word screen ~30.
_WORD_PATTERNS: tuple[tuple[str, float, re.Pattern[str]], ...] = (
    ("path", 3.0, re.compile(rf"(?:\.{{0,2}}/)?(?:[\w.-]+/){{2,}}[\w.-]+|[\w/.-]*[\w-]\.(?:{_EXTENSIONS})(?::\d+)?")),
    ("hash", 3.0, re.compile(r"(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}")),
    ("issue", 3.0, re.compile(r"#\d+|[A-Z][A-Z0-9]+-\d+|\w+__\w+-\d+")),
    ("url", 2.0, re.compile(r"(?:https?|ftp|file)://\S+")),
    ("identifier", 1.0, re.compile(r"[a-z]+(?:_[a-z0-9]+)+|[a-z]+[A-Z]\w*|[A-Z][a-z]+[A-Z]\w*|\w+(?:\.\w+)*\(\)")),
)
_TEXT_PATTERNS: tuple[tuple[str, float, re.Pattern[str]], ...] = (
    ("line", 3.0, re.compile(r"\blines?\s+\d+\b|(?<=\w)\:\d+\b", re.IGNORECASE)),
    ("command", 1.0, re.compile(r"(?:^|[\s`;&|(])[a-z][\w.-]*(?:\s+-{1,2}[A-Za-z][\w-]*)+")),
    ("literal", 1.0, re.compile(r"\"[^\"\n]{3,}\"|'[^'\n]{3,}'")),
)
_STRIP = "`'\"[]{}<>,;!?"


def _candidates(word: str) -> tuple[str, ...]:
    """Which word patterns could match ``word`` (cheap string tests before any regular expression)."""
    if word.isalpha() and (word.islower() or word.istitle() or word.isupper()):
        return ()  # a plain word: nearly all of them
    digit = _DIGIT.search(word) is not None
    kinds = []
    if "/" in word or ("." in word and _DOT_LETTER.search(word)):
        kinds.append("path")
    if digit and len(word) >= 7:
        kinds.append("hash")
    if "#" in word or "__" in word or (digit and "-" in word):
        kinds.append("issue")
    if "://" in word:
        kinds.append("url")
    if "_" in word or "()" in word or (not word.islower() and not word.isupper() and not word.istitle()):
        kinds.append("identifier")
    return tuple(kinds)


_DIGIT = re.compile(r"\d")
_DOT_LETTER = re.compile(r"\.[A-Za-z]")


_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)


@dataclass
class Specificity:
    score: float
    words: int
    found: dict[str, list[str]] = field(default_factory=dict)

    @property
    def too_specific(self) -> bool:
        return self.score > THRESHOLD

    def hint(self, values: bool = True) -> str:
        """What to change; ``values=False`` names the kinds found but quotes none (the text holds a secret)."""
        kinds = ", ".join(
            f"{kind} ({', '.join(dict.fromkeys(items))[:60]})" if values else kind for kind, items in self.found.items()
        )
        return (
            f"reads as task-specific (score {self.score:.2f} > {THRESHOLD}): it names {kinds}. Say what to do "
            "in general terms -- the lesson that would help on a different task -- and drop names of files, "
            "lines, commits and issues"
        )


def specificity(text: str, when: str = "") -> Specificity:
    """Score ``text`` (the lesson: title and content) for how tied it is to one task; ``when`` (the
    description) adds only the kinds that tie it to one task (see the module's docstring)."""
    words = max(len(re.findall(r"\w+", text)), 1)
    found: dict[str, list[str]] = {}
    weighted = _scan(text, found)
    if when:
        weighted += _scan(when, found, tied_only=True)
    density = weighted * 100.0 / max(words, 20)
    return Specificity(round(1.0 - math.exp(-density / SCALE), 3), words, found)


# Concrete words a "when" may use freely: they name a kind of situation, met in many tasks.
_SITUATION_KINDS = frozenset({"identifier", "command", "literal", "long code"})
# Paths under these roots name a place every machine has (``/tmp``, ``/dev/null``, ``~/.bashrc``), not a task's file.
_SYSTEM_PATH = re.compile(r"~/|/(?:tmp|dev|etc|usr|bin|sbin|proc|sys|var|opt|lib)(?:/|$)")


def _ties_to_a_task(kind: str, item: str) -> bool:
    if kind in _SITUATION_KINDS:
        return False
    if kind == "path":  # a bare file name (``Makefile.mk``, ``package.json``) is a kind of file
        return "/" in item.strip("./") and not _SYSTEM_PATH.match(item)
    return True


def _scan(text: str, found: dict[str, list[str]], tied_only: bool = False) -> float:
    """The weighted count of concrete things in ``text``, each recorded in ``found`` under its kind."""
    weighted = 0.0

    def record(kind: str, item: str, weight: float) -> None:
        nonlocal weighted
        if tied_only and not _ties_to_a_task(kind, item):
            return
        found.setdefault(kind, []).append(item)
        weighted += weight

    for match in _CODE.finditer(text):
        code = match.group(0).strip("`")
        if len(code) > 40:
            record("long code", code[:30] + "...", 2.0)
    patterns = {kind: (weight, pattern) for kind, weight, pattern in _WORD_PATTERNS}
    for raw in text.split():
        word = raw.strip(_STRIP + ".:")
        if word.startswith("(") and ")" not in word:
            word = word[1:]
        if word.endswith(")") and "(" not in word:
            word = word[:-1].rstrip(".:")
        if not word:
            continue
        for kind in _candidates(word):
            weight, pattern = patterns[kind]
            if pattern.fullmatch(word):
                record(kind, word, weight)
                break
    for kind, weight, pattern in _TEXT_PATTERNS:
        if kind == "line" and "line" not in text.lower() and ":" not in text:
            continue
        if kind == "command" and " -" not in text:
            continue
        hits = [m.group(0).strip() for m in pattern.finditer(text)]
        if kind == "literal":
            hits = [h for h in hits if not re.fullmatch(r"['\"][\w-]+['\"]", h)]
        for hit in hits:
            record(kind, hit, weight)
    return weighted
