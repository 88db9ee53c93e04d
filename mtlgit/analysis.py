"""Text analysis for the lexical half of the index: the same function for memories and for queries.

Lower-cased word tokens (letters and digits; ``snake_case`` and ``camelCase`` identifiers also split into
their parts), English stop words removed, Snowball-stemmed with PyStemmer (a C extension: ~1 ms to import).
"""

from __future__ import annotations

import re
from functools import lru_cache

ANALYZER_VERSION = "a3"
MAX_TOKEN_CHARS = 40

# bm25s's English list plus pronouns and auxiliaries that carry no topic in agent-written text.
STOP_WORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there these
    they this to was will with i me my we our you your he she him her its them what which who whom when where
    why how do does did done doing have has had having been being am were would should could can may might
    must shall so than too very just also any all some each both few more most other own same only out over
    under up down off about above below again further once here from""".split()
)

_WORD = re.compile(r"[^\W_]+")
# Hyphenated compounds keep a joined form too: "read-only" is not "read" plus a stop word, nor is
# "off-by-one" its parts ("readonly", "offbyone" are then terms of their own).
_COMPOUND = re.compile(r"(?<![^\W_-])[^\W_]++(?:-[^\W_]++)+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# Where _CAMEL can split a word: text without any of these has no identifier to split.
_CAMEL_SEEN = re.compile(r"[a-z0-9][A-Z]|[A-Z][A-Z][a-z]")
# Stems already computed (a build meets each word many times): kept up to a bound, then started again.
_STEMS: dict[str, str] = {}
_MAX_STEMS = 500_000


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Lower-cased word tokens before stemming; identifiers add their parts after themselves."""
    compounds = _COMPOUND.findall(text) if "-" in text else []  # half the texts have no hyphen: ~2x faster
    out: list[str] = [c.replace("-", "").lower() for c in compounds if len(c) <= MAX_TOKEN_CHARS]
    if _CAMEL_SEEN.search(text) is None:
        # No identifier to split: the words lower-cased (for ASCII, lower-casing keeps every word's span).
        out += _WORD.findall(text.lower()) if text.isascii() else [part.lower() for part in _WORD.findall(text)]
        return [w for w in out if 1 < len(w) <= MAX_TOKEN_CHARS and w not in STOP_WORDS]
    for part in _WORD.findall(text):
        lower = part.lower()
        out.append(lower)
        if part != lower and not part.isupper() and not part.istitle():
            sub = _CAMEL.split(part)
            if len(sub) > 1:
                out.extend(s.lower() for s in sub)
    return [w for w in out if 1 < len(w) <= MAX_TOKEN_CHARS and w not in STOP_WORDS]


def analyze(text: str) -> list[str]:
    """The stemmed terms of ``text``, in order, repeats kept (they are the term frequencies)."""
    tokens = words(text)
    if not tokens:
        return []
    stems = _STEMS
    try:
        return list(map(stems.__getitem__, tokens))
    except KeyError:
        if len(stems) > _MAX_STEMS:
            stems.clear()
        new = list(set(tokens).difference(stems))
        stems.update(zip(new, _stemmer().stemWords(new), strict=True))
        return list(map(stems.__getitem__, tokens))
