"""Secrets in memories: agents paste environment output into what they learn.

Detection is three layers, each run on text in memory:

- betterleaks' rules (the gitleaks rule set, maintained upstream: token formats of 200+ services and the generic
  ``password = ...`` / ``api_key = ...`` / ``user:pass@host`` rules), its matches of the generic rules kept only
  when the value is not a placeholder (``DB_PASS``, ``${PASSWORD}``, ``mysecretpassword``);
- detect-secrets' token-format plugins and high-entropy strings (its keyword and basic-auth plugins are left out:
  the generic rules above do their work with fewer false alarms, e.g. on zod schemas);
- a few shapes neither knows: a PEM key whose header is split or missing, a password in a Go DSN or given to
  a command (``mysql -pX``, ``sshpass -p X``, ``curl -u user:X``, ``--password=X``, ``PGPASSWORD=X``), a
  random-looking value right after a secret-sounding word in prose (an AWS secret key), and some issued-token
  prefixes.

All three read the text as a reader sees it: full-width forms in NFKC and Greek and Cyrillic look-alikes as the
Latin letters they pass for (``pаssword`` with a Cyrillic а), for the scan only.

benchmarks/bench_secrets.py measures the choice. A cheap screen runs first, so the detectors (~0.5 s to load)
are loaded only for text that could hold a secret.

A memory with a secret is an error wherever it is met: ``add`` and ``add --items`` refuse it before writing,
``import`` skips it, ``lint`` and the pre-commit hook report it, and the index leaves it out. Messages name the
line and the kind of secret, never its value. A false positive is allowed by putting
``pragma: allowlist secret`` on its line (detect-secrets' own marker).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ALLOW = "pragma: allowlist secret"

_KEYWORDS = ("pass", "pwd", "secret", "token", "key", "auth", "credential", "sshpass")
_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]{0,40}://[^/\s:@]+:([^/\s@]{3,})@")
_ALNUM = re.compile(r"[A-Za-z0-9]+")
# Prefixes of issued tokens (GitHub, GitLab, Slack, Stripe, OpenAI/Anthropic, Hugging Face, Google, npm, PyPI,
# SendGrid, AWS, JWT, Shopify, DigitalOcean, Vault, Mailgun).
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
    "shp",
    "dop_v1_",
    "hvs.",
    "hvb.",
    "key-",
)
_STRIP = "\"'`()[]{}<>,;"
# A ULID (a memory id, e.g. in ``id`` or ``superseded_by``) is an identifier, not a secret, but its random part
# can spell a key prefix (``...ACCA...`` is an AWS key id to a detector): well-formed ULIDs are blanked before the
# scan, and nothing else is.
# (The look-behind comes after the first character, so that the regular expression engine can skip ahead to
# the digits 0-7: ~3x faster on a memory.)
_ULID = re.compile(r"[0-7](?<![0-9A-Za-z][0-7])[0-9A-HJKMNP-TV-Z]{25}(?![0-9A-Za-z])")


# Look-alikes of Latin letters in Greek and Cyrillic, as Unicode's confusables table (UTS #39) lists them,
# where it maps a letter to one ASCII letter (its Greek Iota and Cyrillic I, which it takes for an l, are
# folded to I), and the invisible characters that can split a word: a reader takes ``pаsswоrd`` (Cyrillic а
# and о) for ``password``, so the scan must too. Full-width forms (``＝``, ``ＡＷＳ``) are left to NFKC.
_LOOK_ALIKES = str.maketrans(
    "\u037f\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u03b1"
    "\u03b3\u03b9\u03bd\u03bf\u03c1\u03c3\u03c5\u03dc\u03f3\u03fa\u0405\u0406\u0408\u0410\u0412"
    "\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0423\u0425\u042c\u0430\u0433\u0435\u043e\u0440"
    "\u0441\u0443\u0445\u0455\u0456\u0458\u0461\u0474\u0475\u04ae\u04af\u04bb\u04bd\u04c0\u04cf\u0501"
    "\u050c\u051b\u051c\u051d",
    "JABEZHIKMNOPTYXayivopouFjMSIJABEKMHOPCTYXbareopcyxsijwVvYyheIidGqWw",
    "\u00ad\u200b\u200c\u200d\u2060\ufeff",
)

_LOOK_ALIKE = re.compile("[" + "".join(map(chr, _LOOK_ALIKES)) + "]")
_ASCII_BYTES = bytes(range(128))


def _as_read(text: str) -> str:
    """``text`` as a reader sees it, for the scan only (the user's text is never rewritten): compatibility
    forms in NFKC (full-width letters and signs) and look-alike letters as the Latin letters they pass for.
    Folded line by line, so that every line keeps its number."""
    if text.isascii():
        return text
    # Most texts that are not ASCII hold only dashes, quotes and emoji, which the fold leaves alone: its
    # characters that are not ASCII, picked out in C (~1 ns a character), say so at a tenth of the cost of
    # splitting the text into lines or of a regular expression's pass over it.
    rest = text.encode().translate(None, _ASCII_BYTES).decode()
    if unicodedata.is_normalized("NFKC", rest) and not _LOOK_ALIKE.search(rest):
        return text
    # Line by line, and only the lines that are not ASCII: translating costs ~60 ns a character of a text that
    # is not ASCII.
    lines = text.split("\n")
    changed = False
    for number, line in enumerate(lines):
        if not line.isascii():
            read = unicodedata.normalize("NFKC", line)
            if _LOOK_ALIKE.search(read):
                read = read.translate(_LOOK_ALIKES)
            if read != line:
                lines[number] = read
                changed = True
    return "\n".join(lines) if changed else text


def _looks_random(value: str) -> bool:
    """A run of 16+ letters and digits, mixing both, with high entropy: how keys and tokens look,
    and how words, identifiers and scientific names (short runs joined by - or /) do not."""
    for run in _ALNUM.findall(value):
        # ASCII letters and digits only: mixing both is being neither all letters nor all digits.
        if len(run) >= 16 and not run.isalpha() and not run.isdigit() and _entropy(run) >= 3.3:
            return True
    return False


_ASSIGNED_VALUE = re.compile(r"[\w.-]{0,20}[\"']?\s*(?:[:=]|\s-p\b|\s(?:is|was)\b)\s*[\"']?([^\s\"'`,;]{6,})")
_AUTH_HEADER = re.compile(r"\b(?:Basic|Bearer|Token)\s+(?=\S*\d)[A-Za-z0-9+/=._-]{12,}")
_BASE64_WORD = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")


def _screen(text: str) -> bool:
    """Could ``text`` hold a secret? A quick look: random-looking long words (keys, tokens, encoded blobs), URLs
    with a password, PEM headers, values given to secret-sounding names. Plain prose, scientific or technical,
    does not pass, so the detectors are not even loaded for it."""
    if "-----BEGIN" in text or "PRIVATE KEY" in text or "@tcp(" in text:
        return True
    if "://" in text and "@" in text and _URL_PASSWORD.search(text):
        return True
    if ("Basic" in text or "Bearer" in text or "Token" in text) and _AUTH_HEADER.search(text):
        return True
    for word in [w for w in text.split() if len(w) >= 16]:
        if word.strip(_STRIP).startswith(_PREFIXES):
            return True
        value = word.strip(_STRIP).rsplit("=", 1)[-1].strip(_STRIP)
        if _looks_random(value) or _BASE64_WORD.fullmatch(value):
            return True
    lower = text.lower()
    named = []  # a password's name with a value: PGPASSWORD=..., --password=...
    for keyword in _KEYWORDS:
        at = lower.find(keyword)
        while at != -1:
            match = _ASSIGNED_VALUE.match(text, at + len(keyword))
            if match and not match.group(1).islower():
                return True
            if match and keyword in ("pass", "pwd", "auth"):
                named.append(at)
            at = lower.find(keyword, at + 1)
    if len(lower) != len(text):  # its positions are not the text's: the names are looked for again
        return next(_command_line_passwords(text), None) is not None
    if not named and _OPTION_NEEDLE not in text:  # most texts: no need to set the search up
        return False
    return next(_command_line_passwords(text, named), None) is not None


# Shapes the rule sets below do not know, each with the group that holds the value (0: the whole match), whether
# a placeholder there (``sk-YOUR_KEY``, ``user:${PASSWORD}@``) is let through, and the strings one of which every
# match contains: a pattern runs only on the lines that hold one (a substring test costs a small part of a
# regular expression's pass over a line).
_EXTRA: tuple[tuple[str, int, bool, tuple[str, ...], re.Pattern[str]], ...] = (
    ("OpenAI API key", 0, True, ("sk-",), re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("Anthropic API key", 0, True, ("sk-ant-",), re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("Hugging Face token", 0, False, ("hf_",), re.compile(r"\bhf_[A-Za-z]{30,}")),
    ("Google API key", 0, False, ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("GitLab token", 0, False, ("glpat-",), re.compile(r"\bglpat-[0-9A-Za-z_-]{20}")),
    ("GitHub token", 0, False, ("github_pat_",), re.compile(r"\bgithub_pat_\w{22,}")),
    ("Mailgun key", 0, False, ("key-",), re.compile(r"\bkey-[0-9a-zA-Z]{32}\b")),
    ("Vault token", 0, True, ("hvs.", "hvb.", "hvr."), re.compile(r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}")),
    ("password in a URL", 1, True, ("://",), _URL_PASSWORD),
    (
        "password in a database address",
        1,
        True,
        ("@tcp(", "@udp(", "@unix("),
        re.compile(r"(?<![\w.-])[\w.-]{1,256}+:([^\s:@/'\"]{3,256})@(?:tcp|udp|unix)\("),
    ),
)
# Bounded runs: unbounded ``[A-Z ]*`` next to ``\s*`` backtracked quadratically on a line of spaces.
_SPLIT_PEM = re.compile(r"-----BEGIN[A-Z ]{0,40}[ \t\r]{0,40}\n[ \t]{0,40}[A-Z ]{0,40}PRIVATE KEY-----")
# Lines longer than this are scanned in overlapping windows, so that no pattern (ours or a library's) can cost
# more than a bounded amount per character of a crafted line; a secret is far shorter than the overlap.
_WINDOW, _OVERLAP = 2048, 256


def _windows(line: str) -> Iterator[str]:
    if len(line) <= _WINDOW:
        yield line
        return
    for start in range(0, len(line) - _OVERLAP, _WINDOW - _OVERLAP):
        yield line[start : start + _WINDOW]


# --- a password given to a command ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Takes:
    """How a command takes a password: a short option's letters (attached, ``-pSECRET``, and with ``separate``
    also as the next word) and the long options that take it as the next word; ``colon``: the value is
    ``user:password`` (alone, a user name, and the password is asked for)."""

    short: str
    separate: bool = True
    long: tuple[str, ...] = ()
    colon: bool = False


# From the tools' manuals. mysql's -p and --password take an optional value, so ``mysql -p db`` asks for the
# password and names a database; psql's, ssh's and docker run's -p are ports and pg_dump's --password only
# forces the prompt, so those are not listed. ``--password=VALUE`` is a password whatever the command.
_TAKES = (
    (("mysql", "mariadb"), _Takes("p", separate=False)),
    (("mongo",), _Takes("p", long=("--password",))),
    (("sshpass",), _Takes("p")),
    (("redis-cli",), _Takes("a", long=("--pass",))),
    (("curl",), _Takes("uU", long=("--user", "--proxy-user"), colon=True)),
    (("docker", "podman", "nerdctl", "buildah", "skopeo", "oras", "helm"), _Takes("p", long=("--password",))),
)
# (No look-behind for the start of a word: without one, the search skips to the names' first letters; the
# character before is checked after.)
_COMMAND = re.compile(
    r"(mysql\w*|mariadb[\w-]*|mongo\w*|sshpass|redis-cli|curl"
    r"|(?:docker|podman|nerdctl|buildah|skopeo|oras|helm[ \t]+registry)[ \t]+login)(?:\.exe)?(?=[ \t])"
)
# (The look-behind comes after the dashes, so that the search skips ahead to them.)
_LONG_PASSWORD = re.compile(r"--(?<![\w-]--)(?:\w{1,40}-){0,8}pass(?:word|wd)?=")
# The variables that libpq, mysql, sshpass -e and redis-cli read a password from.
_ENV_PASSWORD = re.compile(r"(?<![\w$])(?:PGPASSWORD|MYSQL_PWD|SSHPASS|REDISCLI_AUTH)=")
# One of these is in every line where a command is given a password: an option after a space (`` -p``,
# `` --user``) or a password's name (``--password=``, sshpass, PGPASSWORD, MYSQL_PWD, REDISCLI_AUTH).
_OPTION_NEEDLE = " -"
_OPTION_LETTERS = frozenset("puaU")  # the first letters of the options in _TAKES
_NAME_NEEDLES = ("pass", "PASS", "PWD", "AUTH")
# A shell word: plain characters and quoted strings; a space, an operator or a lone quote ends it.
_SHELL_WORD = re.compile(r"""(?:[^\s'"`|;&]|'[^'\n]*'|"[^"\n]*")+""")
_NEXT_WORD = re.compile(rf"[ \t]*({_SHELL_WORD.pattern})")
# How far after a command and after ``--password=`` its words are read: each match costs a bounded amount,
# however long a line of quotes or commands (a word may span quoted spaces to the end of the line).
_COMMAND_REACH, _VALUE_REACH = 512, 128
# Well-known defaults that examples use (``mysql -uroot -proot``, RabbitMQ's guest): no one's secret.
_DEFAULT_PASSWORDS = frozenset({"root", "toor", "admin", "guest", "test", "postgres", "mysql", "mongo", "redis"})


def _given_password(word: str, colon: bool = False) -> bool:
    """Does a shell word given as a password hold one? Not a reference to a variable or to a command's output
    (``"$DB_PASS"``, ``$(pass show db)``, ``%PASSWORD%``), a placeholder (``<password>``, ``***``,
    ``PASSWORD``, ``your_password``), a number as short as a port, or a well-known default."""
    value = word.replace("'", "").replace('"', "")
    if colon:
        if ":" not in value:
            return False
        value = value.split(":", 1)[1]
    if "$" in value or value.startswith("%") or is_placeholder(value):
        return False
    return not (value.isdigit() and len(value) <= 6) and value.lower() not in _DEFAULT_PASSWORDS


def _command_line_passwords(text: str, named: Iterable[int] | None = None) -> Iterator[int]:
    """The starts of the lines of ``text`` where a command is given a password: ``mysql -pSECRET``,
    ``sshpass -p SECRET``, ``curl -u user:SECRET``, ``--password=SECRET``, ``PGPASSWORD=SECRET psql``. Only the
    lines with an option or a password's name are read, each once (a pass of ``str.find`` over a text costs a
    small part of a regular expression's).

    :param named: where a password's name is followed by a value, when the caller has looked already.
    """
    if named is None:
        named = [at for needle in _NAME_NEEDLES for at in _find_all(text, needle)]
    read: set[int] = set()
    for at in itertools.chain(_options(text), named):
        start = text.rfind("\n", 0, at) + 1
        if start not in read:
            read.add(start)
            end = text.find("\n", at)
            end = len(text) if end == -1 else end
            if _gives_password(text, start, end):
                yield start


def _options(text: str) -> Iterator[int]:
    """Where an option that can take a password follows a space: ``-p -u -a -U``, ``--password --pass --user
    --proxy-user`` (not a list's bullet, ``-m``, ``--save-dev``...)."""
    for at in _find_all(text, _OPTION_NEEDLE):
        letter = text[at + 3 : at + 4] if text[at + 2 : at + 3] == "-" else text[at + 2 : at + 3]
        if letter in _OPTION_LETTERS:
            yield at


def _find_all(text: str, needle: str) -> Iterator[int]:
    at = text.find(needle)
    while at != -1:
        yield at
        at = text.find(needle, at + 1)


def _gives_password(text: str, start: int, end: int) -> bool:
    """Is a command given a password in the line ``text[start:end]``?"""
    if text.find("=", start, end) != -1:
        for pattern in (_LONG_PASSWORD, _ENV_PASSWORD):
            for match in pattern.finditer(text, start, end):
                value = _SHELL_WORD.match(text, match.end(), min(end, match.end() + _VALUE_REACH))
                if value and _given_password(value.group()):
                    return True
    if text.find(_OPTION_NEEDLE, start, end) == -1:
        return False
    commands = [
        match
        for match in _COMMAND.finditer(text, start, end)
        if match.start() == start or not (text[match.start() - 1].isalnum() or text[match.start() - 1] in "_-")
    ]
    for number, match in enumerate(commands):
        takes = next(takes for names, takes in _TAKES if match.group(1).startswith(names))
        words: list[str] = []
        at = match.end()
        # The command's next words, up to the end of the command: its options are its first words, and another
        # command starts a new one (so that a line of commands is read once, not once a command).
        stop = min(at + _COMMAND_REACH, commands[number + 1].start() if number + 1 < len(commands) else end)
        while len(words) < 24:
            found = _NEXT_WORD.match(text, at, stop)
            if not found:
                break
            words.append(found.group(1))
            at = found.end()
        for index, word in enumerate(words):
            following = words[index + 1] if index + 1 < len(words) else ""
            if word in takes.long or (len(word) == 2 and word[0] == "-" and word[1] in takes.short):
                # A lower-case word after the option is prose about it ("docker login -p flag"), not a password.
                prose = following.isalpha() and following.islower()
                given = following if takes.separate and not following.startswith("-") and not prose else ""
            elif len(word) > 2 and word[0] == "-" and word[1] in takes.short and not word.startswith("-pass"):
                given = word[2:]  # mysql reads ``-password`` as -p with "assword": a slip, not a password
            else:
                continue
            if given and _given_password(given, takes.colon):
                return True
    return False


# A random-looking value right after a secret-sounding word, in prose or code ("The secret is wJalr...").
_NEAR_KEYWORD = re.compile(
    r"(?i)\b(?:secret|passw(?:or)?d|token|api[ _-]?key|access[ _-]?key|private[ _-]?key(?:[ _-]?id)?|credential)\w*"
    r"(?:[\"']?\s*(?:[:=]|:=|=>)|\s+(?:is|was|of|to|for)\b)?\s*[\"']?([A-Za-z0-9/+_.=-]{20,})"
)
# A long value given to a secret-sounding name (``DB_PASSWORD=Zq8!mX2#...``), unless it is a call or a
# placeholder (``API_KEY: z.string().min(1)``, ``password=DB_PASS``): betterleaks' generic rule misses some.
_ASSIGNMENT = re.compile(
    r"(?i)(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key|credential)\w{0,64}"
    r"[\"']?\s*[:=]\s*[\"']?([^\s\"'`,;]{12,})"
)
# One of these is in every match of _NEAR_KEYWORD and _ASSIGNMENT, in a line lower-cased by _folded.
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "credential")
# Letters that a case-blind regular expression takes for ASCII letters but lower() does not turn into them
# (the long s, dotted and dotless i, the Kelvin sign): mapped first, so that a substring test sees what
# the expressions see.
_FOLD = str.maketrans({"\u017f": "s", "\u0130": "i", "\u0131": "i", "\u212a": "k"})
_CALL = re.compile(r"\w\(")
# Two lines or more of a PEM body (64 base64 characters a line), with or without their header.
_PEM_LINE = re.compile(r"^\s*[A-Za-z0-9+/]{60,76}={0,2}\s*$")
# Values the generic rules find that are placeholders or references, not secrets.
_PLACEHOLDER_WORDS = ("pass", "pwd", "secret", "example", "changeme", "your", "dummy", "sample", "placeholder", "xxx")
_REFERENCE = re.compile(r"^(?:[A-Z][A-Z0-9_]*|\$\{?\w+\}?|<[^>]*>|\{\{.*\}\}|%\(?\w*\)?s|\*+|x+|\.+)$")
# A type in a schema (``$password: String!`` in GraphQL, ``password: str`` in a model).
_TYPE_NAMES = frozenset({"string", "str", "text", "int", "integer", "number", "bool", "boolean", "bytes", "any"})
_CAMEL = re.compile(r"[A-Za-z][a-z]+(?:[A-Z][a-z]+)+")
_SAYS_WHAT = re.compile(r"[A-Za-z_-]+\d{0,4}[!?.#]?")
_GENERIC_RULES = frozenset({"generic-api-key", "generic-password", "generic-credential-uri", "curl-auth-user"})


@dataclass(frozen=True)
class Finding:
    line: int
    kind: str

    def describe(self) -> str:
        named = f"{_article(self.kind)} {self.kind}"
        return f"{named} on line {self.line}" if self.line else named


# Lower-case names of kinds that are said letter by letter ("an aws access token", "an npm access token").
_SPELLED = frozenset({"aws", "npm", "rsa", "ssh", "sql", "hmac", "ibm", "jwt", "gcp", "gpg", "pgp", "api", "uri"})


def _article(kind: str) -> str:
    """'a' or 'an' by the sound the kind's first word starts with: "an AWS Access Key", "a JSON Web Token"."""
    word = kind.split(" ", 1)[0]
    if (len(word) > 1 and word.isupper()) or word.lower() in _SPELLED:
        return "an" if word[0].upper() in "AEFHILMNORSX" else "a"
    return "an" if word[:1].lower() in "aeiou" and not word.lower().startswith(("us", "uni")) else "a"


def _entropy(value: str) -> float:
    counts: dict[str, int] = {}
    for char in value:
        counts[char] = counts.get(char, 0) + 1
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def is_placeholder(value: str) -> bool:
    """A value in a secret's place that holds none: a variable or template reference, a mask, a type, or letters
    that say what goes there (``DB_PASS``, ``${TOKEN}``, ``<password>``, ``String!``, ``mysecretpassword``)."""
    value = value.strip("\"'`")
    if len(value) < 4 or _REFERENCE.match(value) or value.rstrip("!?[]").lower() in _TYPE_NAMES:
        return True
    if _wordy(value):
        return True
    # Letters saying what goes there, perhaps with a number or a mark at the end: password1, SuperSecret123!
    lower = value.lower()
    return bool(_SAYS_WHAT.fullmatch(value)) and any(word in lower for word in _PLACEHOLDER_WORDS)


def _wordy(value: str) -> bool:
    """Two or more words or identifiers joined by - _ . or /: ``your-api-key``, ``sk-YOUR_HARDCODED_KEY``."""
    parts = [part for part in re.split(r"[/._-]", value) if part]
    return len(parts) > 1 and all(part.isalpha() for part in parts)


def _random_value(value: str) -> bool:
    """A value that looks generated: long, high entropy, mixing digits with letters or both cases, and not a
    word path or an identifier."""
    value = value.strip("=.")
    if len(value) < 20 or _entropy(value) < 3.5:
        return False
    digits = any(c.isdigit() for c in value)
    cases = any(c.islower() for c in value) and any(c.isupper() for c in value)
    if not (digits or cases):
        return False
    return not _wordy(value) and not _CAMEL.fullmatch(value)


def _folded(line: str) -> str:
    return line.lower() if line.isascii() else line.translate(_FOLD).lower()


def _own_findings(lines: list[str]) -> Iterator[Finding]:
    text = "\n".join(lines)
    # The patterns whose strings occur somewhere: most occur in no memory at all.
    extra = [entry for entry in _EXTRA if any(needle in text for needle in entry[3])]
    for number, whole in enumerate(lines, 1):
        for line in _windows(whole):
            for kind, group, placeholders, needles, pattern in extra:
                if not any(needle in line for needle in needles):
                    continue
                for match in pattern.finditer(line):
                    if not (placeholders and is_placeholder(match.group(group))):
                        yield Finding(number, kind)
            lower = _folded(line)
            if not any(word in lower for word in _SECRET_WORDS):
                continue
            for match in _ASSIGNMENT.finditer(line):
                value = match.group(1)
                mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
                if mixed and _entropy(value) >= 3.0 and not _CALL.search(value) and not is_placeholder(value):
                    yield Finding(number, "secret assigned to a variable")
            for match in _NEAR_KEYWORD.finditer(line):
                if _random_value(match.group(1)) and not is_placeholder(match.group(1)):
                    yield Finding(number, "secret next to a secret-sounding word")
        if _PEM_LINE.match(whole) and (
            (number > 1 and _PEM_LINE.match(lines[number - 2]))
            or (number < len(lines) and _PEM_LINE.match(lines[number]))
        ):
            if _random_value(whole.strip()):
                yield Finding(number, "private key or certificate body")
    for start in _command_line_passwords(text):
        yield Finding(text.count("\n", 0, start) + 1, "password on a command line")
    if "-----BEGIN" in text:
        for match in _SPLIT_PEM.finditer(text):
            yield Finding(text.count("\n", 0, match.start()) + 1, "private key")


# Left to betterleaks' generic rules, which filter placeholders and references: the keyword and basic-auth
# plugins flagged zod schemas and example passwords, the entropy plugins example commit hashes, and a public IP
# address is not a secret. What is kept are token formats: fast, and three of them (Discord, Telegram, Twilio
# account ids) betterleaks knows only next to the service's name.
_DETECT_SECRETS_LEFT_OUT = (
    "KeywordDetector",
    "BasicAuthDetector",
    "Base64HighEntropyString",
    "HexHighEntropyString",
    "IPPublicDetector",
)


_TOKEN_WORD = re.compile(r"[\w+/=:.-]{20,}")


@lru_cache(maxsize=1)
def _activate_detect_secrets() -> None:
    """Enter detect-secrets' settings once per process (entering them costs ~15 ms each time): its default
    plugins less those left out."""
    import atexit

    from detect_secrets.settings import default_settings, get_settings

    context = default_settings()
    context.__enter__()
    atexit.register(context.__exit__, None, None, None)
    get_settings().disable_plugins(*_DETECT_SECRETS_LEFT_OUT)


@lru_cache(maxsize=1)
def _detect_secrets_patterns() -> tuple[re.Pattern[str], ...]:
    """The regular expressions of the active plugins: a plugin finds a secret only where one of its own (its
    ``denylist``) matches, so the other lines need not go through its dispatch. (Each searched on its own:
    twice as fast as all of them joined, which defeats the engine's search for a pattern's first letters.)"""
    _activate_detect_secrets()
    from detect_secrets.settings import get_plugins

    return tuple(pattern for plugin in get_plugins() for pattern in plugin.denylist)


def _detect_secrets(lines: list[str]) -> list[Finding]:
    """detect-secrets' token-format plugins on in-memory lines, with its filters (its transformed views of YAML
    and config files serve the keyword and entropy plugins, which are left out)."""
    # Each plugin looks at each line through a slow dispatch: only lines with a token-long word are worth it
    # (and when there is none, detect-secrets is not even loaded), and of those the lines where a plugin's
    # pattern matches (the plugins look at lines with their trailing spaces stripped).
    candidates = [
        (number, window)
        for number, line in enumerate(lines, 1)
        for window in _windows(line)
        if _TOKEN_WORD.search(window) or "PRIVATE" in window
    ]
    if not candidates:
        return []
    patterns = _detect_secrets_patterns()
    candidates = [(n, window) for n, window in candidates if any(p.search(window.rstrip()) for p in patterns)]
    if not candidates:
        return []
    from detect_secrets.core.scan import _process_line_based_plugins

    return [Finding(secret.line_number, secret.type) for secret in _process_line_based_plugins(candidates, "memory.md")]


# betterleaks' scan of a text grows faster than its length (0.03 s for 100,000 characters of guides, 0.14 s for
# 200,000): a long text is scanned in pieces of whole lines, each overlapping the one before by more than a
# multi-line match (a PEM key) is long, so that every match lies whole in some piece.
_PIECE, _PIECE_OVERLAP = 32_768, 8_192


def _pieces(text: str) -> Iterator[tuple[int, str]]:
    """``text`` in overlapping pieces of whole lines, each with the number of lines before it."""
    if len(text) <= _PIECE:
        yield 0, text
        return
    starts = _line_starts(text)
    first = 0  # the piece's first line, counted from 0: the number of lines before it
    while True:
        begin = starts[first]
        # The first line past the piece: the piece holds two lines at least, however long, so that a match over
        # two lines (a key's name, then its value) is whole in some piece even beside a line longer than a piece.
        last = max(bisect.bisect_right(starts, begin + _PIECE) - 1, first + 2)
        if len(text) - begin <= _PIECE or last >= len(starts):
            yield first, text[begin:]
            return
        yield first, text[begin : starts[last] - 1]
        # The next piece starts at the last line start at least the overlap before this one's end; when that is
        # this piece's first line (a long one), at its second, which this piece's last line pair then shares.
        following = bisect.bisect_right(starts, starts[last] - 1 - _PIECE_OVERLAP) - 1
        first = following if following > first else first + 1


def _line_starts(text: str) -> list[int]:
    starts = [0]
    at = text.find("\n")
    while at != -1:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts


def _betterleaks(text: str) -> list[Finding]:
    """betterleaks' rules on ``text``; a generic rule's match counts only when its value is not a placeholder."""
    import betterleaks

    found = []
    for before, piece in _pieces(text):
        for finding in betterleaks.scan_string(piece):
            if finding.rule_id in _GENERIC_RULES and is_placeholder(finding.match.value):
                continue
            found.append(Finding(before + finding.location.start_line, finding.rule_id.replace("-", " ")))
    return found


def find_secrets(text: str, extra: Any = None, first_line: int = 1) -> list[Finding]:
    """Every likely secret in ``text`` (and in the strings of ``extra``, e.g. a ``source`` mapping).

    :param first_line: the file line ``text`` starts on, so findings name file lines.
    """
    pieces = [text, *_strings(extra)]
    joined = _ULID.sub("0" * 26, _as_read("\n".join(pieces)))
    if not _screen(joined):
        return []
    lines = joined.split("\n")
    allowed = {n for n, line in enumerate(lines, 1) if ALLOW in line}
    found = {*_own_findings(lines), *_betterleaks(joined), *_detect_secrets(lines)}
    text_lines = text.count("\n") + 1
    out: dict[int, Finding] = {}
    for finding in sorted(found, key=lambda f: (f.line, f.kind)):
        if finding.line in allowed:
            continue
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
