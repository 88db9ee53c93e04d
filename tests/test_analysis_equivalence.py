"""The fast paths of the per-memory work (analysis, front matter, word ids) against plain reference versions kept
here: the index's terms, records and vectors must not drift when the fast paths change."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import Stemmer

from mtlgit import analysis
from mtlgit.analysis import MAX_TOKEN_CHARS, STOP_WORDS

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MEMORIES = Path(__file__).resolve().parents[1] / "memories"

_WORD = re.compile(r"[^\W_]+")
_COMPOUND = re.compile(r"(?<![^\W_-])[^\W_]++(?:-[^\W_]++)+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_STEMMER = Stemmer.Stemmer("english")


def reference_words(text: str) -> list[str]:
    """The analyser's words, plainly: compounds joined, then each word lower-cased with its camelCase parts."""
    out = [c.replace("-", "").lower() for c in _COMPOUND.findall(text) if len(c) <= MAX_TOKEN_CHARS]
    for part in _WORD.findall(text):
        lower = part.lower()
        out.append(lower)
        if part != lower and not part.isupper() and not part.istitle():
            sub = _CAMEL.split(part)
            if len(sub) > 1:
                out.extend(s.lower() for s in sub)
    return [w for w in out if 1 < len(w) <= MAX_TOKEN_CHARS and w not in STOP_WORDS]


def reference_analyze(text: str) -> list[str]:
    return [_STEMMER.stemWord(w) for w in reference_words(text)]


# Pieces that make the analyser's and the tokenizer's rules differ: case, Unicode letters and digits, combining
# marks, final sigma, dotted I, ligatures, CJK, emoji, control characters, hyphens at edges and in runs, long
# tokens, identifiers, special tokens.
_PIECES = [
    *"abcXYZ019_-- \t\n.,:;'\"()[]{}#*&!|>%@`",
    *["é", "É", "ß", "ς", "Σ", "σ", "İ", "ı", "ſ", "\u212a", "ﬁ", "\u0301", "\u0308", "中", "文", "日本", "😀", "👍🏽"],
    *["\u200b", "\u2028", "\x0b", "\x1c", "\x7f", "\x01", "Ⅻ", "²", "٣", "ǅ", "ǈ", "ᾈ", "ﬃ", "Straße", "camelCase"],
    *["HTTPServer", "getHTTPResponse", "A1B", "iOS", "eBay", "XMLHttpRequest", "x" * 41, "Y" * 45, "read-only"],
    *["-edge-", "a--b", "_snake_case_", "off-by-one", "in-to", "[CLS]", "##ing", "ÅngströmUnit", "ǄemalJ", "x" * 39],
    *[" ... ", "...", " .... ", "e.g.", " --", '""', " \u2026 "],
]


def adversarial(count: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(_PIECES) for _ in range(rnd.randint(0, 60))) for _ in range(count)]


def real_texts() -> list[str]:
    """The project's memories and, when the third-party data is present, its rule files."""
    paths = sorted(MEMORIES.rglob("*.md"))
    for folder in ("cursor-rules", "cursor-rules-mdc"):
        if (DATA / folder).is_dir():
            paths += sorted(p for p in (DATA / folder).rglob("*") if p.is_file())[:200]
    return [p.read_bytes().decode("utf-8", "replace") for p in paths]


def test_words_and_terms_equal_the_reference_on_adversarial_text() -> None:
    texts = adversarial(3000)
    for text in texts + [t.upper() for t in texts[:300]] + [t.lower() for t in texts[:300]]:
        assert analysis.words(text) == reference_words(text), repr(text)
        assert analysis.analyze(text) == reference_analyze(text), repr(text)


def test_words_and_terms_equal_the_reference_on_real_text() -> None:
    texts = real_texts()
    assert texts, "the project's own memories are missing"
    for text in texts:
        assert analysis.words(text) == reference_words(text)
        assert analysis.analyze(text) == reference_analyze(text)


def test_caches_cleared_when_full_give_the_same_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analysis, "_MAX_CACHED", 5)
    text = "The read-only cache of getHTTPResponse stems words; HTTPServer and eBay are identifiers."
    assert analysis.analyze(text) == analysis.analyze(text) == reference_analyze(text)
    assert len(analysis._TERMS) <= 6


def test_plain_scalars_starting_with_a_digit_are_typed_as_yaml_types_them() -> None:
    import yaml

    from mtlgit import frontmatter

    rnd = random.Random(11)
    pieces = [
        *"0123456789_.+:-eExXbBoOtTzZaAfF \t",
        "KAY",
        "g",
        "Q",
        "é",
        "٣",
        "inf",
        "nan",
        "0x1F",
        "1e+3",
        "2026-11-25",
    ]
    values = [
        rnd.choice("0123456789") + "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 8))) for _ in range(4000)
    ]
    values += ["01KAY1YBHHNJXYDX2D6RBBTNRZ", "0x1f", "1_000", "1:20", "3.5e+3", "2026-11-25t10:00:00z", "12 monkeys"]
    resolver = yaml.resolver.Resolver()
    for value in values:
        tag = resolver.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
        assert frontmatter._plain_str(value) == (tag == "tag:yaml.org,2002:str"), value


def test_front_matter_lines_read_from_the_line_cache_are_each_memory_s_own() -> None:
    from mtlgit import frontmatter

    text = "---\nid: a1\ntitle: T\ntags: [x, y]\ncreated: 2026-11-25T14:03:11Z\n---\nbody\n"
    first = frontmatter.parse(text)
    first.meta["tags"].append("z")
    second = frontmatter.parse(text)
    assert second.meta["tags"] == ["x", "y"]
    assert second.meta == {"id": "a1", "title": "T", "tags": ["x", "y"], "created": first.meta["created"]}
    assert frontmatter.parse(text.replace("[x, y]", "[x, 'y z']")).meta["tags"] == ["x", "y z"]


def test_utc_times_are_written_as_strftime_writes_them() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from mtlgit.frontmatter import _datetime_text

    rnd = random.Random(5)
    zones = [UTC, timezone(timedelta(0)), timezone(timedelta(hours=2))]
    for _ in range(3000):
        value = datetime(
            rnd.choice([1, 999, 1000, 2026, 9999]),
            rnd.randint(1, 12),
            rnd.randint(1, 28),
            rnd.randint(0, 23),
            rnd.randint(0, 59),
            rnd.randint(0, 59),
            rnd.choice([0, 0, 5]),
            tzinfo=rnd.choice(zones),
        )
        offset = value.utcoffset()
        expected = value.strftime("%Y-%m-%dT%H:%M:%SZ") if offset is not None and not offset else value.isoformat()
        assert _datetime_text(value) == expected, value


@pytest.mark.parametrize("learnt", [500_000, 3000])
def test_word_ids_by_white_space_run_equal_those_by_word(learnt: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from itertools import chain

    from mtlgit import embed
    from mtlgit.embed import _WORDS, DEFAULT_MODEL_DIR, StaticModel

    monkeypatch.setattr(embed, "_MAX_LEARNT", learnt)  # 3000: what was learnt is dropped several times
    words = StaticModel(DEFAULT_MODEL_DIR)._word_ids
    reference = StaticModel(DEFAULT_MODEL_DIR)._word_ids
    assert words is not None and reference is not None
    spaces = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u3000", "\u200b"]
    rnd = random.Random(3)
    texts = adversarial(800) + ["".join(rnd.choice(_PIECES + spaces) for _ in range(40)) for _ in range(800)]
    for text in texts + real_texts()[:50]:
        plain = list(chain.from_iterable(reference[w] for w in _WORDS.findall(reference.normalize(text))))
        expected = [i for i in plain if i != reference.unk]
        assert words.ids(text, None) == expected, repr(text)
    assert len(words) <= words.limit + 1


def test_sentence_count_shortcut_agrees_with_the_expression() -> None:
    from mtlgit.memory import SENTENCE_END_RE, _sentences_over

    rnd = random.Random(9)
    pieces = ["A", "b", " ", "\n", ".", "!", "?", "e.g.", " X", "3.5", "'Q", "(", "...", "\t"]
    for _ in range(3000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 30)))
        for most in (0, 2, 5):
            assert _sentences_over(text, most) == (len(SENTENCE_END_RE.findall(text)) > most), repr(text)


def test_a_stamp_of_other_digits_than_ascii_is_text_as_yaml_reads_it() -> None:
    import yaml

    from mtlgit import frontmatter

    text = "created: \u0662\u0660\u0662\u0666-\u0661\u0661-\u0662\u0665T\u0661\u0664:\u0660\u0663:\u0661\u0661Z\n"
    assert frontmatter.load_yaml(text, 2) == yaml.safe_load(text)
    assert isinstance(frontmatter.load_yaml(text, 2)["created"], str)


def reference_word_ids(lookup: Callable[[str], int | None], word: str, prefix: str, most: int) -> list[int]:
    """WordPiece's greedy longest match, plainly: at each start the longest vocabulary piece, else nothing."""
    if len(word) > most:
        return []
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start and lookup(word[start:end] if start == 0 else prefix + word[start:end]) is None:
            end -= 1
        if end == start:
            return []
        found = lookup(word[start:end] if start == 0 else prefix + word[start:end])
        assert found is not None
        pieces.append(found)
        start = end
    return pieces


def test_word_pieces_equal_the_plain_greedy_match() -> None:
    import json

    from mtlgit.embed import DEFAULT_MODEL_DIR
    from mtlgit.wordpiece import WordPiece

    data = json.loads((DEFAULT_MODEL_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    wordpiece = WordPiece.from_tokenizer_json(data)
    assert wordpiece is not None
    vocab = data["model"]["vocab"]
    rnd = random.Random(4)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789#éü中"
    words = {"".join(rnd.choice(chars) for _ in range(rnd.randint(0, 24))) for _ in range(3000)}
    words |= {w for text in real_texts()[:40] for w in wordpiece.words(text)} | {"", "x" * 101, "unaffable"}
    for word in words:
        expected = [i for i in reference_word_ids(vocab.get, word, "##", 100) if i != wordpiece.unk_id]
        assert wordpiece.word_ids(word) == expected, word


def test_a_parse_cached_before_the_stamp_rule_changed_is_not_reused(repo: Path) -> None:
    """A memory dated in other digits than ASCII's was read as dated by analyser a3 and is refused now: the
    analyser's version changed with it, so a cache filled by a3 (shared by worktrees, branches and pools) does
    not carry the old reading into a new index while lint says otherwise."""
    import json
    import sqlite3
    import zlib

    from mtlgit.cache import analyse_one
    from mtlgit.ids import blob_id
    from tests.conftest import VALID, run_cli, write

    dated = VALID.replace("created: ", "created: X", 1)
    stamp = dated[dated.index("created: X") + 10 :].split("\n", 1)[0]
    arabic = stamp.translate({ord(d): 0x0660 + int(d) for d in "0123456789"})
    path = write(repo / "memories" / "arabic.md", dated.replace("X" + stamp, arabic))
    data = path.read_bytes()
    assert run_cli(repo, "index").code == 0  # makes the cache
    as_a3_read_it = analyse_one("memories/arabic.md", VALID.encode())  # valid, dated: what a3 made of it
    text = json.dumps(as_a3_read_it)
    with sqlite3.connect(repo / ".git" / "mtlgit" / "cache.sqlite") as db:
        row = ("a3", blob_id(data), text, as_a3_read_it["record"]["id"], zlib.crc32(text.encode()))
        db.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?, ?)", row)
    assert run_cli(repo, "index", "--rebuild").code == 0
    listed = json.loads(run_cli(repo, "list", "--json").out)
    assert [m for m in listed if m.get("path") == "memories/arabic.md"] == []
    lint = run_cli(repo, "lint", "--json")
    assert any(
        p["path"] == "memories/arabic.md" and "created" in p["message"] for p in json.loads(lint.out)["problems"]
    )


def test_hour_24_is_an_impossible_date_as_yaml_says() -> None:
    """The fast reader leaves a stamp at hour 24 to YAML, which refuses it (datetime.fromisoformat reads it as the
    next day's midnight from Python 3.14 on)."""
    from mtlgit.memory import parse_bytes
    from tests.conftest import VALID

    text = VALID.replace("2026-11-25T14:03:11Z", "2025-01-01T24:00:00Z")
    assert text != VALID
    memory, problems = parse_bytes(text.encode(), "memories/m.md")
    assert memory is None
    assert [p.code for p in problems] == ["front-matter"] and "impossible date" in problems[0].message


def test_long_raw_words_are_worked_out_but_never_kept() -> None:
    """The per-word caches hold short words only: a pool of long unique tokens (hashes, base64) cannot fill a
    process's memory with them, and their terms are the same as a short word's path gives."""
    long_word = "QmFzZTY0" * 40 + "-tail"
    before = (len(analysis._TOKENS), len(analysis._TERMS))
    for _ in range(2):
        assert analysis.analyze(long_word) == analysis.analyze(long_word + " ")
        assert analysis.words(long_word) == [w for w in analysis.words(long_word + " x") if w != "x"]
    assert all(len(raw) <= 100 for raw in (*analysis._TOKENS, *analysis._TERMS))
    assert (len(analysis._TOKENS), len(analysis._TERMS)) >= before
