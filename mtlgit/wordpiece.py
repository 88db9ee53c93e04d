"""BERT's WordPiece tokenizer in pure Python, for one short query at a time.

It reproduces the ``tokenizers`` library's BertNormalizer + BertPreTokenizer + WordPiece model exactly
(tests compare the two on thousands of real texts) and is used only for tokenizer.json files of that exact
configuration; anything else goes to the library.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _is_control(char: str) -> bool:
    if char in "\t\n\r":
        return False
    # Unassigned code points (Cn) are kept, as the tokenizers library keeps them (the word becomes [UNK]).
    return unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs")


# Unicode's White_Space property less the control characters, which cleaning has already removed.
_WHITESPACE = frozenset(" \t\n\r\u00a0\u1680\u202f\u205f\u3000\u2028\u2029" + "".join(map(chr, range(0x2000, 0x200B))))


class WordPiece:
    """Lower-casing, accent-stripping BERT WordPiece over a fixed vocabulary.

    :param lookup: the id of a vocabulary entry, or None (a dict's ``get``, or a search in a sorted array).
    """

    def __init__(
        self, lookup: Callable[[str], int | None], unk_id: int | None, prefix: str, max_chars: int, specials: list[str]
    ):
        self.lookup = lookup
        self.unk_id = unk_id
        self.prefix = prefix
        self.max_chars = max_chars
        self.specials = specials

    @staticmethod
    def settings(data: dict[str, Any]) -> dict[str, Any] | None:
        """The settings of a tokenizer.json that is plain BERT WordPiece (None for any other tokenizer)."""
        model = data.get("model") or {}
        normalizer = data.get("normalizer") or {}
        pre = data.get("pre_tokenizer") or {}
        plain_bert = (
            model.get("type") == "WordPiece"
            and normalizer.get("type") == "BertNormalizer"
            and normalizer.get("clean_text", True)
            and normalizer.get("handle_chinese_chars", True)
            and normalizer.get("lowercase", True)
            and normalizer.get("strip_accents") in (None, True)
            and pre.get("type") == "BertPreTokenizer"
            and isinstance(model.get("vocab"), dict)
        )
        if not plain_bert:
            return None
        vocab = model["vocab"]
        return {
            "unk_id": vocab.get(model.get("unk_token", "[UNK]")),
            "prefix": model.get("continuing_subword_prefix", "##"),
            "max_chars": int(model.get("max_input_chars_per_word", 100)),
            "specials": [t["content"] for t in data.get("added_tokens") or [] if t.get("content")],
        }

    @classmethod
    def from_tokenizer_json(cls, data: dict[str, Any]) -> WordPiece | None:
        """A WordPiece for this tokenizer.json, or None when its configuration is not plain BERT."""
        settings = cls.settings(data)
        if settings is None:
            return None
        return cls(data["model"]["vocab"].get, **settings)

    def handles(self, text: str) -> bool:
        """False when the text holds an added token (``[CLS]``...), which only the library splits out."""
        return not any(special in text for special in self.specials)

    def normalize(self, text: str) -> str:
        chars = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            if char in _WHITESPACE:
                chars.append(" ")
            elif _is_chinese(cp):
                chars.append(f" {char} ")
            else:
                chars.append(char)
        text = "".join(chars)
        if not text.isascii():
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        # Lower-case char by char like the library: str.lower() would give a word-final sigma its own form.
        return text.lower() if "\u03a3" not in text else "".join(c.lower() for c in text)

    def words(self, text: str) -> list[str]:
        out: list[str] = []
        for chunk in self.normalize(text).split():
            start = 0
            for i, char in enumerate(chunk):
                if _is_punctuation(char):
                    if start < i:
                        out.append(chunk[start:i])
                    out.append(char)
                    start = i + 1
            if start < len(chunk):
                out.append(chunk[start:])
        return out

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens and without the unknown token."""
        ids: list[int] = []
        for word in self.words(text):
            ids.extend(self.word_ids(word))
        return ids

    def word_ids(self, word: str) -> list[int]:
        """Token ids of one word already normalised and split (what :meth:`words` gives), without the unknown
        token; none for a word too long or not made of vocabulary pieces."""
        size = len(word)
        if not size or size > self.max_chars:
            return []
        lookup = self.lookup
        # The longest piece first: the whole word, then shorter heads; after the first piece each candidate is
        # a head of the prefixed rest (one slice a look-up, no concatenation).
        end = size
        found = lookup(word)
        while found is None and end > 1:
            end -= 1
            found = lookup(word[:end])
        if found is None:
            return []
        pieces = [found]
        mark = len(self.prefix)
        while end < size:
            rest = self.prefix + word[end:]
            cut = len(rest)
            found = lookup(rest)
            while found is None and cut > mark + 1:
                cut -= 1
                found = lookup(rest[:cut])
            if found is None:
                return []
            pieces.append(found)
            end += cut - mark
        return [i for i in pieces if i != self.unk_id]
