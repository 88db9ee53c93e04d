"""Text analysis for the lexical half of the index: the same function for memories and for queries.

Lower-cased word tokens (letters and digits; ``snake_case`` and ``camelCase`` identifiers also split into
their parts), English stop words removed, Snowball-stemmed with PyStemmer (a C extension: ~1 ms to import).
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import chain

# a4: a `created` stamp in other digits than ASCII's is text, as YAML reads it (a3 read it as a date)
ANALYZER_VERSION = "a4"
MAX_TOKEN_CHARS = 40

# bm25s's English list plus pronouns and auxiliaries that carry no topic in agent-written text.
STOP_WORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there these
    they this to was will with i me my we our you your he she him her its them what which who whom when where
    why how do does did done doing have has had having been being am were would should could can may might
    must shall so than too very just also any all some each both few more most other own same only out over
    under up down off about above below again further once here from""".split()
)

# Hyphenated compounds keep a joined form too: "read-only" is not "read" plus a stop word, nor is
# "off-by-one" its parts ("readonly", "offbyone" are then terms of their own). A chain is a word, or words
# joined by single hyphens: a compound when it holds a hyphen.
_CHAIN = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# ASCII text is split by a translation and str.split(), ~2x faster than a regular expression: every ASCII
# character but a letter, a digit or a hyphen becomes a space.
_ASCII_SPLIT = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum() and chr(c) != "-"})
# Caches bounded by clearing when full: a build meets each word many times.
_MAX_CACHED = 500_000
_MAX_CACHED_CHARS = 100  # a longer raw word (a hash, a blob of base64) is rare: worked out again, never kept


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    # Its own cache of stems costs ~4 us a new word once full (~1 us without); _Terms keeps every stem already.
    stemmer.maxCacheSize = 0
    return stemmer


def _tokens_of(raw: str) -> tuple[str, ...]:
    """The lower-cased tokens of one raw word (its parts after it, for an identifier) or of one hyphenated
    compound (its joined form), stop words and bad lengths left out."""
    if "-" in raw:
        lower = raw.replace("-", "").lower() if len(raw) <= MAX_TOKEN_CHARS else ""
    else:
        lower = raw.lower()
        if raw != lower and not raw.isupper() and not raw.istitle():
            sub = _CAMEL.split(raw)
            if len(sub) > 1:
                found = [lower, *(s.lower() for s in sub)]
                return tuple(w for w in found if 1 < len(w) <= MAX_TOKEN_CHARS and w not in STOP_WORDS)
    return (lower,) if 1 < len(lower) <= MAX_TOKEN_CHARS and lower not in STOP_WORDS else ()


class _Tokens(dict[str, tuple[str, ...]]):
    """:func:`_tokens_of` each raw word or compound, worked out once per distinct one."""

    def __missing__(self, raw: str) -> tuple[str, ...]:
        if len(raw) > _MAX_CACHED_CHARS:
            return _tokens_of(raw)
        if len(self) > _MAX_CACHED:
            self.clear()
        tokens = self[raw] = _tokens_of(raw)
        return tokens


class _Terms(dict[str, tuple[str, ...]]):
    """The stemmed terms of each raw word or compound (see :func:`_tokens_of`), worked out once per distinct one."""

    def __missing__(self, raw: str) -> tuple[str, ...]:
        if len(self) > _MAX_CACHED:
            self.clear()
        tokens = _tokens_of(raw)
        terms = (_stemmer().stemWord(tokens[0]),) if len(tokens) == 1 else tuple(_stemmer().stemWords(tokens))
        if len(raw) <= _MAX_CACHED_CHARS:
            self[raw] = terms
        return terms


_TOKENS = _Tokens()
_TERMS = _Terms()


def _raw_words(text: str) -> tuple[list[str], list[str]]:
    """The hyphenated compounds of ``text`` and its words, as written, in order (a word may come as "")."""
    if text.isascii():
        chains = text.translate(_ASCII_SPLIT).split()
        if "-" not in text:
            return [], chains
        # A piece holding hyphens may start or end with one, or hold two in a row: its compounds are its chains.
        compounds = [c for piece in chains if "-" in piece for c in _CHAIN.findall(piece) if "-" in c]
    else:
        chains = _CHAIN.findall(text)
        if "-" not in text:
            return [], chains
        compounds = [c for c in chains if "-" in c]
    return compounds, "-".join(chains).split("-")


def words(text: str) -> list[str]:
    """Lower-cased word tokens before stemming: the joined forms of hyphenated compounds first, then every word,
    identifiers with their parts after themselves."""
    compounds, raw = _raw_words(text)
    get = _TOKENS.__getitem__
    return list(chain(chain.from_iterable(map(get, compounds)), chain.from_iterable(map(get, raw))))


def analyze(text: str) -> list[str]:
    """The stemmed terms of ``text``, in order, repeats kept (they are the term frequencies)."""
    compounds, raw = _raw_words(text)
    get = _TERMS.__getitem__
    return list(chain(chain.from_iterable(map(get, compounds)), chain.from_iterable(map(get, raw))))
